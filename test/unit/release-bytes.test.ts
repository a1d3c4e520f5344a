import { describe, expect, it } from 'vitest';
import { release } from '../../src/store/release-bytes.ts';

describe('release', () => {
  it('frees a chunk that is the whole of its ArrayBuffer', () => {
    const chunk = new Uint8Array(65_536);
    release(chunk);
    expect(chunk.buffer.detached).toBe(true);
    expect(chunk.byteLength).toBe(0);
    release(chunk); // twice is harmless
  });

  it('leaves alone what shares its memory: a pooled small Buffer, a slice', () => {
    const small = Buffer.from('a small buffer from the shared pool');
    const whole = new Uint8Array(1024);
    const slice = whole.subarray(0, 512);
    release(small);
    release(slice);
    expect(small.toString()).toBe('a small buffer from the shared pool');
    expect(whole.buffer.detached).toBe(false);
    expect(slice.byteLength).toBe(512);
  });
});
