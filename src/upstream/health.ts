// Each upstream's health as the registry clients see it: the last answer and the last failure, how long
// answers take, and Docker Hub's pull allowance (`ratelimit-remaining: 97;w=21600`) when the upstream
// sends one. One board per Runtime, written by the clients, read by the web UI's dashboard.
import type { IncomingHttpHeaders } from 'node:http';

export interface UpstreamHealth {
  /** When an answer that was no server error last came (ms since epoch). */
  readonly lastSuccess?: number;
  readonly lastError?: { readonly at: number; readonly message: string };
  /** Time to the answer's headers: the last one, and a moving average. */
  readonly lastLatencyMs?: number;
  readonly averageLatencyMs?: number;
  /** Docker Hub's rate limit, as last seen. */
  readonly rateLimit?: { readonly remaining: number; readonly windowSeconds?: number; readonly at: number };
}

/** Weight of the newest answer in the moving average. */
const SMOOTHING = 0.2;

export class UpstreamHealthBoard {
  readonly #health = new Map<string, UpstreamHealth>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  answered(upstream: string, status: number, headers: IncomingHttpHeaders, latencyMs: number): void {
    const now = this.#now();
    const old = this.#health.get(upstream) ?? {};
    const rateLimit = parseRateLimit(headers['ratelimit-remaining']);
    this.#health.set(upstream, {
      ...old,
      ...(status < 500 ? { lastSuccess: now } : { lastError: { at: now, message: `answered ${status}` } }),
      lastLatencyMs: latencyMs,
      averageLatencyMs: old.averageLatencyMs === undefined ? latencyMs : old.averageLatencyMs + SMOOTHING * (latencyMs - old.averageLatencyMs),
      ...(rateLimit ? { rateLimit: { ...rateLimit, at: now } } : {}),
    });
  }

  failed(upstream: string, message: string): void {
    const old = this.#health.get(upstream) ?? {};
    this.#health.set(upstream, { ...old, lastError: { at: this.#now(), message: message.slice(0, 300) } });
  }

  of(upstream: string): UpstreamHealth {
    return this.#health.get(upstream) ?? {};
  }
}

/** `97;w=21600` (the IETF RateLimit header fields draft Docker Hub follows), or a bare number. */
export function parseRateLimit(value: string | string[] | undefined): { remaining: number; windowSeconds?: number } | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  const match = text === undefined ? null : /^\s*(\d+)(?:\s*;\s*w=(\d+))?/.exec(text);
  if (!match) return undefined;
  return { remaining: Number(match[1]), ...(match[2] ? { windowSeconds: Number(match[2]) } : {}) };
}
