// What every UI handler shares: its context (session, access, the posted form), the form's fields, and
// answering with a page or, when something went wrong, an error page saying what.
import type { Context } from 'hono';
import { html } from 'hono/html';
import type { AppEnv } from '../http/env.ts';
import { OciError } from '../oci/errors.ts';
import type { UiAccess } from './access.ts';
import { page, type Html, type PageContext } from './layout.ts';
import type { Session } from './session.ts';

export type UiEnv = { Variables: AppEnv['Variables'] & { session: Session; access: UiAccess; form: Record<string, string | string[]> } };
export type UiContext = Context<UiEnv>;

export function ctxOf(c: UiContext): PageContext {
  return { session: c.get('session'), access: c.get('access') };
}

/** A posted form's field (the first, if repeated); '' when absent. */
export function field(c: UiContext, name: string): string {
  const value = c.get('form')[name];
  return typeof value === 'string' ? value : Array.isArray(value) ? String(value[0] ?? '') : '';
}

/** Every value of a repeated field (checkboxes). */
export function fields(c: UiContext, name: string): string[] {
  return [c.get('form')[name] ?? []].flat().map(String);
}

/** A view, or the error page for what went wrong (an OciError says what; anything else is logged). */
export async function view(c: UiContext, render: () => Html | Response | Promise<Html | Response>): Promise<Response> {
  try {
    const rendered = await render();
    return rendered instanceof Response ? rendered : c.html(rendered);
  } catch (err) {
    const oci = err instanceof OciError ? err : undefined;
    if (!oci) c.get('log').error({ err }, 'web UI page failed');
    const title = oci?.status === 404 ? 'Not found' : 'Cannot show this';
    const body = html`<p class="notice error" role="alert">${oci ? oci.message : 'Something went wrong; the mirror’s log says what.'}</p><p><a href="/">Back to the dashboard</a></p>`;
    return c.html(page(ctxOf(c), title, '', body), (oci?.status ?? 500) as 400);
  }
}

export function adminOnly(c: UiContext, render: () => Html | Promise<Html>): Html | Promise<Html> | Response | Promise<Response> {
  if (c.get('access').admin) return render();
  return refused(c, notAdmin().message);
}

export function notAdmin(): OciError {
  return new OciError('DENIED', 'this is for admins: users in auth.admins, or with client authentication off a browser on this machine');
}

export function refused(c: UiContext, why: string): Response | Promise<Response> {
  return c.html(page(ctxOf(c), 'Refused', '', html`<p class="notice error" role="alert">${why}</p>`), 403);
}
