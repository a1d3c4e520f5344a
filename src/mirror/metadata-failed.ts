// A metadata store failure is never a client error: it is counted and logged, and the pull goes on
// without it (cache miss, blobs from disk).
import type { ProxyDeps } from './deps.ts';

export function metadataFailed(deps: Pick<ProxyDeps, 'metrics' | 'logger'>, err: unknown): void {
  deps.metrics.redisErrors.inc();
  deps.logger.warn({ err }, 'metadata store failed; serving without it');
}
