// The web UI (config `ui`, on by default): server-rendered pages at / and /ui/*, on the registry's own
// listeners, beside /v2/. Every page gets a Content-Security-Policy without inline script and may not be
// framed; every visitor a session (HttpOnly, SameSite=Strict, Secure on TLS) whose CSRF token each POST
// must carry; what a visitor sees and does is what the registry and admin APIs would let them (access.ts).
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { getCookie, setCookie } from 'hono/cookie';
import { html } from 'hono/html';
import { checkPassword } from '../auth/gate.ts';
import { clientAddress, requestIsTls } from '../auth/middleware.ts';
import { removeTag } from '../cache/remove-tag.ts';
import { GcBusyError } from '../gc/collector.ts';
import { deleteManifest } from '../hosted/delete.ts';
import type { AppEnv } from '../http/env.ts';
import type { Target } from '../namespaces/resolve.ts';
import { OciError } from '../oci/errors.ts';
import type { RegistryDeps } from '../routes/deps.ts';
import { accessOf, type UiAccess } from './access.ts';
import { visitorHeaders } from './as-visitor.ts';
import { assetRoutes } from './assets.ts';
import { dashboardPage } from './dashboard.ts';
import { gcPage } from './gc.ts';
import { imagePage, type Referrer } from './image.ts';
import { page, type Html, type PageContext } from './layout.ts';
import { loginPage } from './login.ts';
import { repositoriesPage } from './repositories.ts';
import { repositoryPage } from './repository.ts';
import { csrfMatches, SESSION_COOKIE, UiSessions, type Session } from './session.ts';
import { createToken, tokensPage } from './tokens.ts';
import { startWarms, warmPage, WarmJobs } from './warm.ts';

type UiEnv = { Variables: AppEnv['Variables'] & { session: Session; access: UiAccess; form: Record<string, string | string[]> } };

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/** Forms are a few fields; nothing bigger is read. */
const MAX_FORM_BYTES = 64 * 1024;

export interface UiOptions {
  /** The whole app (registry API included), which the warm page pulls through in-process. */
  readonly fetch: (request: Request) => Response | Promise<Response>;
}

export function uiRoutes(registry: RegistryDeps, options: UiOptions): Hono<UiEnv> {
  const sessions = new UiSessions();
  const warms = new WarmJobs();
  const auth = registry.auth;
  const ctxOf = (c: Context<UiEnv>): PageContext => ({ session: c.get('session'), access: c.get('access') });
  const startSession = (c: Context<UiEnv>, session: Session) => {
    setCookie(c, SESSION_COOKIE, session.id, { httpOnly: true, sameSite: 'Strict', secure: requestIsTls(c), path: '/' });
    c.set('session', session);
    c.set('access', accessOf(registry, session.principal, clientAddress(c)));
  };

  const app = new Hono<UiEnv>();
  app.use('/', uiHeaders);
  app.use('/ui/*', uiHeaders);
  app.route('/', assetRoutes());
  for (const path of ['/', '/ui/*']) {
    app.use(path, bodyLimit({ maxSize: MAX_FORM_BYTES }));
    app.use(path, async function uiSession(c, next) {
      if (c.req.path.startsWith('/ui/assets/')) return next();
      c.set('route', 'ui');
      const session = sessions.get(getCookie(c, SESSION_COOKIE)) ?? sessions.create({ kind: 'anonymous' });
      startSession(c, session);
      if (c.req.method === 'POST') {
        // A form from another site: refused by its Origin, and by the token it cannot know.
        const origin = c.req.header('origin');
        if (origin && origin !== 'null' && new URL(origin).host !== c.req.header('host')) return refused(c, ctxOf(c), 'This form came from another site.');
        const form = (await c.req.parseBody({ all: true }).catch(() => ({}))) as Record<string, string | string[]>;
        if (!csrfMatches(session, form._csrf)) return refused(c, ctxOf(c), 'The form’s CSRF token is missing or stale: reload the page and try again.');
        c.set('form', form);
      }
      // With client authentication on, the UI is for those who logged in.
      if (auth && session.principal.kind === 'anonymous' && c.req.path !== '/ui/login') {
        return c.redirect(`/ui/login?${new URLSearchParams({ next: c.req.method === 'GET' ? c.req.url.slice(new URL(c.req.url).origin.length) : '/' })}`, 303);
      }
      return next();
    });
  }

  const field = (c: Context<UiEnv>, name: string) => {
    const value = c.get('form')[name];
    return typeof value === 'string' ? value : Array.isArray(value) ? String(value[0] ?? '') : '';
  };
  const fields = (c: Context<UiEnv>, name: string) => [c.get('form')[name] ?? []].flat().map(String);

  app.get('/', (c) => view(c, () => dashboardPage(registry, ctxOf(c))));
  app.get('/ui/repositories', (c) => view(c, () => repositoriesPage(registry, ctxOf(c), { search: (c.req.query('q') ?? '').slice(0, 200), page: Number(c.req.query('page')) || 1 })));
  app.get('/ui/repository', (c) =>
    view(c, async () => {
        const { name, target } = targetOf(c, registry);
        const tag = c.req.query('tag');
        const deleted = c.req.query('deleted');
        return repositoryPage(registry, ctxOf(c), {
          name,
          target,
          ...(tag ? { tag } : {}),
          host: c.req.header('host') ?? 'localhost',
          plainHttp: !requestIsTls(c),
          ...(deleted ? { message: { kind: 'ok' as const, text: `Removed the tag ${deleted.slice(0, 128)}.` } } : {}),
        });
      }),
  );
  app.get('/ui/image', (c) =>
    view(c, () => {
        const { name, target } = targetOf(c, registry);
        const platform = c.req.query('platform');
        const referrers = async (digest: string) => {
          const headers = await visitorHeaders(registry, c.get('access').principal, name);
          const res = await options.fetch(new Request(`http://${c.req.header('host') ?? 'localhost'}/v2/${name}/referrers/${digest}`, { headers }));
          if (!res.ok) return undefined;
          const index = (await res.json().catch(() => ({}))) as { manifests?: unknown };
          return Array.isArray(index.manifests) ? (index.manifests as Referrer[]).filter((m) => typeof m?.digest === 'string') : undefined;
        };
        return imagePage(registry, ctxOf(c), { name, target, ref: c.req.query('ref') || 'latest', referrers, ...(platform ? { platform } : {}) });
      }),
  );
  app.post('/ui/repository/delete-tag', async (c) => {
    const name = field(c, 'name');
    const tag = field(c, 'tag');
    return view(c, async () => {
      const target = registry.resolver.resolve({ name });
      const access = c.get('access');
      const user = access.principal.kind === 'anonymous' ? undefined : access.principal.name;
      if (field(c, 'source') === 'cached') {
        if (target.kind !== 'mirrored') throw new OciError('NAME_INVALID', 'not a mirrored repository');
        if (!access.admin) throw new OciError('DENIED', 'dropping cached content is for admins (auth.admins), as with the admin API');
        const routed = target.routed;
        await registry.removals.run(() => removeTag(registry.mirror, { upstream: routed.upstream.name, repo: routed.repo, tag }));
      } else {
        const key = target.kind === 'hosted' ? target.key : target.override;
        if (!key) throw new OciError('UNSUPPORTED', 'this upstream accepts no pushed overrides');
        if (!access.may(target, 'delete')) throw new OciError('DENIED', `you may not delete in ${name}`);
        if (!(await deleteManifest(registry.hosted, key, tag, user))) throw new OciError('MANIFEST_UNKNOWN', `no tag ${tag}`);
      }
      return c.redirect(`/ui/repository?${new URLSearchParams({ name, deleted: tag })}`, 303);
    });
  });

  app.get('/ui/warm', (c) => view(c, () => warmPage(ctxOf(c), warms)));
  app.post('/ui/warm', (c) =>
    view(c, async () => {
      const text = field(c, 'images');
      const server = `${requestIsTls(c) ? 'https' : 'http'}://${c.req.header('host') ?? 'localhost'}`;
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

  if (auth) {
    app.get('/ui/tokens', (c) => view(c, () => adminOnly(c, () => tokensPage(auth, ctxOf(c)))));
    app.post('/ui/tokens', (c) =>
      view(c, async () => {
          if (!c.get('access').admin) throw notAdmin();
          const made = await createToken(auth, { name: field(c, 'name'), repos: field(c, 'repos'), actions: fields(c, 'actions'), expires: field(c, 'expires') }, Date.now());
          if ('error' in made) return tokensPage(auth, ctxOf(c), { message: { kind: 'error', text: made.error } });
          return tokensPage(auth, ctxOf(c), { created: { name: field(c, 'name').trim(), secret: made.secret } });
        }),
    );
    app.post('/ui/tokens/revoke', (c) =>
      view(c, async () => {
          if (!c.get('access').admin) throw notAdmin();
          const name = field(c, 'name');
          const removed = await auth.tokens.remove(name).catch(() => false);
          if (removed) auth.logger.info({ token: name }, 'token removed');
          return tokensPage(auth, ctxOf(c), { message: removed ? { kind: 'ok', text: `Revoked ${name}.` } : { kind: 'error', text: `No token ${name}.` } });
        }),
    );
    app.get('/ui/login', (c) => c.html(loginPage(ctxOf(c), { next: c.req.query('next') ?? '/' })));
    app.post('/ui/login', async (c) => {
      const next = safeNext(field(c, 'next'));
      const identity = await checkPassword(auth, field(c, 'username'), field(c, 'password'), clientAddress(c));
      if (!identity.ok) {
        const error = identity.reason === 'throttled' ? `Too many failed logins; try again in ${identity.retryAfter} s.` : 'Wrong user name or password.';
        return c.html(loginPage(ctxOf(c), { error, next }), identity.reason === 'throttled' ? 429 : 401);
      }
      sessions.delete(c.get('session').id);
      startSession(c, sessions.create(identity.principal));
      return c.redirect(next, 303);
    });
    app.post('/ui/logout', (c) => {
      sessions.delete(c.get('session').id);
      startSession(c, sessions.create({ kind: 'anonymous' }));
      return c.redirect('/ui/login', 303);
    });
  }
  return app;
}

async function uiHeaders(c: Context, next: () => Promise<void>): Promise<void> {
  await next();
  c.header('content-security-policy', CSP);
  c.header('x-frame-options', 'DENY');
  c.header('x-content-type-options', 'nosniff');
  c.header('referrer-policy', 'same-origin');
  if (!c.req.path.startsWith('/ui/assets/')) c.header('cache-control', 'no-store');
}

/** The repository a page is about (?name=), resolved as /v2/<name>/ would be. */
function targetOf(c: Context<UiEnv>, registry: RegistryDeps): { name: string; target: Target } {
  const name = c.req.query('name') ?? '';
  const target = registry.resolver.resolve({ name });
  if (!c.get('access').may(target, 'pull')) throw new OciError('DENIED', `you may not pull ${name}`);
  return { name, target };
}

/** A view, or the error page for what went wrong (an OciError says what; anything else is logged). */
async function view(c: Context<UiEnv>, render: () => Html | Response | Promise<Html | Response>): Promise<Response> {
  try {
    const rendered = await render();
    return rendered instanceof Response ? rendered : c.html(rendered);
  } catch (err) {
    const oci = err instanceof OciError ? err : undefined;
    if (!oci) c.get('log').error({ err }, 'web UI page failed');
    return c.html(page({ session: c.get('session'), access: c.get('access') }, oci?.status === 404 ? 'Not found' : 'Cannot show this', '', html`<p class="notice error" role="alert">${oci ? oci.message : 'Something went wrong; the mirror’s log says what.'}</p><p><a href="/">Back to the dashboard</a></p>`), (oci?.status ?? 500) as 400);
  }
}

function adminOnly(c: Context<UiEnv>, render: () => Html | Promise<Html>): Html | Promise<Html> | Response | Promise<Response> {
  if (c.get('access').admin) return render();
  return c.html(page({ session: c.get('session'), access: c.get('access') }, 'Admins only', '', html`<p class="notice error" role="alert">${notAdmin().message}</p>`), 403);
}

function notAdmin(): OciError {
  return new OciError('DENIED', 'this is for admins: users in auth.admins, or with client authentication off a browser on this machine');
}

function refused(c: Context<UiEnv>, ctx: PageContext, why: string): Response | Promise<Response> {
  return c.html(page(ctx, 'Refused', '', html`<p class="notice error" role="alert">${why}</p>`), 403);
}

/** Only a path on this site: never `//evil.example` or an absolute URL. */
function safeNext(next: string): string {
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
}
