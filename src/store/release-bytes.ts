// Bytes freed at once. Every socket read of a body is its own ArrayBuffer (64 KiB from an upstream, up
// to 64 KiB from a client), which V8 frees only when a collection finds it dead, and its external-memory
// limit lets tens of MB of them wait: at the start of the bench's 50 x 1 GB cold download ~35 MB of
// dead upstream chunks gathered (peak 153-157 MB; freed as they go, 143-146).

/**
 * Frees a chunk's memory now, where V8 would free it only at a later collection: for a chunk of a
 * stream nobody else reads (an upstream body, a request body), once its bytes were copied on; for a
 * buffer its owner is done with (a file writer's batch buffers).
 * A chunk that shares its ArrayBuffer (a pooled small Buffer, a slice) is left alone.
 */
export function release(chunk: Uint8Array): void {
  const buffer = chunk.buffer;
  if (buffer instanceof ArrayBuffer && !buffer.resizable && !buffer.detached && chunk.byteOffset === 0 && chunk.byteLength === buffer.byteLength) buffer.transfer(0);
}
