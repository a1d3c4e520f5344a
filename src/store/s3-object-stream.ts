// An object's body from the bucket as a BlobStream: passes the bytes on and fails, rather than ends,
// when the body is shorter than the object's length (a connection to the gateway that broke off).
import { Readable, type Writable } from 'node:stream';
import { DRAIN_CHUNK, SocketSink, type BlobStream } from './blob-stream.ts';

export class S3ObjectStream extends Readable implements BlobStream {
  readonly #body: Readable;
  readonly #length: number;
  #received = 0;
  #iterator: AsyncIterator<Buffer> | undefined;

  constructor(body: Readable, length: number) {
    super({ highWaterMark: DRAIN_CHUNK });
    this.#body = body;
    this.#length = length;
  }

  override _read(): void {
    this.#iterator ??= this.#body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.#next().then(
      (chunk) => this.push(chunk),
      (err: unknown) => this.destroy(err as Error),
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#body.destroy();
    callback(err);
  }

  /** The next chunk, or null at a complete end. */
  async #next(): Promise<Buffer | null> {
    const { value, done } = await this.#iterator!.next();
    if (done) {
      if (this.#received !== this.#length) throw new Error(`object body ended at byte ${this.#received} of ${this.#length}`);
      return null;
    }
    this.#received += value.byteLength;
    return value;
  }

  async drainInto(dest: Writable, onBytes?: (count: number) => void): Promise<void> {
    const sink = new SocketSink(dest);
    try {
      if (this.readableDidRead || this.readableFlowing !== null || this.destroyed) throw new Error('drainInto: the stream was already read');
      sink.check();
      this.#iterator = this.#body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      for (let chunk = await this.#next(); chunk; chunk = await this.#next()) {
        await sink.write(chunk);
        onBytes?.(chunk.byteLength);
      }
      sink.end();
    } finally {
      sink.done();
      this.destroy();
    }
  }
}
