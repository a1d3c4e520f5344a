// Content-addressed blobs on the local disk: <root>/<algorithm>/<first 2 hex>/<hex>.
// Writes go to a temp file in the same tree, are hashed as they arrive, and are renamed into place
// only when the digest matches, so a reader can never see a partial or corrupt blob.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
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
    // The stream owns the handle and closes it when done or destroyed.
    return handle.createReadStream({ start: range?.start, end: range?.end, highWaterMark: 256 * 1024 });
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
