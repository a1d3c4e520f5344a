// What the endpoint families get: the namespace resolver and the two sources' own deps.
import type { AuthDeps } from '../auth/gate.ts';
import type { GarbageCollector } from '../gc/collector.ts';
import type { HostedDeps } from '../hosted/deps.ts';
import type { ProxyDeps } from '../mirror/deps.ts';
import type { NamespaceResolver } from '../namespaces/resolve.ts';
import type { HotManifests } from './hot-manifests.ts';

export interface RegistryDeps {
  readonly resolver: NamespaceResolver;
  readonly hosted: HostedDeps;
  readonly mirror: ProxyDeps;
  readonly gc: GarbageCollector;
  /** Client authentication; undefined when it is off. */
  readonly auth?: AuthDeps;
  /** Cached tags' answers replayed in front of hono. */
  readonly hot?: HotManifests;
}
