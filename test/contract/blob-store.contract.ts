// The one conformance suite every BlobStore implementation must pass (see STYLE.md "Tests").
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OciError } from '../../src/oci/errors.ts';
import { DigestMismatchError, type BlobStore, type BlobUpload } from '../../src/store/blob-store.ts';

/** The written bytes from `position` (up to `length` of them), read through readInto. */
async function readAt(upload: BlobUpload, position: number, length: number): Promise<Buffer> {
  const target = Buffer.alloc(Math.max(0, length));
  return target.subarray(0, await upload.readInto(target, 0, position, length));
}

export interface BlobStoreFixture {
  /** A fresh, empty, ready store. */
  store: BlobStore;
  cleanup(): Promise<void>;
}

export const sha256 = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
export const sha512 = (bytes: Uint8Array): string => `sha512:${createHash('sha512').update(bytes).digest('hex')}`;

export async function readAll(stream: Readable | undefined): Promise<Buffer> {
  if (!stream) throw new Error('expected a stream, got undefined');
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function listAll(store: BlobStore): Promise<{ digest: string; size: number }[]> {
  const all: { digest: string; size: number }[] = [];
  for await (const blob of store.list()) all.push({ digest: blob.digest, size: blob.size });
  return all.sort((a, b) => a.digest.localeCompare(b.digest));
}

/** Asserts two byte strings are equal; compares digests because deep-equal on large buffers is slow. */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(sha256(actual)).toBe(sha256(expected));
}

/** Digests no store may accept: each would name a path outside a content-addressed tree, or is malformed. */
export const HOSTILE_DIGESTS = [
  'sha256:../../etc',
  'sha256:../../../../../../tmp/escaped',
  `sha256:${'a'.repeat(62)}/..`,
  'sha256:..',
  '../sha256:abc',
  `SHA256:${'a'.repeat(64)}`,
  `sha256:${'A'.repeat(64)}`,
  `md5:${'a'.repeat(32)}`,
  '',
];

export function describeBlobStore(name: string, factory: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let fixture: BlobStoreFixture;
    let store: BlobStore;
    const hello = Buffer.from('hello, blob store\n');

    beforeEach(async () => {
      fixture = await factory();
      store = fixture.store;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    describe('put, read, stat, open', () => {
      it('an unknown blob is not held', async () => {
        const digest = sha256(hello);
        expect(await store.stat(digest)).toBeUndefined();
        expect(await store.read(digest)).toBeUndefined();
        expect(await store.open(digest)).toBeUndefined();
      });

      it('put stores bytes that read, stat and open give back', async () => {
        const digest = sha256(hello);
        expect(await store.put(digest, hello)).toEqual({ digest, size: hello.length });
        expect(await store.stat(digest)).toEqual({ digest, size: hello.length });
        expect(Buffer.from((await store.read(digest))!)).toEqual(hello);
        expect(await readAll(await store.open(digest))).toEqual(hello);
      });

      it('holds an empty blob', async () => {
        const empty = new Uint8Array();
        const digest = sha256(empty);
        await store.put(digest, empty);
        expect(await store.stat(digest)).toEqual({ digest, size: 0 });
        expect((await store.read(digest))!.byteLength).toBe(0);
        expect((await readAll(await store.open(digest))).length).toBe(0);
      });

      it('holds sha512 blobs', async () => {
        const digest = sha512(hello);
        await store.put(digest, hello);
        expect(await store.stat(digest)).toEqual({ digest, size: hello.length });
        expect(await readAll(await store.open(digest))).toEqual(hello);
      });

      it('putting the same blob twice is harmless', async () => {
        const digest = sha256(hello);
        await store.put(digest, hello);
        await store.put(digest, hello);
        expect(await readAll(await store.open(digest))).toEqual(hello);
        expect(await listAll(store)).toEqual([{ digest, size: hello.length }]);
      });

      it('put with bytes of another digest throws DigestMismatchError and stores nothing', async () => {
        const digest = sha256(hello);
        const wrong = Buffer.from('something else');
        const err = await store.put(digest, wrong).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(DigestMismatchError);
        expect(err).toMatchObject({ expected: digest, actual: sha256(wrong) });
        expect(await store.stat(digest)).toBeUndefined();
        expect(await listAll(store)).toEqual([]);
      });

      it('open with a range gives exactly those bytes (end inclusive)', async () => {
        const bytes = randomBytes(300_000);
        const digest = sha256(bytes);
        await store.put(digest, bytes);
        expectSameBytes(await readAll(await store.open(digest, { start: 0, end: 99 })), bytes.subarray(0, 100));
        expectSameBytes(await readAll(await store.open(digest, { start: 100_000, end: 299_999 })), bytes.subarray(100_000));
        expect(await readAll(await store.open(digest, { start: 123_456, end: 123_456 }))).toEqual(bytes.subarray(123_456, 123_457));
        expectSameBytes(await readAll(await store.open(digest)), bytes);
      });
    });

    describe('uploads', () => {
      it('begin, write in chunks, commit: the blob becomes visible only at commit', async () => {
        const bytes = randomBytes(200_000);
        const digest = sha256(bytes);
        const upload = await store.begin(digest);
        try {
          expect(upload.digest).toBe(digest);
          for (let i = 0; i < bytes.length; i += 65_536) {
            await upload.write(bytes.subarray(i, i + 65_536));
            expect(upload.written).toBe(Math.min(i + 65_536, bytes.length));
            expect(await store.stat(digest)).toBeUndefined();
            expect(await store.open(digest)).toBeUndefined();
          }
          expect(await listAll(store)).toEqual([]);
          expect(await upload.commit()).toEqual({ digest, size: bytes.length });
        } finally {
          await upload.abort();
        }
        expect(await store.stat(digest)).toEqual({ digest, size: bytes.length });
        expectSameBytes(await readAll(await store.open(digest)), bytes);
      });

      it('commit with the wrong bytes throws DigestMismatchError and leaves nothing visible', async () => {
        const digest = sha256(hello);
        const upload = await store.begin(digest);
        await upload.write(Buffer.from('hello, blob store'));
        await upload.write(Buffer.from('?\n'));
        await expect(upload.commit()).rejects.toBeInstanceOf(DigestMismatchError);
        await upload.abort();
        expect(await store.stat(digest)).toBeUndefined();
        expect(await store.read(digest)).toBeUndefined();
        expect(await store.open(digest)).toBeUndefined();
        expect(await listAll(store)).toEqual([]);
      });

      it('commit of a truncated body throws DigestMismatchError', async () => {
        const digest = sha256(hello);
        const upload = await store.begin(digest);
        await upload.write(hello.subarray(0, 5));
        await expect(upload.commit()).rejects.toBeInstanceOf(DigestMismatchError);
        await upload.abort();
        expect(await store.stat(digest)).toBeUndefined();
      });

      it('readInto reads the bytes written so far', async () => {
        const digest = sha256(hello);
        const upload = await store.begin(digest);
        try {
          expect((await readAt(upload, 0, 10)).byteLength).toBe(0);
          await upload.write(hello.subarray(0, 7));
          expect(Buffer.from(await readAt(upload, 0, 7))).toEqual(hello.subarray(0, 7));
          expect(Buffer.from(await readAt(upload, 2, 100))).toEqual(hello.subarray(2, 7));
          expect((await readAt(upload, 7, 10)).byteLength).toBe(0);
          await upload.write(hello.subarray(7));
          expect(Buffer.from(await readAt(upload, 5, 100))).toEqual(hello.subarray(5));
        } finally {
          await upload.abort();
        }
      });

      it('readInto gives every written byte at any moment of a large upload, across any boundary', async () => {
        const bytes = randomBytes(3 * 1024 * 1024 + 12_345);
        const digest = sha256(bytes);
        const upload = await store.begin(digest);
        try {
          const chunk = 65_536 + 7;
          for (let i = 0; i < bytes.length; i += chunk) {
            await upload.write(bytes.subarray(i, i + chunk));
            const written = upload.written;
            expect(written).toBe(Math.min(i + chunk, bytes.length));
            // A read spanning everything so far, and one of the newest bytes.
            expectSameBytes(Buffer.from(await readAt(upload, 0, written)), bytes.subarray(0, written));
            const from = Math.max(0, written - 100_000);
            const target = Buffer.alloc(200_000);
            const n = await upload.readInto(target, 5, from, 200_000);
            expect(n).toBe(written - from);
            expectSameBytes(target.subarray(5, 5 + n), bytes.subarray(from, written));
          }
          expect(await upload.commit()).toEqual({ digest, size: bytes.length });
          expectSameBytes(Buffer.from(await readAt(upload, 1_000_000, 2_000_000)), bytes.subarray(1_000_000, 3_000_000));
        } finally {
          await upload.abort();
        }
        expectSameBytes(await readAll(await store.open(digest)), bytes);
      });

      it('readInto keeps working after commit, and abort then keeps the blob', async () => {
        const digest = sha256(hello);
        const upload = await store.begin(digest);
        await upload.write(hello);
        await upload.commit();
        expect(Buffer.from(await readAt(upload, 0, hello.length))).toEqual(hello);
        await upload.abort();
        await upload.abort();
        expect(await readAll(await store.open(digest))).toEqual(hello);
      });

      it('abort discards the bytes; abort is safe twice; the upload is closed afterwards', async () => {
        const digest = sha256(hello);
        const upload = await store.begin(digest);
        await upload.write(hello);
        await upload.abort();
        await upload.abort();
        expect(await store.stat(digest)).toBeUndefined();
        expect(await listAll(store)).toEqual([]);
        await expect(upload.write(hello)).rejects.toThrow();
        await expect(upload.commit()).rejects.toThrow();
      });

      it('a committed upload takes no more writes', async () => {
        const digest = sha256(hello);
        const upload = await store.begin(digest);
        try {
          await upload.write(hello);
          await upload.commit();
          await expect(upload.write(hello)).rejects.toThrow();
          await expect(upload.commit()).rejects.toThrow();
        } finally {
          await upload.abort();
        }
        expect(await readAll(await store.open(digest))).toEqual(hello);
      });

      it('two uploads of the same blob at once both commit, and the blob is whole', async () => {
        const bytes = randomBytes(100_000);
        const digest = sha256(bytes);
        const [a, b] = await Promise.all([store.begin(digest), store.begin(digest)]);
        try {
          for (let i = 0; i < bytes.length; i += 10_000) {
            await a.write(bytes.subarray(i, i + 10_000));
            await b.write(bytes.subarray(i, i + 10_000));
          }
          await Promise.all([a.commit(), b.commit()]);
        } finally {
          await Promise.all([a.abort(), b.abort()]);
        }
        expectSameBytes(await readAll(await store.open(digest)), bytes);
        expect(await listAll(store)).toEqual([{ digest, size: bytes.length }]);
      });
    });

    describe('delete and list', () => {
      it('delete removes a held blob and says whether it was there', async () => {
        const digest = sha256(hello);
        await store.put(digest, hello);
        expect(await store.delete(digest)).toBe(true);
        expect(await store.stat(digest)).toBeUndefined();
        expect(await store.open(digest)).toBeUndefined();
        expect(await store.delete(digest)).toBe(false);
      });

      it('list gives every held blob with its size', async () => {
        const blobs = [Buffer.from('one'), Buffer.from('two two'), randomBytes(5000)];
        for (const b of blobs) await store.put(sha256(b), b);
        await store.put(sha512(blobs[0]!), blobs[0]!);
        const expected = [...blobs.map((b) => ({ digest: sha256(b), size: b.length })), { digest: sha512(blobs[0]!), size: 3 }];
        expect(await listAll(store)).toEqual(expected.sort((x, y) => x.digest.localeCompare(y.digest)));
        await store.delete(sha256(blobs[1]!));
        expect((await listAll(store)).map((b) => b.digest)).not.toContain(sha256(blobs[1]!));
        expect(await listAll(store)).toHaveLength(3);
      });

      it('an empty store lists nothing', async () => {
        expect(await listAll(store)).toEqual([]);
      });
    });

    describe('digests are validated', () => {
      it.each(HOSTILE_DIGESTS)('%j is refused by every method with DIGEST_INVALID', async (digest) => {
        const calls: [string, () => Promise<unknown>][] = [
          ['stat', () => store.stat(digest)],
          ['read', () => store.read(digest)],
          ['open', () => store.open(digest)],
          ['open with range', () => store.open(digest, { start: 0, end: 1 })],
          ['put', () => store.put(digest, hello)],
          ['begin', () => store.begin(digest)],
          ['delete', () => store.delete(digest)],
        ];
        for (const [method, call] of calls) {
          const err = await call().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err, method).toBeInstanceOf(OciError);
          expect((err as OciError).code, method).toBe('DIGEST_INVALID');
        }
        expect(await listAll(store)).toEqual([]);
      });
    });
  });
}
