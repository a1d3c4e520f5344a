// A client following a download that is still arriving (src/mirror/follow-reader.ts), against a source
// the test grows by hand: the client gets exactly the bytes, in order, once they were committed, and a
// drain that waits tens of thousands of times (once per upstream chunk) holds no memory per wait. The
// last one is what 50 clients of a cold 1 GB blob hit: each wait raced the client's close promise and
// left a reaction on it until the client disconnected (the mirror's heap grew with the bytes sent).
import { EventEmitter } from 'node:events';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createFollowReader, type DownloadState, type FollowSource } from '../../src/mirror/follow-reader.ts';
import { drainClient } from '../support/drain-client.ts';

/** A download the test appends to and ends. */
class GrowingSource extends EventEmitter implements FollowSource {
  state: DownloadState = 'running';
  error: Error | undefined;
  readers = 0;
  readonly #bytes: Buffer;
  written = 0;

  constructor(size: number) {
    super();
    this.#bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) this.#bytes[i] = (i * 31 + 7) & 0xff;
  }

  get bytes(): Buffer {
    return this.#bytes;
  }

  grow(count: number): void {
    this.written += count;
    this.emit('progress');
  }

  commit(): void {
    this.state = 'committed';
    this.emit('progress');
  }

  async readInto(target: Uint8Array, targetOffset: number, position: number, length: number): Promise<number> {
    const n = Math.max(0, Math.min(length, this.written - position));
    target.set(this.#bytes.subarray(position, position + n), targetOffset);
    return n;
  }

  retain(): void {
    this.readers++;
  }

  release(): void {
    this.readers--;
  }
}

/** V8's full collector, reached without a command-line flag. */
const fullGc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function heapAfterGc(): number {
  fullGc();
  fullGc();
  return process.memoryUsage().heapUsed;
}

describe('following a download in progress', () => {
  it('sends every byte in order, and the last one only after the commit', async () => {
    const source = new GrowingSource(3 * 1024 * 1024 + 17);
    const { socket, received } = drainClient();
    const drained = createFollowReader(source).drainInto(socket);
    for (let sent = 0; sent < source.bytes.length; ) {
      const step = Math.min(64 * 1024 + 3, source.bytes.length - sent);
      source.grow(step);
      sent += step;
      await nextTurn();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Everything written is there but the last byte, held back until the digest was verified.
    expect(received().length).toBe(source.bytes.length - 1);
    source.commit();
    await drained;
    expect(received().equals(source.bytes)).toBe(true);
    expect(source.readers).toBe(0);
    expect(source.listenerCount('progress')).toBe(0);
  });

  it('holds no memory per wait: 40,000 one-byte chunks, one wait each', async () => {
    const chunks = 40_000;
    const source = new GrowingSource(chunks + 1);
    const { socket, received } = drainClient();
    const drained = createFollowReader(source).drainInto(socket);
    const grow = async (count: number) => {
      for (let i = 0; i < count; i++) {
        source.grow(1);
        await nextTurn();
      }
    };
    await grow(2_000); // code paths warm, the drain waiting
    const before = heapAfterGc();
    await grow(chunks - 2_000);
    const growth = heapAfterGc() - before;
    // Before the fix: ~350 bytes retained per wait while the client stayed connected (13 MB here).
    expect(growth).toBeLessThan(1.5 * 1024 * 1024);
    source.grow(1);
    source.commit();
    await drained;
    expect(received().equals(source.bytes)).toBe(true);
    expect(source.listenerCount('progress')).toBe(0);
  });

  it('ends with the download\'s error when it fails, after what was sent', async () => {
    const source = new GrowingSource(1024 * 1024);
    const { socket } = drainClient();
    const drained = createFollowReader(source).drainInto(socket);
    source.grow(700 * 1024);
    await nextTurn();
    source.state = 'failed';
    source.error = new Error('upstream went away');
    source.emit('progress');
    await expect(drained).rejects.toThrow('upstream went away');
    expect(source.listenerCount('progress')).toBe(0);
  });

  it('stops waiting when the client disconnects', async () => {
    const source = new GrowingSource(1024 * 1024);
    const { socket } = drainClient();
    const drained = createFollowReader(source).drainInto(socket);
    source.grow(1000);
    await nextTurn();
    socket.destroy();
    await expect(drained).rejects.toThrow(/closed/);
    expect(source.listenerCount('progress')).toBe(0);
    expect(source.readers).toBe(0);
  });
});
