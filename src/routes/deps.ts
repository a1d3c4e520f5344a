// What the endpoint families get: the namespace resolver and the two sources' own deps.
import type { AuthDeps } from '../auth/gate.ts';
import type { GarbageCollector } from '../gc/collector.ts';
import type { HostedDeps } from '../hosted/deps.ts';
import type { ProxyDeps } from '../mirror/deps.ts';
import type { NamespaceResolver } from '../namespaces/resolve.ts';
import type { BlobRedirects } from '../store/blob-redirects.ts';
import type { PeerUploads } from '../store/peer-uploads.ts';

export interface RegistryDeps {
  readonly resolver: NamespaceResolver;
  readonly hosted: HostedDeps;
  readonly mirror: ProxyDeps;
  readonly gc: GarbageCollector;
  /** Stored blobs' GETs answered with a redirect to the storage (storage.s3.redirect); undefined: served here. */
  readonly redirects?: BlobRedirects;
  /** This replica's downloads in progress, for the peers following them (storage.s3.peerUrl); undefined: none. */
  readonly peers?: PeerUploads;
  /** Client authentication; undefined when it is off. */
  readonly auth?: AuthDeps;
}
