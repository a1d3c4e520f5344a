// Content-addressed blobs in an S3 bucket: <prefix>blobs/<algorithm>/<hex>. A blob's object is written
// only once its digest matched (put hashes first; uploads complete their multipart upload only after
// the check), so nothing partial or corrupt is ever under a blob's key. The replica's scratch dir holds
// what is in flight: copies of cold downloads for the clients reading behind them, and the ledger of
// multipart uploads to abort after a crash.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CopyObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { DigestVerifier, parseDigest } from '../oci/digest.ts';
import type { BlobStream } from './blob-stream.ts';
import { DigestMismatchError, type BlobStore, type BlobUpload, type ByteRange, type PartialBlob, type StoredBlob, type UploadSession } from './blob-store.ts';
import { followPeer, formatPeerUploadId, parsePeerUploadId, type PeerUploads } from './peer-uploads.ts';
import { S3Bucket, type S3BucketOptions } from './s3-bucket.ts';
import { MultipartLedger, MultipartWriter } from './s3-multipart.ts';
import { S3ObjectStream } from './s3-object-stream.ts';
import { S3Upload } from './s3-upload.ts';
import { createS3Session, expireS3Sessions, openS3Session, type S3SessionHome } from './s3-upload-session.ts';

const BLOBS = 'blobs/';
/** A blob taken out of sight by delete(digest, keep) while keep() is asked. */
const DELETING = 'deleting/';
/** A delete's keep() is asked within seconds; an aside object older than this was left by a crash. */
const ASIDE_GRACE_MS = 60_000;
/** CopyObject's limit; larger blobs are copied part by part. */
const MAX_COPY_BYTES = 5 * 1024 ** 3;

export interface S3BlobStoreOptions extends S3BucketOptions {
  /** This replica's own directory for in-flight copies and the multipart ledger. */
  readonly scratchDir: string;
  /** The base URL other replicas reach this one at, for following its downloads; none: no following. */
  readonly peerUrl?: string;
}

export class S3BlobStore implements BlobStore, PeerUploads {
  readonly bucket: S3Bucket;
  readonly #scratch: string;
  readonly #ledger: MultipartLedger;
  readonly #peerUrl: string | undefined;
  readonly #uploads = new Map<string, S3Upload>();
  readonly #sessions: S3SessionHome;

  constructor(options: S3BlobStoreOptions) {
    this.bucket = new S3Bucket(options);
    this.#scratch = join(options.scratchDir, 'downloads');
    this.#ledger = new MultipartLedger(join(options.scratchDir, 'multipart'));
    this.#peerUrl = options.peerUrl;
    this.#sessions = { bucket: this.bucket, ledger: this.#ledger, blobKey: (digest) => this.#key(digest), busy: new Set() };
  }

  /**
   * Empties the scratch dir, aborts multipart uploads an earlier run left (and any older than
   * `staleUploadsMs`), and puts back blobs a crashed delete left aside. Resolves with the uploads aborted.
   */
  async init(options: { staleUploadsMs: number }): Promise<number> {
    await rm(this.#scratch, { recursive: true, force: true });
    await mkdir(this.#scratch, { recursive: true });
    const aborted = await this.#ledger.abortLeftovers(this.bucket, options.staleUploadsMs);
    for await (const object of this.bucket.list(DELETING)) {
      if (Date.now() - object.modifiedAt >= ASIDE_GRACE_MS) await this.#restoreAside(object.key, object.size);
    }
    return aborted;
  }

  async #restoreAside(asideKey: string, size: number): Promise<void> {
    const match = /^deleting\/([a-z0-9]+)-([0-9a-f]+)-[0-9a-f]+$/.exec(asideKey);
    if (match) {
      const key = this.#key(`${match[1]}:${match[2]}`);
      if (!(await this.bucket.head(key))) await this.#copy(asideKey, key, size);
    }
    await this.bucket.deleteKeys([asideKey]);
  }

  /** The key of a blob; the digest is validated first. */
  #key(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return `${BLOBS}${algorithm}/${hex}`;
  }

  async stat(digest: string): Promise<StoredBlob | undefined> {
    const head = await this.bucket.head(this.#key(digest));
    return head ? { digest, size: head.size } : undefined;
  }

  async open(digest: string, range?: ByteRange): Promise<BlobStream | undefined> {
    const key = this.#key(digest);
    const object = await this.bucket.get(key, range);
    return object ? new S3ObjectStream(object.body, object.length) : undefined;
  }

  async read(digest: string): Promise<Uint8Array | undefined> {
    return this.bucket.getBytes(this.#key(digest));
  }

  async put(digest: string, bytes: Uint8Array): Promise<StoredBlob> {
    const key = this.#key(digest);
    const verifier = new DigestVerifier(parseDigest(digest));
    verifier.update(bytes);
    const { ok, actual } = verifier.matches();
    if (!ok) throw new DigestMismatchError(digest, actual);
    await this.bucket.put(key, bytes);
    return { digest, size: bytes.byteLength };
  }

  async begin(digest: string): Promise<BlobUpload> {
    const key = this.#key(digest);
    const name = randomBytes(16).toString('hex');
    const id = this.#peerUrl ? formatPeerUploadId({ peer: this.#peerUrl, name, digest }) : formatPeerUploadId({ peer: 'http://local', name, digest });
    const upload = await S3Upload.create({
      digest,
      id,
      scratchDir: this.#scratch,
      object: new MultipartWriter(this.bucket, key, this.#ledger),
      onEnd: () => this.#uploads.delete(name),
    });
    this.#uploads.set(name, upload);
    return upload;
  }

  local(name: string): BlobUpload | undefined {
    return this.#uploads.get(name);
  }

  async follow(id: string): Promise<PartialBlob | undefined> {
    const parsed = parsePeerUploadId(id);
    if (!parsed) return undefined;
    const own = this.#uploads.get(parsed.name);
    if (own) {
      return { size: async () => own.written, readInto: (t, o, p, l) => own.readInto(t, o, p, l), close: async () => {} };
    }
    if (parsed.peer === 'http://local') return undefined;
    const digest = parseDigest(parsed.digest).value;
    return followPeer(parsed, {
      size: async () => (await this.stat(digest))?.size,
      read: async (range) => {
        const object = await this.bucket.get(this.#key(digest), range);
        if (!object) return undefined;
        const chunks: Buffer[] = [];
        for await (const chunk of object.body) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks);
      },
    });
  }

  async delete(digest: string, keep?: () => Promise<boolean>): Promise<boolean> {
    const key = this.#key(digest);
    const head = await this.bucket.head(key);
    if (!head) return false;
    if (!keep) {
      await this.bucket.deleteKeys([key]);
      return true;
    }
    // Out of sight first, then ask: a blob claimed meanwhile goes back. The aside key names the blob,
    // so that a crash in between is undone at the next start (init).
    const { algorithm, hex } = parseDigest(digest);
    const aside = `${DELETING}${algorithm}-${hex}-${randomBytes(4).toString('hex')}`;
    await this.#copy(key, aside, head.size);
    await this.bucket.deleteKeys([key]);
    let claimed = true;
    try {
      claimed = await keep();
    } finally {
      // A keep() that fails counts as a claim: the blob goes back.
      if (claimed && !(await this.bucket.head(key))) await this.#copy(aside, key, head.size);
      await this.bucket.deleteKeys([aside]);
    }
    return !claimed;
  }

  /** Server-side copy of one object to another key. */
  async #copy(from: string, to: string, size: number): Promise<void> {
    if (size <= MAX_COPY_BYTES) {
      await this.bucket.client.send(
        new CopyObjectCommand({ Bucket: this.bucket.name, Key: this.bucket.key(to), CopySource: `${this.bucket.name}/${this.bucket.key(from)}` }),
      );
      return;
    }
    // Beyond CopyObject's limit: through this process (rare: a blob over 5 GiB evicted while claimed).
    const writer = new MultipartWriter(this.bucket, to, this.#ledger);
    try {
      const object = await this.bucket.get(from);
      if (!object) throw new Error(`object ${from} vanished while being copied`);
      for await (const chunk of object.body) await writer.write(chunk as Buffer);
      await writer.complete();
    } finally {
      await writer.abort();
    }
  }

  async *list(): AsyncIterable<StoredBlob & { readonly modifiedAt: number }> {
    for await (const object of this.bucket.list(BLOBS)) {
      const [algorithm, hex, ...rest] = object.key.slice(BLOBS.length).split('/');
      if (!algorithm || !hex || rest.length) continue;
      yield { digest: `${algorithm}:${hex}`, size: object.size, modifiedAt: object.modifiedAt };
    }
  }

  createSession(owner: string): Promise<UploadSession> {
    return createS3Session(this.#sessions, owner);
  }

  openSession(id: string): Promise<UploadSession | undefined> {
    return openS3Session(this.#sessions, id);
  }

  expireSessions(olderThanMs: number): Promise<number> {
    return expireS3Sessions(this.#sessions, olderThanMs);
  }

  /**
   * A presigned GET of the blob's object, valid for `validForMs` (storage.s3.redirect). Computed locally,
   * no request: whether the object exists the caller has just checked.
   */
  redirectUrl(digest: string, validForMs: number): Promise<string> {
    const command = new GetObjectCommand({ Bucket: this.bucket.name, Key: this.bucket.key(this.#key(digest)), ResponseContentType: 'application/octet-stream' });
    return getSignedUrl(this.bucket.client, command, { expiresIn: Math.max(1, Math.round(validForMs / 1000)) });
  }

  /** Whether the scratch dir is writable and the bucket answers (readiness). */
  async check(): Promise<void> {
    await readdir(this.#scratch);
    await this.bucket.head(`${BLOBS}.ready`);
  }

  close(): void {
    this.bucket.close();
  }
}
