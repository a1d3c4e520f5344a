// The admin API (JSON), served only on the admin listener (config `admin.listen`, loopback by default):
//   GET    /_ocimirror/repositories                 cached and hosted repositories, and the bytes of each kind
//   GET    /_ocimirror/repositories/<name>          a repository's tags, digests, sizes, times
//   GET    /_ocimirror/images/<name>:<tag>|@<digest>[?platform=os/arch]   inspect a cached image
//   DELETE /_ocimirror/images/<name>:<tag>[?dryRun=1]                      rm: drop the tag, free its blobs
//   DELETE /_ocimirror/images/<name>@<digest>[?dryRun=1]                   rm: free a manifest no cached tag names
//   DELETE /_ocimirror/repositories/<name>[?dryRun=1]                      rm: drop every cached tag of the repository
//   POST   /_ocimirror/gc[?dryRun=1][&deleteUntagged=1]                    garbage collection (409: running)
// <name> is routed as in /v2/<name>/...: a leading upstream name or alias (docker.io/library/alpine,
// ghcr.io/org/app), else the default upstream; `?ns=<registry>` picks the upstream as containerd does.
import { Hono, type Context } from 'hono';
import { describeRepository, listHostedRepositories, listRepositories } from '../cache/inventory.ts';
import { inspectImage } from '../cache/inspect.ts';
import { removeTag } from '../cache/remove-tag.ts';
import { removeDigest, removeRepository } from '../cache/remove-cached.ts';
import { GcBusyError } from '../gc/collector.ts';
import type { AppEnv } from '../http/env.ts';
import { OciError } from '../oci/errors.ts';
import { splitReference } from '../oci/image-ref.ts';
import { isTag } from '../oci/reference.ts';
import { parseDigest } from '../oci/digest.ts';
import type { ProxyDeps } from '../mirror/deps.ts';
import type { RegistryDeps } from '../routes/deps.ts';
import type { Routed } from '../upstream/route.ts';

export const ADMIN_PREFIX = '/_ocimirror';

export function adminRoutes(registry: RegistryDeps): Hono<AppEnv> {
  const deps = registry.mirror;

  return new Hono<AppEnv>()
    .get(`${ADMIN_PREFIX}/repositories`, async (c) => {
      c.set('route', 'admin_repositories');
      const [cached, hosted] = await Promise.all([listRepositories(deps), listHostedRepositories(registry.hosted, deps.table)]);
      const repositories = [...cached, ...hosted].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.kind < b.kind ? -1 : 1));
      return c.json({ repositories, usage: { cacheBytes: deps.budget.bytes, hostedBytes: deps.budget.hostedBytes } });
    })
    .get(`${ADMIN_PREFIX}/repositories/:name{.+}`, async (c) => {
      c.set('route', 'admin_repository');
      const routed = route(c, deps, c.req.param('name'));
      return c.json(await describeRepository(deps, routed.upstream.name, routed.repo));
    })
    .get(`${ADMIN_PREFIX}/images/:ref{.+}`, async (c) => {
      c.set('route', 'admin_image');
      const { routed, reference } = image(c, deps);
      const platform = c.req.query('platform');
      return c.json(await inspectImage(deps, { upstream: routed.upstream.name, repo: routed.repo, reference }, platform ? { platform } : {}));
    })
    .post(`${ADMIN_PREFIX}/gc`, async (c) => {
      c.set('route', 'admin_gc');
      const flag = (name: string) => /^(1|true|yes)$/i.test(c.req.query(name) ?? '');
      try {
        return c.json(await registry.gc.run({ dryRun: flag('dryRun'), ...(c.req.query('deleteUntagged') !== undefined ? { deleteUntagged: flag('deleteUntagged') } : {}) }));
      } catch (err) {
        if (err instanceof GcBusyError) throw new OciError('UNAVAILABLE', err.message, { status: 409 });
        throw err;
      }
    })
    .delete(`${ADMIN_PREFIX}/images/:ref{.+}`, async (c) => {
      c.set('route', 'admin_image_delete');
      // A bare name is not `latest` here: removing is explicit (the repository has its own route).
      const named = splitReference(c.req.param('ref') ?? '');
      if (named.tag === undefined && named.digest === undefined) {
        throw new OciError('UNSUPPORTED', 'name a tag (<name>:<tag>) or a digest (<name>@<digest>); DELETE /_ocimirror/repositories/<name> removes every cached tag', { status: 400 });
      }
      const { routed, reference, digest } = image(c, deps);
      const dryRun = /^(1|true|yes)$/i.test(c.req.query('dryRun') ?? '');
      const target = { upstream: routed.upstream.name, repo: routed.repo };
      return c.json(await registry.removals.run((): Promise<object> => (digest ? removeDigest(deps, { ...target, digest: reference }, { dryRun }) : removeTag(deps, { ...target, tag: reference }, { dryRun }))));
    })
    .delete(`${ADMIN_PREFIX}/repositories/:name{.+}`, async (c) => {
      c.set('route', 'admin_repository_delete');
      const routed = route(c, deps, c.req.param('name'));
      const dryRun = /^(1|true|yes)$/i.test(c.req.query('dryRun') ?? '');
      return c.json(await registry.removals.run(() => removeRepository(deps, { upstream: routed.upstream.name, repo: routed.repo }, { dryRun })));
    });
}

function route(c: Context<AppEnv>, deps: ProxyDeps, name: string): Routed {
  const routed = deps.table.route({ ns: c.req.query('ns'), name });
  c.set('upstream', routed.upstream.name);
  c.set('repo', routed.repo);
  return routed;
}

/** `<name>:<tag>` or `<name>@<digest>`; a bare name means `latest`, as for docker pull. */
function image(c: Context<AppEnv>, deps: ProxyDeps): { routed: Routed; reference: string; digest: boolean } {
  const { name, tag, digest } = splitReference(c.req.param('ref') ?? '');
  if (digest !== undefined) parseDigest(digest);
  const reference = digest ?? tag ?? 'latest';
  if (digest === undefined && !isTag(reference)) throw new OciError('MANIFEST_INVALID', 'invalid tag', { status: 400, detail: { tag: reference.slice(0, 200) } });
  return { routed: route(c, deps, name), reference, digest: digest !== undefined };
}
