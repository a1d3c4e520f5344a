// Push uploads in the bucket, so that any replica can take the next chunk of a push another began:
//   sessions/<id>/info                  who opened it (JSON)
//   sessions/<id>/chunks/<start>        the bytes of one append, from byte <start> (16 digits)
// The bytes held are the chunks that follow each other from 0. A chunk whose body broke off keeps what
// arrived (the client resumes after it). Commit reads the chunks in order, hashing them, into a
// multipart upload to the blob's key that is completed only when the digest matched: two appends
// racing through two replicas can leave either one's bytes, never a blob under a digest it does not have.
import { createHash, randomUUID } from 'node:crypto';
import { parseDigest } from '../oci/digest.ts';
import { DigestMismatchError, UploadGoneError, UploadOffsetError, type StoredBlob, type UploadSession } from './blob-store.ts';
import type { S3Bucket } from './s3-bucket.ts';
import { MultipartWriter, type MultipartLedger } from './s3-multipart.ts';

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SESSIONS = 'sessions/';

/** What the store lends its sessions. */
export interface S3SessionHome {
  readonly bucket: S3Bucket;
  readonly ledger: MultipartLedger;
  /** Where the blob of `digest` lives. */
  blobKey(digest: string): string;
  /** Sessions with a request in progress in this process (owned by the store instance). */
  readonly busy: Set<string>;
}

export async function createS3Session(home: S3SessionHome, owner: string): Promise<UploadSession> {
  const id = randomUUID();
  await home.bucket.put(`${SESSIONS}${id}/info`, JSON.stringify({ owner, startedAt: Date.now() }));
  return new S3Session(home, id, owner);
}

export async function openS3Session(home: S3SessionHome, id: string): Promise<UploadSession | undefined> {
  if (!ID.test(id)) return undefined;
  const text = await home.bucket.getText(`${SESSIONS}${id}/info`);
  if (text === undefined) return undefined;
  try {
    return new S3Session(home, id, (JSON.parse(text) as { owner: string }).owner);
  } catch {
    return undefined;
  }
}

/** Removes sessions none of whose objects changed for `olderThanMs`; counts those that had an info. */
export async function expireS3Sessions(home: S3SessionHome, olderThanMs: number): Promise<number> {
  const sessions = new Map<string, { keys: string[]; newest: number; info: boolean }>();
  for await (const object of home.bucket.list(SESSIONS)) {
    const id = object.key.slice(SESSIONS.length).split('/')[0]!;
    const entry = sessions.get(id) ?? { keys: [], newest: 0, info: false };
    entry.keys.push(object.key);
    entry.newest = Math.max(entry.newest, object.modifiedAt);
    entry.info ||= object.key.endsWith('/info');
    sessions.set(id, entry);
  }
  const now = Date.now();
  let removed = 0;
  for (const [id, entry] of sessions) {
    if (home.busy.has(id) || now - entry.newest < olderThanMs) continue;
    // The info first: the session is gone for every replica before its chunks go.
    await home.bucket.deleteKeys(entry.keys.filter((k) => k.endsWith('/info')));
    await home.bucket.deleteKeys(entry.keys);
    if (entry.info) removed++;
  }
  return removed;
}

class S3Session implements UploadSession {
  readonly id: string;
  readonly owner: string;
  readonly #home: S3SessionHome;

  constructor(home: S3SessionHome, id: string, owner: string) {
    this.#home = home;
    this.id = id;
    this.owner = owner;
  }

  async size(): Promise<number> {
    return (await this.#chunks()).size;
  }

  async append(offset: number, body: AsyncIterable<Uint8Array>): Promise<number> {
    return this.#exclusive(async () => {
      const { size } = await this.#chunks();
      if (offset !== size) throw new UploadOffsetError(size, offset);
      const chunk = new MultipartWriter(this.#home.bucket, `${this.#prefix}chunks/${String(size).padStart(16, '0')}`, this.#home.ledger);
      let broke: unknown;
      try {
        for await (const bytes of body) await chunk.write(bytes);
      } catch (err) {
        broke = err;
      }
      // What arrived stays, also when the body broke off: the client resumes after it.
      if (chunk.written > 0) await chunk.complete().catch(async (err: unknown) => {
        await chunk.abort();
        throw err;
      });
      else await chunk.abort();
      if (broke !== undefined) throw broke;
      return size + chunk.written;
    });
  }

  async commit(digestText: string): Promise<StoredBlob> {
    const digest = parseDigest(digestText);
    return this.#exclusive(async () => {
      const { size, keys } = await this.#chunks();
      const key = this.#home.blobKey(digest.value);
      // Content-addressed: a blob already held has these bytes if the digest matches; only hash then.
      const held = (await this.#home.bucket.head(key)) !== undefined;
      const object = held ? undefined : new MultipartWriter(this.#home.bucket, key, this.#home.ledger);
      const hash = createHash(digest.algorithm);
      try {
        for (const chunkKey of keys) {
          const got = await this.#home.bucket.get(chunkKey);
          if (!got) throw new UploadGoneError(this.id);
          for await (const bytes of got.body) {
            hash.update(bytes as Buffer);
            await object?.write(bytes as Buffer);
          }
        }
        const actual = `${digest.algorithm}:${hash.digest('hex')}`;
        if (actual !== digest.value) {
          await this.#remove();
          throw new DigestMismatchError(digest.value, actual);
        }
        await object?.complete();
      } finally {
        await object?.abort();
      }
      await this.#remove();
      return { digest: digest.value, size };
    });
  }

  async abort(): Promise<void> {
    await this.#remove();
  }

  get #prefix(): string {
    return `${SESSIONS}${this.id}/`;
  }

  /** The chunks that follow each other from byte 0, and how many bytes they hold. */
  async #chunks(): Promise<{ size: number; keys: string[] }> {
    const objects = await this.#home.bucket.listAll(this.#prefix);
    if (!objects.some((o) => o.key === `${this.#prefix}info`)) throw new UploadGoneError(this.id);
    const starts = new Map<number, { key: string; size: number }>();
    for (const object of objects) {
      const match = /chunks\/(\d{16})$/.exec(object.key);
      if (match) starts.set(Number(match[1]), { key: object.key, size: object.size });
    }
    let size = 0;
    const keys: string[] = [];
    for (let next = starts.get(0); next && next.size > 0; next = starts.get(size)) {
      keys.push(next.key);
      size += next.size;
    }
    return { size, keys };
  }

  async #remove(): Promise<void> {
    await this.#home.bucket.deleteKeys([`${this.#prefix}info`]);
    const rest = await this.#home.bucket.listAll(this.#prefix);
    await this.#home.bucket.deleteKeys(rest.map((o) => o.key));
  }

  /**
   * One request at a time per session in this process: a second one meanwhile is out of order (416).
   * Across replicas nothing locks; commit's digest check keeps racing appends from publishing a lie.
   */
  async #exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.#home.busy.has(this.id)) throw new UploadOffsetError(await this.size(), -1);
    this.#home.busy.add(this.id);
    try {
      return await work();
    } finally {
      this.#home.busy.delete(this.id);
    }
  }
}
