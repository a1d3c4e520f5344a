// What stands before every UI page: security headers (a CSP without inline script, no framing), the
// visitor's session (a cookie HttpOnly, SameSite=Strict, Secure on TLS), and for a POST the same-site
// Origin and the session's CSRF token; with client authentication on, a login.
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { clientAddress, requestIsTls } from '../auth/middleware.ts';
import type { RegistryDeps } from '../routes/deps.ts';
import { accessOf } from './access.ts';
import { refused, type UiContext, type UiEnv } from './respond.ts';
import { csrfMatches, SESSION_COOKIE, type Session, type UiSessions } from './session.ts';

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

export async function uiHeaders(c: Context, next: () => Promise<void>): Promise<void> {
  await next();
  c.header('content-security-policy', CSP);
  c.header('x-frame-options', 'DENY');
  c.header('x-content-type-options', 'nosniff');
  c.header('referrer-policy', 'same-origin');
  if (!c.req.path.startsWith('/ui/assets/')) c.header('cache-control', 'no-store');
}

/** Makes `session` the request's, and its cookie the browser's. */
export function useSession(registry: RegistryDeps, c: UiContext, session: Session): void {
  setCookie(c, SESSION_COOKIE, session.id, { httpOnly: true, sameSite: 'Strict', secure: requestIsTls(c), path: '/' });
  c.set('session', session);
  c.set('access', accessOf(registry, session.principal, clientAddress(c)));
}

export function uiSession(registry: RegistryDeps, sessions: UiSessions): MiddlewareHandler<UiEnv> {
  return async function uiSession(c, next) {
    if (c.req.path.startsWith('/ui/assets/')) return next();
    c.set('route', 'ui');
    const session = sessions.get(getCookie(c, SESSION_COOKIE)) ?? sessions.create({ kind: 'anonymous' });
    useSession(registry, c, session);
    if (c.req.method === 'POST') {
      // A form from another site: refused by its Origin, and by the token it cannot know.
      if (!sameSite(c.req.header('origin'), c.req.header('host'))) return refused(c, 'This form came from another site.');
      const form = (await c.req.parseBody({ all: true }).catch(() => ({}))) as Record<string, string | string[]>;
      if (!csrfMatches(session, form._csrf)) return refused(c, 'The form’s CSRF token is missing or stale: reload the page and try again.');
      c.set('form', form);
    }
    // With client authentication on, the UI is for those who logged in.
    if (registry.auth && session.principal.kind === 'anonymous' && c.req.path !== '/ui/login') {
      const next = c.req.method === 'GET' ? c.req.url.slice(new URL(c.req.url).origin.length) : '/';
      return c.redirect(`/ui/login?${new URLSearchParams({ next })}`, 303);
    }
    return next();
  };
}

/** No Origin (an older browser, a same-origin GET turned POST) leaves it to the CSRF token. */
function sameSite(origin: string | undefined, host: string | undefined): boolean {
  if (!origin || origin === 'null') return true;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
