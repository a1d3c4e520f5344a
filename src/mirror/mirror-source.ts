// The mirror as a ReadSource: an upstream's repository, through the cache.
import type { ReadSource } from '../namespaces/source.ts';
import type { Routed } from '../upstream/route.ts';
import type { ProxyDeps } from './deps.ts';
import { headBlob, pullBlob } from './pull-blob.ts';
import { pullManifest } from './pull-manifest.ts';
import { pullReferrers } from './pull-referrers.ts';
import { pullTags } from './pull-tags.ts';

/** `client.head`: the request is a HEAD (its manifest fetch arms layer prefetch rather than starting it). */
export function mirrorSource(deps: ProxyDeps, routed: Routed, client: { name: string; ns: string | undefined; head: boolean }): ReadSource {
  return {
    async manifest(reference, accept) {
      const answer = await pullManifest(deps, routed, reference, accept);
      deps.prefetch.manifestServed(routed, answer, { head: client.head, fetched: answer.cache === 'miss' });
      return { digest: answer.digest, mediaType: answer.record.mediaType, body: answer.body, cache: answer.cache };
    },
    headBlob: (digest) => headBlob(deps, routed, digest),
    blob: (digest) => pullBlob(deps, routed, digest),
    tags: (query) => pullTags(deps, routed, query, client),
    referrers: (digest, artifactType) => pullReferrers(deps, routed, digest, artifactType),
  };
}
