// Bytes streamed into one object key that appears only at complete(): small objects are one PutObject
// then, larger ones a multipart upload whose parts go up while the bytes arrive and which is completed
// only when the caller says so (after its digest check) or aborted. Every multipart upload begun is
// written down in the replica's scratch dir (the ledger) until it ends, so that the next start aborts
// what a crash (kill -9) left half-uploaded; the bucket would otherwise keep those parts forever. The
// record is written before the upload is created (its id added once known): a crash between the two
// leaves a record of the key alone, and the next start finds that upload by its key and start time.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Bucket } from './s3-bucket.ts';

/** S3's smallest part is 5 MiB (except the last); 8 MiB parts allow objects up to 80 GB (10,000 parts). */
const PART_BYTES = 8 * 1024 * 1024;
/** Parts uploading at once per object: overlaps the gateway's answer with the next part's bytes. */
const PARTS_IN_FLIGHT = 2;
/**
 * A record of a key alone matches the uploads of that key begun this long before (the gateway's clock
 * may run behind ours) to this long after it was written (the create took that long at most).
 */
const INTENT_BEFORE_MS = 10_000;
const INTENT_AFTER_MS = 30_000;

interface LedgerRecord {
  readonly key: string;
  readonly uploadId?: string;
  /** When the record of the key alone was written (ms since epoch). */
  readonly at?: number;
}

/** The multipart uploads this replica has begun and not ended, as files in its scratch dir. */
export class MultipartLedger {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Writes down that an upload of `key` is about to be created; resolves with the record's name. */
  async intend(key: string): Promise<string> {
    await mkdir(this.#dir, { recursive: true });
    const name = `${randomBytes(8).toString('hex')}.json`;
    await this.#write(name, { key, at: Date.now() });
    return name;
  }

  /** Adds the created upload's id to the record. */
  async created(name: string, key: string, uploadId: string): Promise<void> {
    await this.#write(name, { key, uploadId });
  }

  async #write(name: string, record: LedgerRecord): Promise<void> {
    const temp = join(this.#dir, `.${name}.${randomBytes(4).toString('hex')}`);
    await writeFile(temp, JSON.stringify(record));
    await rename(temp, join(this.#dir, name));
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
    /** Keys whose upload may have been created after the record was written: when it was written. */
    const intents = new Map<string, number[]>();
    const names = await readdir(this.#dir).catch(() => [] as string[]);
    for (const name of names) {
      if (name.startsWith('.')) continue; // a record half-written: its upload was not created yet
      const text = await readFile(join(this.#dir, name), 'utf8').catch(() => undefined);
      try {
        const record = JSON.parse(text ?? '') as LedgerRecord;
        if (record.uploadId) {
          await abortUpload(bucket, record.key, record.uploadId);
          aborted++;
        } else if (typeof record.at === 'number') {
          intents.set(record.key, [...(intents.get(record.key) ?? []), record.at]);
        }
      } catch {
        // An unreadable record: its upload is found by age below.
      }
    }
    const now = Date.now();
    let marker: { key?: string; id?: string } = {};
    for (;;) {
      const page = await bucket.client.send(
        new ListMultipartUploadsCommand({ Bucket: bucket.name, Prefix: bucket.prefix, ...(marker.key ? { KeyMarker: marker.key, UploadIdMarker: marker.id } : {}) }),
      );
      for (const upload of page.Uploads ?? []) {
        const initiated = upload.Initiated?.getTime() ?? now;
        const intended = (intents.get(upload.Key ?? '') ?? []).some((at) => initiated >= at - INTENT_BEFORE_MS && initiated <= at + INTENT_AFTER_MS);
        if (!intended && now - initiated < staleMs) continue;
        await bucket.client.send(new AbortMultipartUploadCommand({ Bucket: bucket.name, Key: upload.Key, UploadId: upload.UploadId })).catch(() => {});
        aborted++;
      }
      if (!page.IsTruncated) break;
      marker = { key: page.NextKeyMarker, id: page.NextUploadIdMarker };
    }
    // Only now: a record is dropped once its upload is surely gone.
    for (const name of names) await rm(join(this.#dir, name), { force: true });
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
  /** The upload's creation while it is under way (abort() waits for it, or the upload would be left). */
  #creating: Promise<void> | undefined;
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
    await this.#creating?.catch(() => {});
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
      this.#creating ??= this.#create();
      await this.#creating;
    }
    while (this.#inFlight.size >= PARTS_IN_FLIGHT) await Promise.race(this.#inFlight);
    this.#check();
    const body = this.#part.subarray(0, this.#partLength);
    this.#part = Buffer.allocUnsafeSlow(PART_BYTES);
    this.#partLength = 0;
    const PartNumber = this.#nextPart++;
    const uploadId = this.#upload!.id; // set by #create, or it threw
    const sending: Promise<void> = this.#bucket.client
      .send(new UploadPartCommand({ Bucket: this.#bucket.name, Key: this.#key, UploadId: uploadId, PartNumber, Body: body, ContentLength: body.byteLength }))
      .then(
        (answer) => void this.#parts.push({ PartNumber, ETag: answer.ETag! }),
        (err: unknown) => void (this.#failed ??= err as Error),
      )
      .finally(() => this.#inFlight.delete(sending));
    this.#inFlight.add(sending);
  }

  async #create(): Promise<void> {
    // Written down first: a crash after the gateway created the upload must leave a trace of it.
    const record = await this.#ledger.intend(this.#key);
    try {
      const created = await this.#bucket.client.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket.name, Key: this.#key }));
      const id = created.UploadId!;
      await this.#ledger.created(record, this.#key, id);
      this.#upload = { id, record };
    } catch (err) {
      await this.#ledger.forget(record);
      throw err;
    }
  }
}
