// Reads what the upstream registry served from its access log (Apache combined format on stdout):
// 127.0.0.1 - - [23/Nov/2026:16:46:05 +0000] "GET /v2/x/blobs/sha256:... HTTP/1.1" 200 209715200 "" "ocimirror"
import type { RunningRegistry } from '../test/support/registry.ts';

export interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** The response size field ("-" counts as 0). */
  readonly bytes: number;
}

const LINE = /^\S+ \S+ \S+ \[[^\]]*\] "([A-Z]+) (\S+) [^"]*" (\d{3}) (\d+|-)/gm;

/** A bookmark in a registry's log: `since()` returns only what it answered after the bookmark was taken. */
export function accessLogFrom(registry: RunningRegistry): { since(): Promise<LoggedRequest[]> } {
  const start = registry.output().length;
  return {
    async since() {
      await registry.settle();
      const text = registry.output().slice(start);
      return [...text.matchAll(LINE)]
        .map(([, method = '', uri = '', status = '0', bytes = '-']) => ({
          method,
          path: uri.split('?')[0] ?? uri,
          status: Number(status),
          bytes: bytes === '-' ? 0 : Number(bytes),
        }))
        .filter((r) => !r.path.endsWith('/v2/')); // settle() probes
    },
  };
}

/** GETs of blob bodies (not HEADs) and the bytes they carried. */
export function blobGets(requests: readonly LoggedRequest[], digest: string): { count: number; bytes: number } {
  const gets = requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${digest}`));
  return { count: gets.length, bytes: gets.reduce((sum, r) => sum + r.bytes, 0) };
}
