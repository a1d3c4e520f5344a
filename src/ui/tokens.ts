// /ui/tokens (admins, with client authentication on): create a scoped, expiring token (its secret shown
// once: only its hash is stored), list, revoke. The same store `ocimirror token` writes.
import { html } from 'hono/html';
import type { AuthDeps } from '../auth/gate.ts';
import { TokenNameError } from '../auth/scoped-tokens.ts';
import { formatTime } from '../cli/format.ts';
import type { AuthAction } from '../config/config.ts';
import { parseDurationMs } from '../config/units.ts';
import { csrfField, notice, page, type Html, type PageContext } from './layout.ts';

export interface TokenForm {
  readonly name: string;
  readonly repos: string;
  readonly actions: readonly string[];
  readonly expires: string;
}

const ACTIONS: readonly AuthAction[] = ['pull', 'push', 'delete'];

/** Creates the token; its secret, or why not. */
export async function createToken(auth: AuthDeps, form: TokenForm, now: number): Promise<{ secret: string } | { error: string }> {
  const actions = form.actions.filter((a): a is AuthAction => (ACTIONS as readonly string[]).includes(a));
  if (actions.length === 0) return { error: 'choose at least one action' };
  const repos = form.repos.split(/[\s,]+/).filter(Boolean);
  if (repos.length === 0) return { error: 'name at least one repository glob (e.g. lab/app, lab/**)' };
  const expiresMs = parseDurationMs(form.expires.trim());
  if (!expiresMs) return { error: `"${form.expires.slice(0, 40)}" is not a duration (e.g. 30d, 12h)` };
  try {
    const secret = await auth.tokens.create({ name: form.name.trim(), repos, actions, expiresAt: now + expiresMs });
    auth.logger.info({ token: form.name.trim(), repos, actions, expires_at: new Date(now + expiresMs).toISOString() }, 'token created');
    return { secret };
  } catch (err) {
    if (err instanceof TokenNameError) return { error: err.message };
    throw err;
  }
}

export async function tokensPage(auth: AuthDeps, ctx: PageContext, shown: { created?: { name: string; secret: string }; message?: { kind: 'ok' | 'error'; text: string } } = {}): Promise<Html> {
  const list = await auth.tokens.list();
  const now = Date.now();
  return page(
    ctx,
    'Tokens',
    '/ui/tokens',
    html`${shown.message ? notice(shown.message.kind, shown.message.text) : ''}
${
  shown.created
    ? html`<section aria-labelledby="secret"><h2 id="secret">Token ${shown.created.name} created</h2>
<p>Its secret is shown this once; log in with the token's name as user name and the secret as password:</p>
<p class="secret"><code id="token-secret" data-testid="token-secret">${shown.created.secret}</code> <button type="button" data-copy="token-secret">Copy</button></p></section>`
    : ''
}
<h2>Create a token</h2>
<form method="post" action="/ui/tokens">${csrfField(ctx)}
<label for="token-name">Name</label><input type="text" id="token-name" name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._-]{0,63}" autocomplete="off">
<label for="token-repos">Repositories (globs, comma-separated)</label><input type="text" id="token-repos" name="repos" required placeholder="lab/app, lab/**">
<fieldset><legend>Actions</legend>${ACTIONS.map((a) => html`<label><input type="checkbox" name="actions" value="${a}"${a === 'pull' ? html` checked` : ''}> ${a}</label>`)}</fieldset>
<label for="token-expires">Expires after</label><input type="text" id="token-expires" name="expires" required value="30d">
<p><button type="submit" class="primary">Create token</button></p>
</form>
<h2>Tokens</h2>
${
  list.length === 0
    ? html`<p class="muted">No tokens.</p>`
    : html`<table><thead><tr><th scope="col">Name</th><th scope="col">Repositories</th><th scope="col">Actions</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col">Revoke</th></tr></thead><tbody>${list.map(
        (t) => html`<tr><td>${t.name}</td><td><code>${t.repos.join(', ')}</code></td><td>${t.actions.join(', ')}</td><td>${formatTime(t.expiresAt)}${t.expiresAt <= now ? ' (expired)' : ''}</td><td>${t.lastUsedAt ? formatTime(t.lastUsedAt) : 'never'}</td>
<td><form method="post" action="/ui/tokens/revoke" class="inline" data-confirm="${`Revoke the token ${t.name}?`}">${csrfField(ctx)}<input type="hidden" name="name" value="${t.name}"><button type="submit" class="danger" aria-label="${`Revoke ${t.name}`}">Revoke</button></form></td></tr>`,
      )}</tbody></table>`
}`,
  );
}
