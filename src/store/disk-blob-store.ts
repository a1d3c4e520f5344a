// Content-addressed blobs on the local disk: <root>/<algorithm>/<first 2 hex>/<hex>.
// Writes go to a temp file in the same tree, are hashed as they arrive, and are renamed into place
// only when the digest matches, so a reader can never see a partial or corrupt blob.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { DigestVerifier, parseDigest } from '../oci/digest.ts';
import { DigestMismatchError, type BlobStore, type BlobUpload, type ByteRange, type PartialBlob, type StoredBlob } from './blob-store.ts';

const TEMP_DIR = '_uploads';

export class DiskBlobStore implements BlobStore {
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
  }

  /** Creates the tree and removes upload temp files older than `olderThanMs` (left by a crash). */
  async init(options: { removeUploadsOlderThanMs: number }): Promise<number> {
    await mkdir(join(this.#root, TEMP_DIR), { recursive: true });
    let removed = 0;
    const now = Date.now();
    for (const name of await readdir(join(this.#root, TEMP_DIR))) {
      const path = join(this.#root, TEMP_DIR, name);
      const info = await stat(path).catch(() => undefined);
      if (info && now - info.mtimeMs >= options.removeUploadsOlderThanMs) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
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

  async open(digest: string, range?: ByteRange): Promise<Readable | undefined> {
    const path = this.#path(digest);
    // Open first so a blob deleted in between yields "not held" rather than a stream error.
    const handle = await open(path, 'r').catch(() => undefined);
    if (!handle) return undefined;
    try {
      const end = range ? range.end + 1 : (await handle.stat()).size;
      // The stream owns the handle and closes it when done or destroyed.
      return new BlobFileStream(handle, range?.start ?? 0, end);
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
      readAt: (position, length) => readFully(handle, position, length),
      close: () => handle.close().catch(() => {}),
    };
  }

  async delete(digest: string): Promise<boolean> {
    const path = this.#path(digest);
    const existed = await stat(path).then(() => true, () => false);
    await rm(path, { force: true });
    return existed;
  }

  async *list(): AsyncIterable<StoredBlob> {
    for (const algorithm of await readdir(this.#root).catch(() => [] as string[])) {
      if (algorithm === TEMP_DIR) continue;
      for (const prefix of await readdir(join(this.#root, algorithm)).catch(() => [] as string[])) {
        for (const hex of await readdir(join(this.#root, algorithm, prefix)).catch(() => [] as string[])) {
          const info = await stat(join(this.#root, algorithm, prefix, hex)).catch(() => undefined);
          if (info?.isFile()) yield { digest: `${algorithm}:${hex}`, size: info.size };
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
  readonly #verifier: DigestVerifier;
  #written = 0;
  #state: 'open' | 'committed' | 'aborted' = 'open';

  constructor(digest: string, tempPath: string, finalPath: string, handle: FileHandle) {
    this.digest = digest;
    this.#tempPath = tempPath;
    this.#finalPath = finalPath;
    this.#handle = handle;
    this.#verifier = new DigestVerifier(parseDigest(digest));
  }

  get written(): number {
    return this.#written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== 'open') throw new Error(`upload of ${this.digest} is ${this.#state}`);
    let offset = 0;
    while (offset < chunk.byteLength) {
      const { bytesWritten } = await this.#handle.write(chunk, offset, chunk.byteLength - offset, this.#written + offset);
      offset += bytesWritten;
    }
    this.#verifier.update(chunk);
    this.#written += chunk.byteLength;
  }

  get id(): string {
    return basename(this.#tempPath);
  }

  async readAt(position: number, length: number): Promise<Uint8Array> {
    return readFully(this.#handle, position, Math.max(0, Math.min(length, this.#written - position)));
  }

  async commit(): Promise<StoredBlob> {
    if (this.#state !== 'open') throw new Error(`upload of ${this.digest} is ${this.#state}`);
    const { ok, actual } = this.#verifier.matches();
    if (!ok) {
      await this.abort();
      throw new DigestMismatchError(this.digest, actual);
    }
    await mkdir(join(this.#finalPath, '..'), { recursive: true });
    await rename(this.#tempPath, this.#finalPath);
    this.#state = 'committed';
    // Followers may still be reading through the handle; the inode stays valid after the rename.
    return { digest: this.digest, size: this.#written };
  }

  async abort(): Promise<void> {
    if (this.#state === 'aborted') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'aborted';
    if (wasOpen) await rm(this.#tempPath, { force: true });
    await this.#handle.close().catch(() => {});
  }
}

async function readFully(handle: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const buffer = Buffer.allocUnsafe(Math.max(0, length));
  let filled = 0;
  while (filled < buffer.byteLength) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.byteLength - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/**
 * Bytes per read of a cached blob, and the one buffer drainInto keeps per client. Measured on loopback
 * (bench/RESULTS.md): 512 KiB sends about 1.5x faster than 256 KiB and 2x faster than 128 KiB (the cost
 * per chunk, not per byte, dominates), while a second buffer to overlap reads with writes gained nothing
 * and doubled the memory (50 clients: +25 MiB per buffer).
 */
const READ_CHUNK = 512 * 1024;

/**
 * A blob file, or one range of it, as a Readable that owns its file handle (closed at the end, on error
 * and on destroy). A file shorter than expected is an error, never a quietly short body.
 *
 * drainInto() is the fast way to send it: piping allocates a fresh buffer for every read, and those
 * allocations (page faults, zeroed pages, GC), more than the copying, held cached-blob throughput to
 * about half of nginx's; drainInto reuses one buffer instead.
 */
class BlobFileStream extends Readable {
  readonly #handle: FileHandle;
  #position: number;
  /** Exclusive. */
  readonly #end: number;

  constructor(handle: FileHandle, start: number, end: number) {
    super({ highWaterMark: READ_CHUNK });
    this.#handle = handle;
    this.#position = start;
    this.#end = end;
  }

  override _read(): void {
    const length = Math.min(READ_CHUNK, this.#end - this.#position);
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

  /**
   * Writes the rest of the blob into `dest` and ends it, through one reused buffer: the next read starts
   * when the previous chunk's write completed (its bytes are with the kernel, which keeps sending them
   * meanwhile). Rejects when a read fails or `dest` closes first; the caller then destroys `dest`.
   * Destroys this stream either way. Only for a stream nothing has read from yet.
   */
  async drainInto(dest: Writable, onBytes?: (count: number) => void): Promise<void> {
    // A write's callback never comes if the socket dies first: 'close' fails the write in flight.
    let failWrite: ((err: Error) => void) | undefined;
    let gone: Error | undefined;
    const onClose = () => {
      gone = new Error('the connection closed before the blob was sent');
      failWrite?.(gone);
    };
    dest.once('close', onClose);
    try {
      if (this.readableDidRead || this.readableFlowing !== null || this.destroyed) throw new Error('drainInto: the stream was already read');
      if (dest.destroyed) throw new Error('the connection closed before the blob was sent');
      const buffer = Buffer.allocUnsafeSlow(Math.min(READ_CHUNK, this.#end - this.#position));
      while (this.#position < this.#end) {
        const bytesRead = await this.#readInto(buffer, Math.min(buffer.length, this.#end - this.#position));
        if (gone) throw gone;
        const chunk = bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
        await new Promise<void>((resolve, reject) => {
          failWrite = reject;
          dest.write(chunk, (err) => (err ? reject(err) : resolve()));
        });
        onBytes?.(bytesRead);
      }
      dest.end();
    } finally {
      dest.off('close', onClose);
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
