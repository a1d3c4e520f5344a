// The one conformance suite every BlobStore implementation must pass (see STYLE.md "Tests").
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, type TestFunction } from 'vitest';
import { OciError } from '../../src/oci/errors.ts';
import { DigestMismatchError, UploadGoneError, UploadOffsetError, type BlobStore, type BlobUpload, type UploadSession } from '../../src/store/blob-store.ts';

/** The written bytes from `position` (up to `length` of them), read through readInto. */
async function readAt(upload: BlobUpload, position: number, length: number): Promise<Buffer> {
  const target = Buffer.alloc(Math.max(0, length));
  return target.subarray(0, await upload.readInto(target, 0, position, length));
}

export interface BlobStoreFixture {
  /** A fresh, empty, ready store. */
  store: BlobStore;
  /**
   * Another ready store on the same data, as a restarted process or a second replica sharing the data
   * dir opens it (the first one stays open); absent for implementations that keep nothing.
   */
  another?: () => Promise<BlobStore>;
  cleanup(): Promise<void>;
}

export interface BlobStoreSuiteOptions {
  /** Titles of tests this implementation is known to fail (run as it.fails, so a fix shows up). */
  readonly knownBugs?: readonly string[];
}

/** A request body: the chunks, one after another. */
async function* body(...chunks: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}

/** `bytes` as a body of `size`-byte chunks. */
function chunked(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.byteLength; i += size) chunks.push(bytes.subarray(i, i + size));
  return body(...chunks);
}

/** A body that delivers `bytes` in `size`-byte chunks and then breaks off with `error` (a dropped connection). */
async function* breaksOffAfter(bytes: Uint8Array, size: number, error: Error): AsyncIterable<Uint8Array> {
  yield* chunked(bytes, size);
  throw error;
}

/** What the promise rejected with, or undefined when it resolved. */
async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

/** A promise and the function that settles it. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

const ONE_HOUR_MS = 3_600_000;

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

export function describeBlobStore(name: string, factory: () => Promise<BlobStoreFixture>, options: BlobStoreSuiteOptions = {}): void {
  const test = (title: string, fn: TestFunction) => (options.knownBugs?.includes(title) ? it.fails : it)(title, fn);

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

      it('a chunk is the caller\'s again once its write resolved: freed or overwritten then, the blob stays whole', async () => {
        // The mirror frees each upstream chunk's memory as soon as its write resolved (src/store/release-bytes.ts).
        const bytes = randomBytes(3 * 1024 * 1024 + 12_345);
        const digest = sha256(bytes);
        const upload = await store.begin(digest);
        try {
          for (let i = 0; i < bytes.length; i += 65_536) {
            const chunk = new Uint8Array(bytes.subarray(i, i + 65_536));
            await upload.write(chunk);
            if (i % (2 * 65_536) === 0) chunk.buffer.transfer(0);
            else chunk.fill(0);
          }
          expect(await upload.commit()).toEqual({ digest, size: bytes.length });
        } finally {
          await upload.abort();
        }
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

    describe('upload sessions', () => {
      test('createSession gives an empty session with its owner and a URL-safe id that openSession finds', async () => {
        const session = await store.createSession('lab/app');
        const other = await store.createSession('lab/other');
        expect(session.id).toMatch(/^[A-Za-z0-9._~-]+$/);
        expect(other.id).not.toBe(session.id);
        expect(session.owner).toBe('lab/app');
        expect(await session.size()).toBe(0);
        const reopened = await store.openSession(session.id);
        expect(reopened).toBeDefined();
        expect(reopened!.id).toBe(session.id);
        expect(reopened!.owner).toBe('lab/app');
        expect(await reopened!.size()).toBe(0);
        expect((await store.openSession(other.id))!.owner).toBe('lab/other');
        await Promise.all([session.abort(), other.abort()]);
      });

      test('openSession of an unknown or malformed id is undefined', async () => {
        const session = await store.createSession('lab/app');
        try {
          for (const id of ['', 'nope', '../x', '../../../../etc/passwd', `${session.id}/..`, `${session.id}.json`, `../${session.id}`, 'x'.repeat(5000), '_sessions', '.']) {
            expect(await store.openSession(id), id).toBeUndefined();
          }
          expect(await session.size()).toBe(0);
        } finally {
          await session.abort();
        }
      });

      test('append in several requests and chunks, then commit with the right digest: the blob is stored and the session gone', async () => {
        const bytes = randomBytes(3 * 1024 * 1024 + 54_321);
        const digest = sha256(bytes);
        const session = await store.createSession('lab/app');
        const cuts = [0, 1, 700_000, 2_500_000, bytes.length];
        for (let i = 0; i + 1 < cuts.length; i++) {
          // Each request through the session as a new request would open it.
          const current = i === 0 ? session : (await store.openSession(session.id))!;
          expect(await current.size()).toBe(cuts[i]);
          expect(await current.append(cuts[i]!, chunked(bytes.subarray(cuts[i], cuts[i + 1]), 65_536 + 3))).toBe(cuts[i + 1]);
          expect(await current.size()).toBe(cuts[i + 1]);
          // Nothing of a session is a blob before commit.
          expect(await store.stat(digest)).toBeUndefined();
          expect(await listAll(store)).toEqual([]);
        }
        expect(await (await store.openSession(session.id))!.commit(digest)).toEqual({ digest, size: bytes.length });
        expect(await store.stat(digest)).toEqual({ digest, size: bytes.length });
        expectSameBytes((await store.read(digest))!, bytes);
        expectSameBytes(await readAll(await store.open(digest)), bytes);
        expect(await listAll(store)).toEqual([{ digest, size: bytes.length }]);
        expect(await store.openSession(session.id)).toBeUndefined();
      });

      test('append copies each chunk before it asks for the next: a body that frees its chunks then still stores them whole', async () => {
        // What src/http/request-body.ts does with a request's chunks.
        const bytes = randomBytes(2 * 1024 * 1024 + 999);
        const digest = sha256(bytes);
        async function* freeing(): AsyncIterable<Uint8Array> {
          for (let i = 0; i < bytes.length; i += 65_536) {
            const chunk = new Uint8Array(bytes.subarray(i, i + 65_536));
            yield chunk;
            chunk.buffer.transfer(0);
          }
        }
        const session = await store.createSession('lab/app');
        expect(await session.append(0, freeing())).toBe(bytes.length);
        expect(await session.commit(digest)).toEqual({ digest, size: bytes.length });
        expectSameBytes(await readAll(await store.open(digest)), bytes);
      });

      test('an upload of nothing commits as the empty blob', async () => {
        const empty = new Uint8Array();
        const session = await store.createSession('lab/app');
        expect(await session.append(0, body())).toBe(0);
        expect(await session.commit(sha256(empty))).toEqual({ digest: sha256(empty), size: 0 });
        expect(await store.stat(sha256(empty))).toEqual({ digest: sha256(empty), size: 0 });
        expect(await store.openSession(session.id)).toBeUndefined();
      });

      test('commit with the wrong digest throws DigestMismatchError, stores nothing and ends the session', async () => {
        const session = await store.createSession('lab/app');
        await session.append(0, body(hello.subarray(0, 5), hello.subarray(5)));
        const wrong = sha256(Buffer.from('something else'));
        const err = await errorOf(session.commit(wrong));
        expect(err).toBeInstanceOf(DigestMismatchError);
        expect(err).toMatchObject({ expected: wrong, actual: sha256(hello) });
        expect(await store.stat(wrong)).toBeUndefined();
        expect(await store.stat(sha256(hello))).toBeUndefined();
        expect(await listAll(store)).toEqual([]);
        expect(await store.openSession(session.id)).toBeUndefined();
        expect(await errorOf(session.size())).toBeInstanceOf(UploadGoneError);
      });

      test('commit with a digest of the other algorithm is a mismatch too', async () => {
        const session = await store.createSession('lab/app');
        await session.append(0, body(hello));
        const wrong = sha512(Buffer.from('not hello'));
        expect(await errorOf(session.commit(wrong))).toMatchObject({ name: 'DigestMismatchError', expected: wrong, actual: sha512(hello) });
        expect(await listAll(store)).toEqual([]);
      });

      test('commit of a truncated upload is a mismatch', async () => {
        const bytes = randomBytes(100_000);
        const session = await store.createSession('lab/app');
        await session.append(0, body(bytes.subarray(0, 99_999)));
        expect(await errorOf(session.commit(sha256(bytes)))).toBeInstanceOf(DigestMismatchError);
        expect(await store.stat(sha256(bytes))).toBeUndefined();
      });

      test('commit refuses a malformed digest with DIGEST_INVALID and stores nothing', async () => {
        const session = await store.createSession('lab/app');
        try {
          await session.append(0, body(hello));
          for (const digest of HOSTILE_DIGESTS) {
            const err = await errorOf(session.commit(digest));
            expect(err, digest).toBeInstanceOf(OciError);
            expect((err as OciError).code, digest).toBe('DIGEST_INVALID');
          }
          expect(await listAll(store)).toEqual([]);
        } finally {
          await session.abort();
        }
      });

      test('append at a wrong offset throws UploadOffsetError with the size held, and writes nothing', async () => {
        const bytes = randomBytes(200_000);
        const session = await store.createSession('lab/app');
        await session.append(0, body(bytes.subarray(0, 100_000)));
        for (const offset of [0, 99_999, 100_001, 200_000, -1]) {
          const err = await errorOf(session.append(offset, body(Buffer.from('unwanted bytes'))));
          expect(err, String(offset)).toBeInstanceOf(UploadOffsetError);
          expect((err as UploadOffsetError).size, String(offset)).toBe(100_000);
          expect(await session.size()).toBe(100_000);
        }
        expect(await session.append(100_000, body(bytes.subarray(100_000)))).toBe(200_000);
        await session.commit(sha256(bytes));
        expectSameBytes((await store.read(sha256(bytes)))!, bytes);
      });

      test('a body that breaks off keeps the bytes that arrived, and the upload resumes after them', async () => {
        const bytes = randomBytes(3 * 1024 * 1024 + 777);
        const digest = sha256(bytes);
        const session = await store.createSession('lab/app');
        const arrived = 2 * 1024 * 1024 + 65_536 * 3 + 11;
        const dropped = new Error('client went away');
        expect(await errorOf(session.append(0, breaksOffAfter(bytes.subarray(0, arrived), 65_536, dropped)))).toBeDefined();
        expect(await session.size()).toBe(arrived);
        // The client asks where to go on (a new request) and sends the rest, which breaks off too...
        const resumed = (await store.openSession(session.id))!;
        const second = arrived + 12_345;
        expect(await errorOf(resumed.append(await resumed.size(), breaksOffAfter(bytes.subarray(arrived, second), 4096, dropped)))).toBeDefined();
        expect(await resumed.size()).toBe(second);
        // ...and then the last part.
        expect(await resumed.append(second, chunked(bytes.subarray(second), 65_536))).toBe(bytes.length);
        expect(await resumed.commit(digest)).toEqual({ digest, size: bytes.length });
        expectSameBytes(await readAll(await store.open(digest)), bytes);
      });

      test('a body that breaks off before any byte leaves the session as it was', async () => {
        const session = await store.createSession('lab/app');
        await session.append(0, body(hello.subarray(0, 4)));
        expect(await errorOf(session.append(4, breaksOffAfter(new Uint8Array(), 1, new Error('reset'))))).toBeDefined();
        expect(await session.size()).toBe(4);
        await session.append(4, body(hello.subarray(4)));
        expect(await session.commit(sha256(hello))).toEqual({ digest: sha256(hello), size: hello.length });
      });

      test('a second append while one is being received is refused with UploadOffsetError', async () => {
        const bytes = randomBytes(150_000);
        const session = await store.createSession('lab/app');
        const firstChunkTaken = signal();
        const rest = signal();
        const first = session.append(
          0,
          (async function* () {
            yield bytes.subarray(0, 50_000);
            firstChunkTaken.fire();
            await rest.promise;
            yield bytes.subarray(50_000, 100_000);
          })(),
        );
        await firstChunkTaken.promise;
        const again = (await store.openSession(session.id))!;
        expect(await errorOf(again.append(0, body(bytes.subarray(0, 100_000))))).toBeInstanceOf(UploadOffsetError);
        expect(await errorOf(again.append(50_000, body(bytes.subarray(50_000, 100_000))))).toBeInstanceOf(UploadOffsetError);
        rest.fire();
        expect(await first).toBe(100_000);
        expect(await again.append(100_000, body(bytes.subarray(100_000)))).toBe(150_000);
        await again.commit(sha256(bytes));
        expectSameBytes((await store.read(sha256(bytes)))!, bytes);
      });

      test('sessions are independent of each other', async () => {
        const a = randomBytes(300_000);
        const b = randomBytes(200_000);
        const [sa, sb] = await Promise.all([store.createSession('lab/a'), store.createSession('lab/b')]);
        for (let i = 0; i < 300_000; i += 50_000) {
          await sa.append(i, body(a.subarray(i, i + 50_000)));
          if (i < 200_000) await sb.append(i, body(b.subarray(i, i + 50_000)));
        }
        expect(await sb.size()).toBe(200_000);
        await sb.abort();
        expect(await sa.commit(sha256(a))).toEqual({ digest: sha256(a), size: a.length });
        expect(await listAll(store)).toEqual([{ digest: sha256(a), size: a.length }]);
      });

      test('commits with sha512', async () => {
        const bytes = randomBytes(1024 * 1024 + 5);
        const digest = sha512(bytes);
        const session = await store.createSession('lab/app');
        await session.append(0, chunked(bytes.subarray(0, 400_000), 65_536));
        await session.append(400_000, chunked(bytes.subarray(400_000), 65_536));
        expect(await session.commit(digest)).toEqual({ digest, size: bytes.length });
        expect(await store.stat(digest)).toEqual({ digest, size: bytes.length });
        expectSameBytes(await readAll(await store.open(digest)), bytes);
        expect(await store.stat(sha256(bytes))).toBeUndefined();
        expect(await store.openSession(session.id)).toBeUndefined();
      });

      test('committing a blob the store already holds keeps it readable, also by a reader that has it open', async () => {
        const bytes = randomBytes(500_000);
        const digest = sha256(bytes);
        await store.put(digest, bytes);
        const reader = await store.open(digest);
        const session = await store.createSession('lab/app');
        await session.append(0, chunked(bytes, 100_000));
        expect(await session.commit(digest)).toEqual({ digest, size: bytes.length });
        expectSameBytes(await readAll(reader), bytes);
        expectSameBytes(await readAll(await store.open(digest)), bytes);
        expect(await listAll(store)).toEqual([{ digest, size: bytes.length }]);
        expect(await store.openSession(session.id)).toBeUndefined();
      });

      test('abort ends the session, is safe twice, and a gone session refuses appends and commits', async () => {
        const session = await store.createSession('lab/app');
        await session.append(0, body(hello));
        await session.abort();
        await session.abort();
        expect(await store.openSession(session.id)).toBeUndefined();
        expect(await errorOf(session.size())).toBeInstanceOf(UploadGoneError);
        expect(await errorOf(session.append(hello.length, body(hello)))).toBeInstanceOf(UploadGoneError);
        expect(await errorOf(session.commit(sha256(hello)))).toBeInstanceOf(UploadGoneError);
        expect(await store.stat(sha256(hello))).toBeUndefined();
        expect(await listAll(store)).toEqual([]);
      });

      test('a committed session is gone: it takes no more appends and no second commit', async () => {
        const session = await store.createSession('lab/app');
        await session.append(0, body(hello));
        await session.commit(sha256(hello));
        expect(await errorOf(session.append(hello.length, body(hello)))).toBeInstanceOf(UploadGoneError);
        expect(await errorOf(session.commit(sha256(hello)))).toBeInstanceOf(UploadGoneError);
        await session.abort();
        expect(await readAll(await store.open(sha256(hello)))).toEqual(hello);
      });

      test('expireSessions removes idle sessions only once they are older than the limit', async () => {
        await store.put(sha256(hello), hello);
        const idle = await store.createSession('lab/a');
        const used = await store.createSession('lab/b');
        await used.append(0, body(hello));
        expect(await store.expireSessions(ONE_HOUR_MS)).toBe(0);
        expect(await store.openSession(idle.id)).toBeDefined();
        expect(await (await store.openSession(used.id))!.size()).toBe(hello.length);

        expect(await store.expireSessions(0)).toBe(2);
        expect(await store.openSession(idle.id)).toBeUndefined();
        expect(await store.openSession(used.id)).toBeUndefined();
        expect(await errorOf(used.append(hello.length, body(hello)))).toBeInstanceOf(UploadGoneError);
        expect(await store.expireSessions(0)).toBe(0);
        // Blobs are no sessions.
        expect(await readAll(await store.open(sha256(hello)))).toEqual(hello);
        expect(await listAll(store)).toEqual([{ digest: sha256(hello), size: hello.length }]);
      });

      test('a session continues on another store on the same data (a restart), which commits it', async (ctx) => {
        if (!fixture.another) return ctx.skip();
        const bytes = randomBytes(2 * 1024 * 1024 + 99);
        const digest = sha256(bytes);
        const session = await store.createSession('lab/app');
        await session.append(0, chunked(bytes.subarray(0, 1_500_000), 65_536));

        const restarted = await fixture.another();
        const resumed = await restarted.openSession(session.id);
        expect(resumed).toBeDefined();
        expect(resumed!.owner).toBe('lab/app');
        expect(await resumed!.size()).toBe(1_500_000);
        expect(await errorOf(resumed!.append(0, body(bytes)))).toMatchObject({ name: 'UploadOffsetError', size: 1_500_000 });
        expect(await resumed!.append(1_500_000, chunked(bytes.subarray(1_500_000), 65_536))).toBe(bytes.length);
        expect(await resumed!.commit(digest)).toEqual({ digest, size: bytes.length });

        expectSameBytes((await restarted.read(digest))!, bytes);
        expectSameBytes((await store.read(digest))!, bytes);
        expect(await store.openSession(session.id)).toBeUndefined();
        expect(await restarted.openSession(session.id)).toBeUndefined();
      });

      test('a session that another store took chunks of commits right where it began', async (ctx) => {
        if (!fixture.another) return ctx.skip();
        const bytes = randomBytes(900_000);
        const session = await store.createSession('lab/app');
        await session.append(0, body(bytes.subarray(0, 300_000)));
        const replica = await fixture.another();
        await (await replica.openSession(session.id))!.append(300_000, body(bytes.subarray(300_000, 600_000)));
        expect(await session.size()).toBe(600_000);
        await session.append(600_000, body(bytes.subarray(600_000)));
        // A digest of the bytes this store saw itself is no match...
        const onlyOwn = sha256(Buffer.concat([bytes.subarray(0, 300_000), bytes.subarray(600_000)]));
        const probe = await store.createSession('lab/app');
        await probe.append(0, body(bytes));
        expect(await errorOf(probe.commit(onlyOwn))).toBeInstanceOf(DigestMismatchError);
        // ...the digest of every byte is.
        expect(await session.commit(sha256(bytes))).toEqual({ digest: sha256(bytes), size: bytes.length });
        expectSameBytes((await replica.read(sha256(bytes)))!, bytes);
      });

      test('appends racing through two stores never publish bytes under a digest they do not have', async (ctx) => {
        if (!fixture.another) return ctx.skip();
        const mine = randomBytes(100_000);
        const theirs = randomBytes(100_000);
        const session = await store.createSession('lab/app');
        const replica = await fixture.another();
        const viaReplica = (await replica.openSession(session.id))!;
        // The replica accepts a chunk at offset 0 and waits for its body...
        const replicaReading = signal();
        const replicaGo = signal();
        const raced = errorOf(
          viaReplica.append(
            0,
            (async function* () {
              replicaReading.fire();
              await replicaGo.promise;
              yield theirs;
            })(),
          ),
        );
        await Promise.race([replicaReading.promise, raced]);
        // ...while this store receives a whole chunk at offset 0; then the replica's bytes arrive.
        const mineAppended = await errorOf(session.append(0, body(mine)));
        replicaGo.fire();
        await raced;
        // Whatever each append answered: a blob is published only under the digest of its bytes.
        for (const digest of [sha256(mine), sha256(theirs)]) {
          const open = await store.openSession(session.id);
          if (!open) break;
          await errorOf(session.commit(digest));
        }
        for (const digest of [sha256(mine), sha256(theirs)]) {
          const held = await store.read(digest);
          if (held) expect(sha256(held), `bytes held as ${digest.slice(0, 15)}`).toBe(digest);
        }
        expect(mineAppended === undefined || mineAppended instanceof UploadOffsetError).toBe(true);
      });
    });

    describe('delete with keep', () => {
      test('a keep that says yes leaves the blob in place and delete returns false', async () => {
        const digest = sha256(hello);
        await store.put(digest, hello);
        let asked = 0;
        expect(
          await store.delete(digest, async () => {
            asked++;
            return true;
          }),
        ).toBe(false);
        expect(asked).toBe(1);
        expect(await store.stat(digest)).toEqual({ digest, size: hello.length });
        expect(await readAll(await store.open(digest))).toEqual(hello);
        expect(await listAll(store)).toEqual([{ digest, size: hello.length }]);
      });

      test('a keep that says no removes the blob and delete returns true', async () => {
        const digest = sha256(hello);
        await store.put(digest, hello);
        expect(await store.delete(digest, async () => false)).toBe(true);
        expect(await store.stat(digest)).toBeUndefined();
        expect(await store.open(digest)).toBeUndefined();
        expect(await listAll(store)).toEqual([]);
      });

      test('while keep is asked the blob is out of sight', async () => {
        const digest = sha256(hello);
        await store.put(digest, hello);
        let seen: unknown = 'not asked';
        await store.delete(digest, async () => {
          seen = await store.stat(digest);
          return true;
        });
        expect(seen).toBeUndefined();
        expect(await store.stat(digest)).toEqual({ digest, size: hello.length });
      });

      test('delete with keep of a blob not held returns false', async () => {
        expect(await store.delete(sha256(hello), async () => false)).toBe(false);
        expect(await store.delete(sha256(hello), async () => true)).toBe(false);
      });

      test('a keep that fails leaves the blob in place', async () => {
        const digest = sha256(hello);
        await store.put(digest, hello);
        await errorOf(store.delete(digest, () => Promise.reject(new Error('index unavailable'))));
        expect(await store.stat(digest)).toEqual({ digest, size: hello.length });
        expect(await readAll(await store.open(digest))).toEqual(hello);
      });

      test('a session committed to a blob a keep-delete decided to keep leaves it whole', async () => {
        const bytes = randomBytes(200_000);
        const digest = sha256(bytes);
        await store.put(digest, bytes);
        const session = await store.createSession('lab/app');
        await session.append(0, body(bytes));
        expect(
          await store.delete(digest, async () => {
            // The push commits while the blob is out of sight, then claims it.
            await session.commit(digest);
            return true;
          }),
        ).toBe(false);
        expectSameBytes((await store.read(digest))!, bytes);
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
