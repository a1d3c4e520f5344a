// Why an upstream exchange failed, before anything reached the client.
/** `refused`: the mirror would not follow the upstream where it pointed (target-policy.ts, loops); never retried. */
export type UpstreamFailure = 'connect' | 'timeout' | 'reset' | 'status' | 'tls' | 'protocol' | 'refused';

/** The upstream could not be reached or kept failing: callers may serve stale content instead. */
export class UpstreamUnavailableError extends Error {
  override readonly name = 'UpstreamUnavailableError';
  readonly upstream: string;
  readonly reason: UpstreamFailure;
  readonly status?: number;
  constructor(upstream: string, reason: UpstreamFailure, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.upstream = upstream;
    this.reason = reason;
    if (options.status !== undefined) this.status = options.status;
  }
}

/** The upstream took longer than one of the timeouts (config upstreamTimeouts) allow. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}
