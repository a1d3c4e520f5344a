// Request bodies through a real node:http server (@hono/node-server), as uploads and manifests read them.
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSmallBody, requestBody } from '../../src/http/request-body.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('request bodies', () => {
  let server: ServerType;
  let base: string;
  /** What the streaming route saw: whether every chunk it had been handed was freed once it asked for the next. */
  let freedBehind = true;

  beforeAll(async () => {
    const app = new Hono();
    app.put('/stream', async (c) => {
      const hash = createHash('sha256');
      let previous: Uint8Array | undefined;
      let chunks = 0;
      freedBehind = true;
      for await (const chunk of requestBody(c)) {
        // The chunk before this one was copied (hashed) and is freed by now, unless it shared its memory.
        if (previous && previous.byteLength > 0 && previous.byteOffset === 0 && previous.buffer.byteLength === previous.byteLength) freedBehind = false;
        hash.update(chunk);
        previous = chunk;
        chunks++;
      }
      return c.json({ sha256: hash.digest('hex'), chunks });
    });
    app.put('/small', async (c) => c.json({ sha256: sha256(await readSmallBody(c, 4 * 1024 * 1024, 'the body')) }));
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** A body sent in many writes, so that it arrives in many chunks. */
  function chunked(bytes: Buffer): ReadableStream<Uint8Array> {
    let at = 0;
    return new ReadableStream({
      pull(controller) {
        if (at >= bytes.length) return controller.close();
        controller.enqueue(bytes.subarray(at, at + 100_000));
        at += 100_000;
      },
    });
  }

  it('a streamed body reaches its consumer whole, each chunk freed once the next was asked for', async () => {
    const bytes = randomBytes(5 * 1024 * 1024 + 7);
    const res = await fetch(`${base}/stream`, { method: 'PUT', body: chunked(bytes), duplex: 'half' } as RequestInit);
    const got = (await res.json()) as { sha256: string; chunks: number };
    expect(got.sha256).toBe(sha256(bytes));
    expect(got.chunks).toBeGreaterThan(1);
    expect(freedBehind).toBe(true);
  });

  it('a small body read whole keeps every chunk (nothing freed under it)', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 1);
    const res = await fetch(`${base}/small`, { method: 'PUT', body: chunked(bytes), duplex: 'half' } as RequestInit);
    expect(((await res.json()) as { sha256: string }).sha256).toBe(sha256(bytes));
  });
});
