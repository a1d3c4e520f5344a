// The usual cast of an integration test: a real upstream registry filled by the test, optionally the
// fault proxy in front of it, and a mirror whose default upstream is that registry (or the proxy).
import type { ConfigInput, UpstreamInput } from '../../src/config/schema.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { startMirror, type RunningMirror } from './mirror.ts';
import { startRegistry, type RunningRegistry } from './registry.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface Stack {
  readonly work: string;
  readonly registry: RunningRegistry;
  /** Present when asked for: the mirror's upstream then goes through it. */
  readonly proxy?: FaultProxy;
  readonly mirror: RunningMirror;
  dispose(): Promise<void>;
}

export interface StackOptions {
  /** Prefix of the temp dir. */
  readonly name: string;
  /** Builds and pushes what the test needs, before the mirror starts. */
  readonly seed: (work: string, registry: RunningRegistry) => Promise<void>;
  readonly faultProxy?: boolean;
  /** Extra mirror config (merged over the docker.io default upstream). */
  readonly mirror?: Partial<ConfigInput>;
  readonly tagTtl?: string;
  /** Extra settings of the default upstream (e.g. `prefetch: false`). */
  readonly upstream?: Partial<UpstreamInput>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const work = await makeTempDir(options.name);
  const registry = await startRegistry();
  await options.seed(work, registry);
  const proxy = options.faultProxy ? await startFaultProxy(registry.url) : undefined;
  const mirror = await startMirror({
    upstreams: [{ name: 'docker.io', url: (proxy ?? registry).url, aliases: ['docker.io'], default: true, ...(options.tagTtl ? { tagTtl: options.tagTtl } : {}), ...options.upstream }],
    ...options.mirror,
  });
  return {
    work,
    registry,
    ...(proxy ? { proxy } : {}),
    mirror,
    dispose: async () => {
      await mirror.dispose();
      await proxy?.stop();
      await registry.dispose();
      await removeTempDir(work);
    },
  };
}
