// One bucket (and key prefix) of an S3-compatible object store, and the few calls every S3 store part
// makes. Loaded only when storage.s3 is configured (deps.ts imports the S3 stores dynamically), so the
// AWS SDK costs a disk-only mirror nothing.
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';

export interface S3BucketOptions {
  readonly endpoint?: string;
  readonly region: string;
  readonly bucket: string;
  /** Put before every key ("ocimirror/"); empty for the bucket's root. */
  readonly prefix: string;
  readonly forcePathStyle: boolean;
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
}

export interface ListedObject {
  /** Without the prefix. */
  readonly key: string;
  readonly size: number;
  readonly modifiedAt: number;
}

export class S3Bucket {
  readonly client: S3Client;
  readonly name: string;
  readonly prefix: string;

  constructor(options: S3BucketOptions) {
    this.client = new S3Client({
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      ...(options.accessKeyId && options.secretAccessKey
        ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } }
        : {}),
      // Ceph RGW (and other S3 servers) refuse the SDK's default trailing checksums on streamed bodies.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.name = options.bucket;
    this.prefix = options.prefix;
  }

  /** The full object key of `key`. */
  key(key: string): string {
    return `${this.prefix}${key}`;
  }

  /** Size of the object, or undefined when there is none. */
  async head(key: string): Promise<{ size: number; modifiedAt: number; etag: string } | undefined> {
    try {
      const answer = await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: this.key(key) }));
      return { size: answer.ContentLength ?? 0, modifiedAt: answer.LastModified?.getTime() ?? 0, etag: answer.ETag ?? '' };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The object's body (or one range of it), or undefined when there is none. */
  async get(key: string, range?: { start: number; end: number }): Promise<{ body: Readable; length: number } | undefined> {
    try {
      const answer = await this.client.send(
        new GetObjectCommand({ Bucket: this.name, Key: this.key(key), ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      return { body: answer.Body as Readable, length: answer.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async getBytes(key: string): Promise<Uint8Array | undefined> {
    try {
      const answer = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: this.key(key) }));
      return await answer.Body!.transformToByteArray();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async getText(key: string): Promise<string | undefined> {
    const bytes = await this.getBytes(key);
    return bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8');
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    await this.client.send(new PutObjectCommand({ Bucket: this.name, Key: this.key(key), Body: bytes, ContentLength: bytes.byteLength }));
  }

  /** Deletes the keys (missing ones are fine). */
  async deleteKeys(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      if (!batch.length) continue;
      await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.name, Delete: { Objects: batch.map((k) => ({ Key: this.key(k) })), Quiet: true } }),
      );
    }
  }

  /** Every object whose key starts with `prefix` (after the bucket prefix), page by page. */
  async *list(prefix: string): AsyncIterable<ListedObject> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.name, Prefix: this.key(prefix), ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const object of page.Contents ?? []) {
        yield { key: object.Key!.slice(this.prefix.length), size: object.Size ?? 0, modifiedAt: object.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** The names of the "folders" right below `prefix` (which ends in "/"): one listing with a delimiter, not one per object. */
  async folders(prefix: string): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.name, Prefix: this.key(prefix), Delimiter: '/', ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const common of page.CommonPrefixes ?? []) names.push(common.Prefix!.slice(this.key(prefix).length, -1));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return names;
  }

  async listAll(prefix: string): Promise<ListedObject[]> {
    const all: ListedObject[] = [];
    for await (const object of this.list(prefix)) all.push(object);
    return all;
  }

  close(): void {
    this.client.destroy();
  }
}

export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}
