// What the endpoint families get: the namespace resolver and the two sources' own deps.
import type { AuthDeps } from '../auth/gate.ts';
import type { RemovalQueue } from '../cache/removal-queue.ts';
import type { GarbageCollector } from '../gc/collector.ts';
import type { HostedDeps } from '../hosted/deps.ts';
import type { ProxyDeps } from '../mirror/deps.ts';
import type { NamespaceResolver } from '../namespaces/resolve.ts';
import type { BlobRedirects } from '../store/blob-redirects.ts';
import type { PeerUploads } from '../store/peer-uploads.ts';
import type { TrafficHistory } from '../ui/traffic.ts';
import type { UpstreamHealthBoard } from '../upstream/health.ts';
import type { HotManifests } from './hot-manifests.ts';

export interface RegistryDeps {
  readonly resolver: NamespaceResolver;
  readonly hosted: HostedDeps;
  readonly mirror: ProxyDeps;
  readonly gc: GarbageCollector;
  /** Stored blobs' GETs answered with a redirect to the storage (storage.s3.redirect); undefined: served here. */
  readonly redirects?: BlobRedirects;
  /** This replica's downloads in progress, for the peers following them (storage.s3.peerUrl); undefined: none. */
  readonly peers?: PeerUploads;
  /** Removals of cached content, one at a time (admin API, web UI). */
  readonly removals: RemovalQueue;
  /** The last day's traffic totals, for the web UI's dashboard. */
  readonly traffic: TrafficHistory;
  /** What the upstream clients saw last (the dashboard). */
  readonly upstreamHealth: UpstreamHealthBoard;
  /** Client authentication; undefined when it is off. */
  readonly auth?: AuthDeps;
  /** Cached tags' answers replayed in front of hono. */
  readonly hot?: HotManifests;
}
