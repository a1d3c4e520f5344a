// What the endpoint families get: the namespace resolver and the two sources' own deps.
import type { AuthDeps } from '../auth/gate.ts';
import type { GarbageCollector } from '../gc/collector.ts';
import type { HostedDeps } from '../hosted/deps.ts';
import type { ProxyDeps } from '../mirror/deps.ts';
import type { NamespaceResolver } from '../namespaces/resolve.ts';
import type { TrafficHistory } from '../ui/traffic.ts';
import type { UpstreamHealthBoard } from '../upstream/health.ts';

export interface RegistryDeps {
  readonly resolver: NamespaceResolver;
  readonly hosted: HostedDeps;
  readonly mirror: ProxyDeps;
  readonly gc: GarbageCollector;
  /** The last day's traffic totals, for the web UI's dashboard. */
  readonly traffic: TrafficHistory;
  /** What the upstream clients saw last (the dashboard). */
  readonly upstreamHealth: UpstreamHealthBoard;
  /** Client authentication; undefined when it is off. */
  readonly auth?: AuthDeps;
}
