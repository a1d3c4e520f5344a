// Bytes streamed into one object key that appears only at complete(): small objects are one PutObject
// then, larger ones a multipart upload whose parts go up while the bytes arrive and which is completed
// only when the caller says so (after its digest check) or aborted. Every multipart upload begun is
// written down in the replica's scratch dir (the ledger) until it ends, so that the next start aborts
// what a crash (kill -9) left half-uploaded; the bucket would otherwise keep those parts forever.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Bucket } from './s3-bucket.ts';

/** S3's smallest part is 5 MiB (except the last); 8 MiB parts allow objects up to 80 GB (10,000 parts). */
const PART_BYTES = 8 * 1024 * 1024;
/** Parts uploading at once per object: overlaps the gateway's answer with the next part's bytes. */
const PARTS_IN_FLIGHT = 2;

/** The multipart uploads this replica has begun and not ended, as files in its scratch dir. */
export class MultipartLedger {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  async record(key: string, uploadId: string): Promise<string> {
    await mkdir(this.#dir, { recursive: true });
    const name = `${randomBytes(8).toString('hex')}.json`;
    await writeFile(join(this.#dir, name), JSON.stringify({ key, uploadId }));
    return name;
  }

  async forget(name: string): Promise<void> {
    await rm(join(this.#dir, name), { force: true });
  }

  /**
   * Aborts the uploads an earlier run of this replica left (it is not running: they are all dead), and
   * any upload under the prefix older than `staleMs` (a replica that died and never came back).
   */
  async abortLeftovers(bucket: S3Bucket, staleMs: number): Promise<number> {
    let aborted = 0;
    for (const name of await readdir(this.#dir).catch(() => [] as string[])) {
      const text = await readFile(join(this.#dir, name), 'utf8').catch(() => undefined);
      try {
        const { key, uploadId } = JSON.parse(text ?? '') as { key: string; uploadId: string };
        await abortUpload(bucket, key, uploadId);
        aborted++;
      } catch {
        // An unreadable record (a crash while writing it): its upload is found by age below.
      }
      await rm(join(this.#dir, name), { force: true });
    }
    const now = Date.now();
    let marker: { key?: string; id?: string } = {};
    for (;;) {
      const page = await bucket.client.send(
        new ListMultipartUploadsCommand({ Bucket: bucket.name, Prefix: bucket.prefix, ...(marker.key ? { KeyMarker: marker.key, UploadIdMarker: marker.id } : {}) }),
      );
      for (const upload of page.Uploads ?? []) {
        if (now - (upload.Initiated?.getTime() ?? now) < staleMs) continue;
        await bucket.client.send(new AbortMultipartUploadCommand({ Bucket: bucket.name, Key: upload.Key, UploadId: upload.UploadId })).catch(() => {});
        aborted++;
      }
      if (!page.IsTruncated) break;
      marker = { key: page.NextKeyMarker, id: page.NextUploadIdMarker };
    }
    return aborted;
  }
}

async function abortUpload(bucket: S3Bucket, fullKey: string, uploadId: string): Promise<void> {
  await bucket.client.send(new AbortMultipartUploadCommand({ Bucket: bucket.name, Key: fullKey, UploadId: uploadId })).catch((err: unknown) => {
    // Already completed or aborted.
    if ((err as { name?: string }).name !== 'NoSuchUpload') throw err;
  });
}

export class MultipartWriter {
  readonly #bucket: S3Bucket;
  /** Full key (with the bucket prefix). */
  readonly #key: string;
  readonly #ledger: MultipartLedger;
  #part = Buffer.allocUnsafeSlow(PART_BYTES);
  #partLength = 0;
  #upload: { id: string; record: string } | undefined;
  readonly #parts: { PartNumber: number; ETag: string }[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #failed: Error | undefined;
  #state: 'open' | 'completed' | 'aborted' = 'open';
  #written = 0;
  #nextPart = 1;

  constructor(bucket: S3Bucket, key: string, ledger: MultipartLedger) {
    this.#bucket = bucket;
    this.#key = bucket.key(key);
    this.#ledger = ledger;
  }

  get written(): number {
    return this.#written;
  }

  /** Takes the bytes (copied: the caller may reuse `chunk`); waits while too many parts are uploading. */
  async write(chunk: Uint8Array): Promise<void> {
    this.#check();
    let offset = 0;
    while (offset < chunk.byteLength) {
      const n = Math.min(chunk.byteLength - offset, PART_BYTES - this.#partLength);
      this.#part.set(chunk.subarray(offset, offset + n), this.#partLength);
      this.#partLength += n;
      this.#written += n;
      offset += n;
      if (this.#partLength === PART_BYTES) await this.#sendPart();
    }
  }

  /** Publishes the object with every byte written. */
  async complete(): Promise<void> {
    this.#check();
    if (!this.#upload) {
      const body = this.#part.subarray(0, this.#partLength);
      await this.#bucket.client.send(new PutObjectCommand({ Bucket: this.#bucket.name, Key: this.#key, Body: body, ContentLength: body.byteLength }));
    } else {
      if (this.#partLength > 0) await this.#sendPart();
      await Promise.all(this.#inFlight);
      this.#check();
      const parts = [...this.#parts].sort((a, b) => a.PartNumber - b.PartNumber);
      await this.#bucket.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.#bucket.name, Key: this.#key, UploadId: this.#upload.id, MultipartUpload: { Parts: parts } }),
      );
      await this.#ledger.forget(this.#upload.record);
    }
    this.#state = 'completed';
    this.#part = Buffer.alloc(0);
  }

  /** Drops every part; nothing appears. Safe to call more than once, and after complete (does nothing). */
  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    this.#part = Buffer.alloc(0);
    await Promise.allSettled(this.#inFlight);
    if (this.#upload) {
      await abortUpload(this.#bucket, this.#key, this.#upload.id);
      await this.#ledger.forget(this.#upload.record);
    }
  }

  #check(): void {
    if (this.#failed) throw this.#failed;
    if (this.#state !== 'open') throw new Error(`upload of ${this.#key} is ${this.#state}`);
  }

  async #sendPart(): Promise<void> {
    if (!this.#upload) {
      const created = await this.#bucket.client.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket.name, Key: this.#key }));
      const id = created.UploadId!;
      this.#upload = { id, record: await this.#ledger.record(this.#key, id) };
    }
    while (this.#inFlight.size >= PARTS_IN_FLIGHT) await Promise.race(this.#inFlight);
    this.#check();
    const body = this.#part.subarray(0, this.#partLength);
    this.#part = Buffer.allocUnsafeSlow(PART_BYTES);
    this.#partLength = 0;
    const PartNumber = this.#nextPart++;
    const uploadId = this.#upload.id;
    const sending: Promise<void> = this.#bucket.client
      .send(new UploadPartCommand({ Bucket: this.#bucket.name, Key: this.#key, UploadId: uploadId, PartNumber, Body: body, ContentLength: body.byteLength }))
      .then(
        (answer) => void this.#parts.push({ PartNumber, ETag: answer.ETag! }),
        (err: unknown) => void (this.#failed ??= err as Error),
      )
      .finally(() => this.#inFlight.delete(sending));
    this.#inFlight.add(sending);
  }
}
