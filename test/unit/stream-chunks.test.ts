import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { chunksOf } from '../../src/mirror/stream-chunks.ts';

describe('chunksOf', () => {
  it('hands over each chunk as it was pushed, and fails a stream destroyed before its end', async () => {
    const stream = new PassThrough();
    const got: number[] = [];
    const reading = (async () => {
      for await (const chunk of chunksOf(stream)) got.push(chunk.byteLength);
    })();
    stream.write(Buffer.alloc(10));
    stream.write(Buffer.alloc(70_000));
    stream.destroy();
    await expect(reading).rejects.toThrow(/closed before its end/);
    expect(got).toEqual([10, 70_000]);
  });
});
