// With client authentication on: log in with the registry's users (and tokens), log out, and for admins
// the tokens page.
import type { Hono } from 'hono';
import type { AuthDeps } from '../auth/gate.ts';
import { checkPassword } from '../auth/gate.ts';
import { clientAddress } from '../auth/middleware.ts';
import type { RegistryDeps } from '../routes/deps.ts';
import { useSession } from './guard.ts';
import { loginPage } from './login.ts';
import { adminOnly, ctxOf, field, fields, notAdmin, view, type UiEnv } from './respond.ts';
import type { UiSessions } from './session.ts';
import { createToken, tokensPage } from './tokens.ts';

export function accountRoutes(app: Hono<UiEnv>, registry: RegistryDeps, auth: AuthDeps, sessions: UiSessions): void {
  app.get('/ui/login', (c) => c.html(loginPage(ctxOf(c), { next: c.req.query('next') ?? '/' })));
  app.post('/ui/login', async (c) => {
    const next = safeNext(field(c, 'next'));
    const identity = await checkPassword(auth, field(c, 'username'), field(c, 'password'), clientAddress(c));
    if (!identity.ok) {
      const error = identity.reason === 'throttled' ? `Too many failed logins; try again in ${identity.retryAfter} s.` : 'Wrong user name or password.';
      return c.html(loginPage(ctxOf(c), { error, next }), identity.reason === 'throttled' ? 429 : 401);
    }
    // A new session id: one known before the login is worth nothing after it.
    sessions.delete(c.get('session').id);
    useSession(registry, c, sessions.create(identity.principal));
    return c.redirect(next, 303);
  });
  app.post('/ui/logout', (c) => {
    sessions.delete(c.get('session').id);
    useSession(registry, c, sessions.create({ kind: 'anonymous' }));
    return c.redirect('/ui/login', 303);
  });

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
}

/** Only a path on this site: never `//evil.example` or an absolute URL. */
function safeNext(next: string): string {
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
}
