// The metadata store implementations every integration suite runs against: parametrize, don't duplicate.
import { randomBytes } from 'node:crypto';
import { startRedis, type RunningRedis } from './redis.ts';

export const STORE_KINDS = ['embedded', 'redis'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export interface StoreSetup {
  /** Config fragment selecting the store (empty for the embedded one). */
  readonly config: { redis?: { url: string; keyPrefix: string } };
  readonly redis?: RunningRedis;
  dispose(): Promise<void>;
}

export async function setUpStore(kind: StoreKind): Promise<StoreSetup> {
  if (kind === 'embedded') return { config: {}, dispose: async () => {} };
  const redis = await startRedis();
  return {
    config: { redis: { url: redis.url, keyPrefix: `t${randomBytes(4).toString('hex')}:` } },
    redis,
    dispose: () => redis.dispose(),
  };
}
