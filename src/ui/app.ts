// The web UI (config `ui`, on by default): server-rendered pages at / and /ui/*, on the registry's own
// listeners, beside /v2/. guard.ts puts security headers, a session and CSRF checks before every page;
// what a visitor sees and does is what the registry and admin APIs would let them (access.ts).
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestIsTls } from '../auth/middleware.ts';
import { removeTag } from '../cache/remove-tag.ts';
import { GcBusyError } from '../gc/collector.ts';
import { deleteManifest } from '../hosted/delete.ts';
import type { Target } from '../namespaces/resolve.ts';
import { OciError } from '../oci/errors.ts';
import { isTag } from '../oci/reference.ts';
import type { RegistryDeps } from '../routes/deps.ts';
import { accountRoutes } from './account-routes.ts';
import { visitorHeaders } from './as-visitor.ts';
import { assetRoutes } from './assets.ts';
import { dashboardPage } from './dashboard.ts';
import { gcPage } from './gc.ts';
import { uiHeaders, uiSession } from './guard.ts';
import { imagePage, type Referrer } from './image.ts';
import { repositoriesPage } from './repositories.ts';
import { repositoryPage } from './repository.ts';
import { adminOnly, ctxOf, field, notAdmin, view, type UiContext, type UiEnv } from './respond.ts';
import { UiSessions } from './session.ts';
import { startWarms, warmPage, WarmJobs } from './warm.ts';

/** Forms are a few fields; nothing bigger is read. */
const MAX_FORM_BYTES = 64 * 1024;

export interface UiOptions {
  /** The whole app (registry API included), which the warm and image pages ask in-process. */
  readonly fetch: (request: Request) => Response | Promise<Response>;
}

export function uiRoutes(registry: RegistryDeps, options: UiOptions): Hono<UiEnv> {
  const sessions = new UiSessions();
  const warms = new WarmJobs();
  const host = (c: UiContext) => c.req.header('host') ?? 'localhost';

  const app = new Hono<UiEnv>();
  app.use('/', uiHeaders);
  app.use('/ui/*', uiHeaders);
  app.route('/', assetRoutes());
  for (const path of ['/', '/ui/*']) {
    app.use(path, bodyLimit({ maxSize: MAX_FORM_BYTES }));
    app.use(path, uiSession(registry, sessions));
  }

  app.get('/', (c) => view(c, () => dashboardPage(registry, ctxOf(c))));
  app.get('/ui/repositories', (c) => view(c, () => repositoriesPage(registry, ctxOf(c), { search: (c.req.query('q') ?? '').slice(0, 200), page: Number(c.req.query('page')) || 1 })));
  app.get('/ui/repository', (c) =>
    view(c, () => {
      const { name, target } = targetOf(c, registry);
      const tag = c.req.query('tag');
      const deleted = c.req.query('deleted');
      return repositoryPage(registry, ctxOf(c), {
        name,
        target,
        ...(tag ? { tag } : {}),
        host: host(c),
        plainHttp: !requestIsTls(c),
        // Only a tag's name: a crafted link can make the notice say nothing else.
        ...(deleted && isTag(deleted) ? { message: { kind: 'ok' as const, text: `Removed the tag ${deleted}.` } } : {}),
      });
    }),
  );
  app.get('/ui/image', (c) =>
    view(c, () => {
      const { name, target } = targetOf(c, registry);
      const platform = c.req.query('platform');
      const referrers = async (digest: string) => {
        const headers = await visitorHeaders(registry, c.get('access').principal, name);
        const res = await options.fetch(new Request(`http://${host(c)}/v2/${name}/referrers/${digest}`, { headers }));
        if (!res.ok) return undefined;
        const index = (await res.json().catch(() => ({}))) as { manifests?: unknown };
        return Array.isArray(index.manifests) ? (index.manifests as Referrer[]).filter((m) => typeof m?.digest === 'string') : undefined;
      };
      return imagePage(registry, ctxOf(c), { name, target, ref: c.req.query('ref') || 'latest', referrers, ...(platform ? { platform } : {}) });
    }),
  );
  app.post('/ui/repository/delete-tag', (c) =>
    view(c, async () => {
      const name = field(c, 'name');
      const tag = field(c, 'tag');
      const target = registry.resolver.resolve({ name });
      const access = c.get('access');
      if (field(c, 'source') === 'cached') {
        if (target.kind !== 'mirrored') throw new OciError('NAME_INVALID', 'not a mirrored repository');
        if (!access.admin) throw new OciError('DENIED', 'dropping cached content is for admins (auth.admins), as with the admin API');
        const routed = target.routed;
        await registry.removals.run(() => removeTag(registry.mirror, { upstream: routed.upstream.name, repo: routed.repo, tag }));
      } else {
        const key = target.kind === 'hosted' ? target.key : target.override;
        if (!key) throw new OciError('UNSUPPORTED', 'this upstream accepts no pushed overrides');
        if (!access.may(target, 'delete')) throw new OciError('DENIED', `you may not delete in ${name}`);
        const user = access.principal.kind === 'anonymous' ? undefined : access.principal.name;
        if (!(await deleteManifest(registry.hosted, key, tag, user))) throw new OciError('MANIFEST_UNKNOWN', `no tag ${tag}`);
      }
      return c.redirect(`/ui/repository?${new URLSearchParams({ name, deleted: tag })}`, 303);
    }),
  );

  app.get('/ui/warm', (c) => view(c, () => warmPage(ctxOf(c), warms)));
  app.post('/ui/warm', (c) =>
    view(c, async () => {
      const text = field(c, 'images');
      const server = `${requestIsTls(c) ? 'https' : 'http'}://${host(c)}`;
      const problems = await startWarms(registry, warms, c.get('access'), text, { server, fetch: async (url, init) => options.fetch(new Request(url, init)) });
      if (problems.length) return warmPage(ctxOf(c), warms, { problems, text });
      return c.redirect('/ui/warm', 303);
    }),
  );

  app.get('/ui/gc', (c) => view(c, () => adminOnly(c, () => gcPage(ctxOf(c)))));
  app.post('/ui/gc', (c) =>
    view(c, async () => {
      if (!c.get('access').admin) throw notAdmin();
      try {
        return gcPage(ctxOf(c), { report: await registry.gc.run({ dryRun: field(c, 'dryRun') === '1' }) });
      } catch (err) {
        if (err instanceof GcBusyError) return gcPage(ctxOf(c), { error: err.message });
        throw err;
      }
    }),
  );

  if (registry.auth) accountRoutes(app, registry, registry.auth, sessions);
  return app;
}

/** The repository a page is about (?name=), resolved as /v2/<name>/ would be. */
function targetOf(c: UiContext, registry: RegistryDeps): { name: string; target: Target } {
  const name = c.req.query('name') ?? '';
  const target = registry.resolver.resolve({ name });
  if (!c.get('access').may(target, 'pull')) throw new OciError('DENIED', `you may not pull ${name}`);
  return { name, target };
}
