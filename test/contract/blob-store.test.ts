import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { readdir, stat, utimes } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DigestMismatchError } from '../../src/store/blob-store.ts';
import { DiskBlobStore } from '../../src/store/disk-blob-store.ts';
import { drainClient } from '../support/drain-client.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { describeBlobStore, HOSTILE_DIGESTS, readAll, sha256 } from './blob-store.contract.ts';

const DAY_MS = 86_400_000;

describeBlobStore(
  'DiskBlobStore',
  async () => {
    const dir = await makeTempDir('disk-blob-store');
    const open = async () => {
      const store = new DiskBlobStore(join(dir, 'blobs'));
      await store.init({ removeUploadsOlderThanMs: DAY_MS });
      return store;
    };
    return { store: await open(), another: open, cleanup: () => removeTempDir(dir) };
  }
);

/** Every file under `dir`, as sorted paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

describe('DiskBlobStore on disk', () => {
  let dir: string;
  let root: string;
  let store: DiskBlobStore;
  const hello = Buffer.from('hello, disk\n');

  beforeEach(async () => {
    dir = await makeTempDir('disk-blob-store-files');
    root = join(dir, 'blobs');
    store = new DiskBlobStore(root);
    await store.init({ removeUploadsOlderThanMs: DAY_MS });
  });

  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('abort leaves no file behind', async () => {
    await store.put(sha256(hello), hello);
    const before = await filesUnder(root);
    const bytes = randomBytes(50_000);
    const upload = await store.begin(sha256(bytes));
    await upload.write(bytes);
    await upload.abort();
    expect(await filesUnder(root)).toEqual(before);
  });

  it('a digest mismatch leaves no file behind', async () => {
    const before = await filesUnder(root);
    const upload = await store.begin(sha256(hello));
    await upload.write(Buffer.from('not hello'));
    await expect(upload.commit()).rejects.toBeInstanceOf(DigestMismatchError);
    await upload.abort();
    await expect(store.put(sha256(hello), Buffer.from('not hello either'))).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await filesUnder(root)).toEqual(before);
  });

  it('a blob survives a new store on the same root', async () => {
    await store.put(sha256(hello), hello);
    const again = new DiskBlobStore(root);
    await again.init({ removeUploadsOlderThanMs: 0 });
    expect(await readAll(await again.open(sha256(hello)))).toEqual(hello);
  });

  it('init removes upload temp files older than the limit and keeps newer ones and blobs', async () => {
    await store.put(sha256(hello), hello);
    const settled = await filesUnder(root);

    // A download that was cut off by a crash two hours ago...
    const crashedBytes = randomBytes(10_000);
    const crashed = await store.begin(sha256(crashedBytes));
    await crashed.write(crashedBytes.subarray(0, 5_000));
    const crashedFiles = (await filesUnder(root)).filter((f) => !settled.includes(f));
    expect(crashedFiles).toHaveLength(1);
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(root, crashedFiles[0]!), twoHoursAgo, twoHoursAgo);

    // ...and one still in progress in another process.
    const live = await store.begin(sha256(hello));
    await live.write(hello.subarray(0, 3));
    const liveFiles = (await filesUnder(root)).filter((f) => !settled.includes(f) && !crashedFiles.includes(f));
    expect(liveFiles).toHaveLength(1);

    try {
      const restarted = new DiskBlobStore(root);
      expect(await restarted.init({ removeUploadsOlderThanMs: 3_600_000 })).toBe(1);
      expect(await filesUnder(root)).toEqual([...settled, ...liveFiles].sort());
      expect(await readAll(await restarted.open(sha256(hello)))).toEqual(hello);

      expect(await restarted.init({ removeUploadsOlderThanMs: 0 })).toBe(1);
      expect(await filesUnder(root)).toEqual(settled);
    } finally {
      await crashed.abort();
      await live.abort();
    }
  });

  it('a hostile digest is refused before touching the disk; no file appears outside the root', async () => {
    const before = await filesUnder(dir);
    const beforeMtime = (await stat(dir)).mtimeMs;
    for (const digest of HOSTILE_DIGESTS) {
      await expect(store.put(digest, hello)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      await expect(store.begin(digest)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      await expect(store.delete(digest)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      await expect(store.stat(digest)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    }
    expect(await filesUnder(dir)).toEqual(before);
    expect((await stat(dir)).mtimeMs).toBe(beforeMtime);
    expect(existsSync(join(dir, 'etc'))).toBe(false);
    expect(existsSync('/tmp/escaped')).toBe(false);
  });

  // A blob GET must not cost a file descriptor that outlives the response (a busy mirror would run out).
  it.skipIf(process.platform !== 'linux')('reading blobs to the end releases their file descriptors', async () => {
    const bytes = randomBytes(1000);
    const digest = sha256(bytes);
    await store.put(digest, bytes);
    const openFds = () => readdirSync('/proc/self/fd').length;
    const before = openFds();
    for (let i = 0; i < 40; i++) {
      await pipeline((await store.open(digest))!, new Writable({ write: (_chunk, _encoding, done) => done() }));
      await readAll(await store.open(digest, { start: 0, end: 9 }));
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(openFds() - before).toBeLessThan(10);
  });
});

describe('DiskBlobStore drains, which reuse their send buffers', () => {
  it('sends each blob its own bytes, one after another, side by side and after a client that went away', async () => {
    const dir = await makeTempDir('disk-blob-store-drains');
    try {
      const store = new DiskBlobStore(join(dir, 'blobs'));
      await store.init({ removeUploadsOlderThanMs: DAY_MS });
      const blobs = [3 * 1024 * 1024 + 5, 1024 * 1024 + 1, 700_000].map((size) => randomBytes(size));
      for (const bytes of blobs) await store.put(sha256(bytes), bytes);
      const drain = async (bytes: Buffer) => {
        const stream = await store.open(sha256(bytes));
        const { socket, received } = drainClient();
        await stream!.drainInto(socket);
        expect(sha256(received())).toBe(sha256(bytes));
      };
      for (const bytes of blobs) await drain(bytes);
      await Promise.all([...blobs, ...blobs].map(drain));
      // A client gone mid-blob: its drain fails, and the next drains are still whole.
      const gone = new PassThrough();
      gone.once('data', () => gone.destroy());
      gone.resume();
      const stream = await store.open(sha256(blobs[0]!));
      await expect(stream!.drainInto(gone)).rejects.toThrow();
      for (const bytes of blobs) await drain(bytes);
    } finally {
      await removeTempDir(dir);
    }
  });
});
