import { describe, expect, it } from 'vitest';
import { DRAIN_CHUNK } from '../../src/store/blob-stream.ts';
import { DrainBuffers } from '../../src/store/drain-buffers.ts';

describe('DrainBuffers', () => {
  it('hands a buffer back out after it was given back, instead of allocating another', () => {
    const buffers = new DrainBuffers();
    const first = buffers.take();
    expect(first.length).toBe(DRAIN_CHUNK);
    buffers.give(first);
    expect(buffers.take()).toBe(first);
    expect(buffers.take()).not.toBe(first);
  });

  it('keeps at most 8 idle buffers and never one of another size', () => {
    const buffers = new DrainBuffers();
    const taken = Array.from({ length: 12 }, () => buffers.take());
    for (const buffer of taken) buffers.give(buffer);
    expect(buffers.idle).toBe(8);
    buffers.give(Buffer.alloc(1024));
    expect(buffers.idle).toBe(8);
    const other = new DrainBuffers();
    other.give(Buffer.alloc(DRAIN_CHUNK - 1));
    expect(other.idle).toBe(0);
  });
});
