// Content-addressed blobs on the local disk: <root>/<algorithm>/<first 2 hex>/<hex>.
// Writes go to a temp file in the same tree, are hashed as they arrive, and are renamed into place
// only when the digest matches, so a reader can never see a partial or corrupt blob.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { DigestVerifier, parseDigest } from '../oci/digest.ts';
import { readFully } from './read-fully.ts';
import { DRAIN_CHUNK, SocketSink, type BlobStream } from './blob-stream.ts';
import { DrainBuffers } from './drain-buffers.ts';
import { DigestMismatchError, type BlobStore, type BlobUpload, type ByteRange, type PartialBlob, type StoredBlob, type UploadSession } from './blob-store.ts';
import { createDiskSession, expireDiskSessions, openDiskSession, type SessionHome } from './disk-upload-session.ts';
import { VerifiedSpool } from './verified-spool.ts';

const TEMP_DIR = '_uploads';
/** A blob moved aside by delete(digest, keep) while keep() is asked: `deleting-<algorithm>-<hex>-<random>`. */
const DELETING = 'deleting-';
/** A delete's keep() is asked within seconds; an aside file older than this was left by a crash. */
const ASIDE_GRACE_MS = 60_000;
/** Push upload sessions (disk-upload-session.ts). */
const SESSIONS_DIR = '_sessions';

export class DiskBlobStore implements BlobStore {
  readonly #root: string;
  readonly #sessions: SessionHome;
  /** The send buffers of this store's blob drains. */
  readonly #drainBuffers = new DrainBuffers();

  constructor(root: string) {
    this.#root = root;
    this.#sessions = { dir: join(root, SESSIONS_DIR), blobPath: (digest) => this.#path(digest), hashes: new Map(), busy: new Set() };
  }

  /** Creates the tree and removes upload temp files older than `olderThanMs` (left by a crash). */
  async init(options: { removeUploadsOlderThanMs: number }): Promise<number> {
    await mkdir(join(this.#root, TEMP_DIR), { recursive: true });
    let removed = 0;
    const now = Date.now();
    for (const name of await readdir(join(this.#root, TEMP_DIR))) {
      const path = join(this.#root, TEMP_DIR, name);
      if (name.startsWith(DELETING)) {
        await this.#restoreAside(name);
        continue;
      }
      const info = await stat(path).catch(() => undefined);
      if (info && now - info.mtimeMs >= options.removeUploadsOlderThanMs) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }

  /**
   * A crash (or another replica's start) between delete's move aside and its decision: nothing was
   * decided, so the blob goes back (eviction will choose it again if it is still unclaimed cache).
   */
  async #restoreAside(name: string): Promise<void> {
    const match = /^deleting-([a-z0-9]+)-([0-9a-f]+)-[0-9a-f]+$/.exec(name);
    const aside = join(this.#root, TEMP_DIR, name);
    if (!match) return;
    const path = this.#path(`${match[1]}:${match[2]}`);
    // Only if it is old enough not to be another replica's delete in progress.
    const info = await stat(aside).catch(() => undefined);
    if (!info || Date.now() - info.ctimeMs < ASIDE_GRACE_MS) return;
    if (await stat(path).then(() => true, () => false)) await rm(aside, { force: true });
    else await mkdir(join(path, '..'), { recursive: true }).then(() => rename(aside, path));
  }

  /** The path of a blob; the digest is validated first, so no input can name a file outside the tree. */
  #path(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.#root, algorithm, hex.slice(0, 2), hex);
  }

  async stat(digest: string): Promise<StoredBlob | undefined> {
    const info = await stat(this.#path(digest)).catch(() => undefined);
    return info?.isFile() ? { digest, size: info.size } : undefined;
  }

  async open(digest: string, range?: ByteRange): Promise<BlobStream | undefined> {
    const path = this.#path(digest);
    // Open first so a blob deleted in between yields "not held" rather than a stream error.
    const handle = await open(path, 'r').catch(() => undefined);
    if (!handle) return undefined;
    try {
      const end = range ? range.end + 1 : (await handle.stat()).size;
      // The stream owns the handle and closes it when done or destroyed.
      return new BlobFileStream(handle, range?.start ?? 0, end, this.#drainBuffers);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async read(digest: string): Promise<Uint8Array | undefined> {
    return readFile(this.#path(digest)).catch(() => undefined);
  }

  async put(digest: string, bytes: Uint8Array): Promise<StoredBlob> {
    const upload = await this.begin(digest);
    try {
      await upload.write(bytes);
      return await upload.commit();
    } finally {
      await upload.abort();
    }
  }

  async begin(digest: string): Promise<BlobUpload> {
    const finalPath = this.#path(digest);
    const tempPath = join(this.#root, TEMP_DIR, `${hostname()}-${process.pid}-${randomBytes(8).toString('hex')}`);
    const handle = await open(tempPath, 'wx+', 0o644);
    return new DiskUpload(digest, tempPath, finalPath, handle);
  }

  async follow(id: string): Promise<PartialBlob | undefined> {
    if (!/^[A-Za-z0-9._-]+$/.test(id)) return undefined;
    // The handle stays valid when the writer renames the file into place: same inode.
    const handle = await open(join(this.#root, TEMP_DIR, id), 'r').catch(() => undefined);
    if (!handle) return undefined;
    return {
      size: async () => (await handle.stat()).size,
      readInto: (target, targetOffset, position, length) => readFully(handle, target, targetOffset, position, length),
      close: () => handle.close().catch(() => {}),
    };
  }

  async delete(digest: string, keep?: () => Promise<boolean>): Promise<boolean> {
    const path = this.#path(digest);
    if (keep) {
      // Out of sight first (atomic), then ask: a blob claimed meanwhile goes back where it was. The name
      // says which blob it is, so that a crash in between is undone at the next start (init).
      const { algorithm, hex } = parseDigest(digest);
      const aside = join(this.#root, TEMP_DIR, `${DELETING}${algorithm}-${hex}-${randomBytes(4).toString('hex')}`);
      const moved = await rename(path, aside).then(() => true, () => false);
      if (!moved) return false;
      let claimed = true;
      try {
        claimed = await keep();
      } finally {
        // A keep() that fails counts as a claim: the blob goes back.
        if (claimed) await rename(aside, path);
      }
      if (claimed) return false;
      await rm(aside, { force: true });
      return true;
    }
    const existed = await stat(path).then(() => true, () => false);
    await rm(path, { force: true });
    return existed;
  }

  createSession(owner: string): Promise<UploadSession> {
    return createDiskSession(this.#sessions, owner);
  }

  openSession(id: string): Promise<UploadSession | undefined> {
    return openDiskSession(this.#sessions, id);
  }

  expireSessions(olderThanMs: number): Promise<number> {
    return expireDiskSessions(this.#sessions, olderThanMs);
  }

  async *list(): AsyncIterable<StoredBlob & { readonly modifiedAt: number }> {
    for (const algorithm of await readdir(this.#root).catch(() => [] as string[])) {
      if (algorithm.startsWith('_')) continue; // _uploads, _sessions
      for (const prefix of await readdir(join(this.#root, algorithm)).catch(() => [] as string[])) {
        for (const hex of await readdir(join(this.#root, algorithm, prefix)).catch(() => [] as string[])) {
          const info = await stat(join(this.#root, algorithm, prefix, hex)).catch(() => undefined);
          if (info?.isFile()) yield { digest: `${algorithm}:${hex}`, size: info.size, modifiedAt: info.mtimeMs };
        }
      }
    }
  }
}

class DiskUpload implements BlobUpload {
  readonly digest: string;
  readonly #tempPath: string;
  readonly #finalPath: string;
  readonly #handle: FileHandle;
  readonly #file: VerifiedSpool;
  #state: 'open' | 'committed' | 'aborted' = 'open';

  constructor(digest: string, tempPath: string, finalPath: string, handle: FileHandle) {
    this.digest = digest;
    this.#tempPath = tempPath;
    this.#finalPath = finalPath;
    this.#handle = handle;
    this.#file = new VerifiedSpool(digest, handle);
  }

  get written(): number {
    return this.#file.length;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== 'open') throw new Error(`upload of ${this.digest} is ${this.#state}`);
    await this.#file.append(chunk);
  }

  get id(): string {
    return basename(this.#tempPath);
  }

  readInto(target: Uint8Array, targetOffset: number, position: number, length: number): Promise<number> {
    return this.#file.readInto(target, targetOffset, position, length);
  }

  async commit(): Promise<StoredBlob> {
    if (this.#state !== 'open') throw new Error(`upload of ${this.digest} is ${this.#state}`);
    await this.#file.finish();
    try {
      this.#file.verify();
    } catch (err) {
      await this.abort();
      throw err;
    }
    await mkdir(join(this.#finalPath, '..'), { recursive: true });
    await rename(this.#tempPath, this.#finalPath);
    this.#state = 'committed';
    // Followers may still be reading through the handle; the inode stays valid after the rename.
    return { digest: this.digest, size: this.#file.length };
  }

  async abort(): Promise<void> {
    if (this.#state === 'aborted') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'aborted';
    await this.#file.discard();
    if (wasOpen) await rm(this.#tempPath, { force: true });
    await this.#handle.close().catch(() => {});
  }
}

/**
 * A blob file, or one range of it, as a BlobStream that owns its file handle (closed at the end, on error
 * and on destroy). A file shorter than expected is an error, never a quietly short body.
 */
class BlobFileStream extends Readable implements BlobStream {
  readonly #handle: FileHandle;
  #position: number;
  /** Exclusive. */
  readonly #end: number;
  readonly #drainBuffers: DrainBuffers;

  constructor(handle: FileHandle, start: number, end: number, drainBuffers: DrainBuffers) {
    super({ highWaterMark: DRAIN_CHUNK });
    this.#drainBuffers = drainBuffers;
    this.#handle = handle;
    this.#position = start;
    this.#end = end;
  }

  override _read(): void {
    const length = Math.min(DRAIN_CHUNK, this.#end - this.#position);
    if (length <= 0) {
      this.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafeSlow(length);
    this.#readInto(buffer, length).then(
      (bytesRead) => this.push(buffer.subarray(0, bytesRead)),
      (err: unknown) => this.destroy(err as Error),
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // close() waits for a read still in flight.
    this.#handle.close().then(
      () => callback(err),
      (closeErr: unknown) => callback(err ?? (closeErr as Error)),
    );
  }

  async drainInto(dest: Writable, onBytes?: (count: number) => void): Promise<void> {
    const sink = new SocketSink(dest);
    try {
      if (this.readableDidRead || this.readableFlowing !== null || this.destroyed) throw new Error('drainInto: the stream was already read');
      sink.check();
      // The next read starts when the previous chunk was handed to the kernel, which keeps sending it meanwhile.
      const remaining = this.#end - this.#position;
      const buffer = remaining >= DRAIN_CHUNK ? this.#drainBuffers.take() : Buffer.allocUnsafeSlow(remaining);
      while (this.#position < this.#end) {
        const bytesRead = await this.#readInto(buffer, Math.min(buffer.length, this.#end - this.#position));
        await sink.write(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
        onBytes?.(bytesRead);
      }
      sink.end();
      // Every write completed: nothing refers to the bytes any more (a smaller buffer is not kept).
      this.#drainBuffers.give(buffer);
    } finally {
      sink.done();
      this.destroy();
    }
  }

  /** Reads up to `length` bytes at the current position into `buffer`; at least one, or it throws. */
  async #readInto(buffer: Buffer, length: number): Promise<number> {
    const { bytesRead } = await this.#handle.read(buffer, 0, length, this.#position);
    if (bytesRead === 0) throw new Error(`blob file ended at byte ${this.#position}, before byte ${this.#end}`);
    this.#position += bytesRead;
    return bytesRead;
  }
}
