// The load generators: curl for blob bodies (the same client for every server), wrk for manifest
// requests, and curl piped into openssl for clients whose bytes are checked. Every one is bounded in time.
import { requireBinary } from '../test/support/binaries.ts';
import { startProcess } from '../test/support/process.ts';

export interface Transfer {
  readonly status: number;
  readonly bytes: number;
  /** curl's time_total of this transfer, seconds. */
  readonly seconds: number;
}

/**
 * One curl process downloading `url` `times` times over one keep-alive connection to /dev/null.
 * Throws unless the process exits 0 within `timeoutMs`.
 */
export async function curlDownloads(url: string, times: number, timeoutMs: number): Promise<Transfer[]> {
  const curl = requireBinary('curl', 'curl');
  const args = ['--silent', '--show-error', '--max-time', String(Math.ceil(timeoutMs / 1000))];
  for (let i = 0; i < times; i++) {
    args.push('--output', '/dev/null', '--write-out', '%{http_code} %{size_download} %{time_total}\\n', url);
  }
  const child = startProcess({ command: curl, args, name: 'curl', env: { PATH: process.env.PATH } });
  const timer = setTimeout(() => void child.stop(1_000), timeoutMs + 5_000);
  const exit = await child.exited.finally(() => clearTimeout(timer));
  if (exit.code !== 0) throw new Error(`curl ${url} exited ${exit.code ?? exit.signal}: ${child.stderr()}`);
  return child
    .stdout()
    .trim()
    .split('\n')
    .map((line) => {
      const [status = '0', bytes = '0', seconds = '0'] = line.split(' ');
      return { status: Number(status), bytes: Number(bytes), seconds: Number(seconds) };
    });
}

export interface Throughput {
  /** MB/s (10^6 bytes per second), all streams together. */
  readonly mbPerSecond: number;
  readonly bytes: number;
  readonly seconds: number;
}

/**
 * `streams` curl processes at once, each downloading `url` `times` times. The aggregate rate is all
 * bytes over the longest stream's transfer time (curl's own clock: process start-up is not counted).
 */
export async function parallelThroughput(url: string, options: { streams: number; times: number; expectBytes: number; timeoutMs: number }): Promise<Throughput> {
  const results = await Promise.all(Array.from({ length: options.streams }, () => curlDownloads(url, options.times, options.timeoutMs)));
  for (const transfer of results.flat()) {
    if (transfer.status !== 200 || transfer.bytes !== options.expectBytes) {
      throw new Error(`${url}: got status ${transfer.status} and ${transfer.bytes} bytes, expected 200 and ${options.expectBytes}`);
    }
  }
  const bytes = results.flat().reduce((sum, t) => sum + t.bytes, 0);
  const seconds = Math.max(...results.map((transfers) => transfers.reduce((sum, t) => sum + t.seconds, 0)));
  return { mbPerSecond: bytes / seconds / 1e6, bytes, seconds };
}

export interface WrkResult {
  readonly requestsPerSecond: number;
  readonly requests: number;
  /** Non-2xx/3xx answers plus socket errors: must be 0 for the number to count. */
  readonly errors: number;
  readonly latencyAvg: string;
}

/** wrk with `connections` connections for `seconds` seconds (2 threads, one per core). */
export async function runWrk(url: string, options: { connections: number; seconds: number; headers: Record<string, string> }): Promise<WrkResult> {
  const wrk = requireBinary('wrk', 'wrk');
  const args = ['--threads', '2', '--connections', String(options.connections), '--duration', `${options.seconds}s`, '--timeout', '5s'];
  for (const [name, value] of Object.entries(options.headers)) args.push('--header', `${name}: ${value}`);
  args.push(url);
  const child = startProcess({ command: wrk, args, name: 'wrk', env: { PATH: process.env.PATH } });
  const timer = setTimeout(() => void child.stop(1_000), (options.seconds + 15) * 1000);
  const exit = await child.exited.finally(() => clearTimeout(timer));
  const out = child.stdout();
  if (exit.code !== 0) throw new Error(`wrk ${url} exited ${exit.code ?? exit.signal}: ${child.output()}`);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in/.exec(out);
  if (!rps || !total) throw new Error(`cannot read wrk output:\n${out}`);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  return {
    requestsPerSecond: Number(rps[1]),
    requests: Number(total[1]),
    errors: non2xx + socketErrors,
    latencyAvg: /Latency\s+(\S+)/.exec(out)?.[1] ?? '?',
  };
}

export interface HashedDownload {
  readonly status: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly error?: string;
}

/**
 * GET `url` with curl on its own connection, the body hashed by `openssl dgst` (SHA-NI: the client's
 * hashing stays cheap next to the server's work, which a Node client's per-chunk cost would not).
 * Never throws: failures are reported.
 */
export async function hashedDownload(url: string, timeoutMs: number): Promise<HashedDownload> {
  const bash = requireBinary('bash', 'bash');
  requireBinary('curl', 'curl');
  requireBinary('openssl', 'openssl');
  const script = `set -o pipefail; curl --silent --show-error --max-time ${Math.ceil(timeoutMs / 1000)} --write-out '%{stderr}%{http_code} %{size_download}\n' "$1" | openssl dgst -sha256 -r`;
  const child = startProcess({ command: bash, args: ['-c', script, 'bash', url], name: 'curl | openssl', env: { PATH: process.env.PATH } });
  const timer = setTimeout(() => void child.stop(1_000), timeoutMs + 5_000);
  const exit = await child.exited.finally(() => clearTimeout(timer));
  const [status = '0', bytes = '0'] = (/(\d{3}) (\d+)\s*$/.exec(child.stderr()) ?? []).slice(1);
  const hex = /^([0-9a-f]{64}) /.exec(child.stdout())?.[1] ?? '';
  const result = { status: Number(status), bytes: Number(bytes), sha256: `sha256:${hex}` };
  return exit.code === 0 ? result : { ...result, error: `exit ${exit.code ?? exit.signal}: ${child.stderr().trim().slice(0, 200)}` };
}
