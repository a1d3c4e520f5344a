// Push uploads on the local disk: <root>/_sessions/<id> holds the bytes received so far and <id>.json
// who opened it. A session survives restarts (the client may resume after the bytes it was told are
// there) and is visible to replicas sharing the data dir. Commit hashes, fsyncs and renames the file
// into the content-addressed tree, so a blob is either whole and verified, or absent.
//
// Hashing: the bytes are hashed as they arrive while one process receives them in order; when that
// state is lost (a restart, another replica took a chunk, sha512 asked for) commit hashes the file.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest } from '../oci/digest.ts';
import { BatchedFileWriter } from './batched-file-writer.ts';
import { acquireLock, isStale } from './lock-file.ts';
import { DigestMismatchError, UploadGoneError, UploadOffsetError, type StoredBlob, type UploadSession } from './blob-store.ts';

interface RunningHash {
  readonly hash: Hash;
  bytes: number;
}

/** What the store that owns the sessions lends them. */
export interface SessionHome {
  /** The sessions' directory. */
  readonly dir: string;
  /** Where the blob of `digest` lives once committed. */
  blobPath(digest: string): string;
  /** Hash states of sessions this process is receiving; owned by the store instance, not the module. */
  readonly hashes: Map<string, RunningHash>;
  /** Sessions with a request in progress in this process. */
  readonly busy: Set<string>;
}

/** Bytes received between two background flushes to disk (see append). */
const SYNC_EVERY_BYTES = 32 * 1024 * 1024;

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export async function createDiskSession(home: SessionHome, owner: string): Promise<UploadSession> {
  await mkdir(home.dir, { recursive: true });
  const id = randomUUID();
  await writeFile(join(home.dir, id), new Uint8Array(0), { flag: 'wx', mode: 0o644 });
  await writeFile(join(home.dir, `${id}.json`), JSON.stringify({ owner, startedAt: Date.now() }), { flag: 'wx', mode: 0o644 });
  home.hashes.set(id, { hash: createHash('sha256'), bytes: 0 });
  return new DiskSession(home, id, owner);
}

export async function openDiskSession(home: SessionHome, id: string): Promise<UploadSession | undefined> {
  if (!ID.test(id)) return undefined;
  const text = await readFile(join(home.dir, `${id}.json`), 'utf8').catch(() => undefined);
  if (text === undefined || !(await stat(join(home.dir, id)).catch(() => undefined))) return undefined;
  try {
    const { owner } = JSON.parse(text) as { owner: string };
    return new DiskSession(home, id, owner);
  } catch {
    return undefined;
  }
}

/** Removes sessions whose bytes have not changed for `olderThanMs`. */
export async function expireDiskSessions(home: SessionHome, olderThanMs: number): Promise<number> {
  let removed = 0;
  const now = Date.now();
  for (const name of await readdir(home.dir).catch(() => [] as string[])) {
    if (!ID.test(name) || home.busy.has(name) || (await locked(home, name))) continue;
    const info = await stat(join(home.dir, name)).catch(() => undefined);
    if (info && now - info.mtimeMs >= olderThanMs) {
      await removeSession(home, name);
      removed++;
    }
  }
  // Sidecars and locks whose data file is gone (a crash between the removals, or a finished session).
  for (const name of await readdir(home.dir).catch(() => [] as string[])) {
    const id = name.replace(/\.(json|lock)$/, '');
    if (id === name || !ID.test(id) || (await stat(join(home.dir, id)).catch(() => undefined))) continue;
    if (name.endsWith(LOCK) && !(await isStale(join(home.dir, name)))) continue;
    await rm(join(home.dir, name), { force: true });
  }
  return removed;
}

async function removeSession(home: SessionHome, id: string): Promise<void> {
  home.hashes.delete(id);
  await rm(join(home.dir, id), { force: true });
  await rm(join(home.dir, `${id}.json`), { force: true });
}

/** Whether another request (here or in another process) holds the session's lock now. */
async function locked(home: SessionHome, id: string): Promise<boolean> {
  const path = join(home.dir, `${id}${LOCK}`);
  return (await stat(path).then(() => true, () => false)) && !(await isStale(path));
}

class DiskSession implements UploadSession {
  readonly id: string;
  readonly owner: string;
  readonly #home: SessionHome;
  readonly #path: string;

  constructor(home: SessionHome, id: string, owner: string) {
    this.#home = home;
    this.id = id;
    this.owner = owner;
    this.#path = join(home.dir, id);
  }

  async size(): Promise<number> {
    const info = await stat(this.#path).catch(() => undefined);
    if (!info) throw new UploadGoneError(this.id);
    return info.size;
  }

  async append(offset: number, body: AsyncIterable<Uint8Array>): Promise<number> {
    return this.#exclusive(async () => {
      const size = await this.size();
      if (offset !== size) throw new UploadOffsetError(size, offset);
      const running = this.#home.hashes.get(this.id);
      const hash = running && running.bytes === size ? running : undefined;
      if (!hash) this.#home.hashes.delete(this.id);
      const handle = await open(this.#path, 'r+');
      const file = new BatchedFileWriter(handle, size);
      // Commit must fsync before it publishes the blob; flushing to disk as the bytes arrive (in the
      // background, while the client keeps sending) leaves that final fsync little to wait for.
      let syncing: Promise<void> = Promise.resolve();
      let unsynced = 0;
      try {
        for await (const chunk of body) {
          hash?.hash.update(chunk);
          if (hash) hash.bytes += chunk.byteLength;
          await file.append(chunk);
          unsynced += chunk.byteLength;
          if (unsynced >= SYNC_EVERY_BYTES) {
            unsynced = 0;
            syncing = syncing.then(() => handle.datasync()).catch(() => {});
          }
        }
      } finally {
        // What arrived stays, also when the body broke off: the client resumes after it.
        await file.finish().finally(() => syncing.finally(() => handle.close()));
      }
      return file.length;
    });
  }

  async commit(digestText: string): Promise<StoredBlob> {
    const digest = parseDigest(digestText);
    return this.#exclusive(async () => {
      const size = await this.size();
      const handle = await open(this.#path, 'r');
      let actual: string;
      try {
        // The bytes must be on disk before the rename publishes them (a power loss after it must not leave a hole).
        await handle.sync();
        const running = this.#home.hashes.get(this.id);
        if (running && running.bytes === size && digest.algorithm === 'sha256') {
          actual = `sha256:${running.hash.digest('hex')}`;
        } else {
          const hash = createHash(digest.algorithm);
          for await (const chunk of handle.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
          actual = `${digest.algorithm}:${hash.digest('hex')}`;
        }
      } finally {
        await handle.close();
      }
      if (actual !== digest.value) {
        await removeSession(this.#home, this.id);
        throw new DigestMismatchError(digest.value, actual);
      }
      const finalPath = this.#home.blobPath(digest.value);
      await mkdir(join(finalPath, '..'), { recursive: true });
      // Content-addressed: a blob already there holds the same bytes; keep it (readers may have it open).
      if (await stat(finalPath).then((s) => s.isFile(), () => false)) await rm(this.#path, { force: true });
      else await rename(this.#path, finalPath);
      await removeSession(this.#home, this.id);
      return { digest: digest.value, size };
    });
  }

  async abort(): Promise<void> {
    await removeSession(this.#home, this.id);
  }

  /**
   * One request at a time per session, across the processes sharing the store: a lock file next to the
   * session, created exclusively. A second request meanwhile is out of order (416): were two appends to
   * run at once, the bytes under one digest could come from both.
   */
  async #exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.#home.busy.has(this.id)) throw new UploadOffsetError(await this.size(), -1);
    this.#home.busy.add(this.id);
    try {
      const lock = await acquireLock(join(this.#home.dir, `${this.id}${LOCK}`));
      if (!lock) throw new UploadOffsetError(await this.size(), -1);
      try {
        return await work();
      } finally {
        await lock.release();
      }
    } finally {
      this.#home.busy.delete(this.id);
    }
  }
}

const LOCK = '.lock';
