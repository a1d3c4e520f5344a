// /ui/login: the registry's users (htpasswd) and scoped tokens, checked and rate-limited as the
// registry checks Basic credentials.
import { html } from 'hono/html';
import { csrfField, notice, page, type Html, type PageContext } from './layout.ts';

export function loginPage(ctx: PageContext, options: { error?: string; next?: string } = {}): Html {
  return page(
    ctx,
    'Log in',
    '/ui/login',
    html`${notice('error', options.error)}
<form method="post" action="/ui/login">${csrfField(ctx)}
<input type="hidden" name="next" value="${options.next ?? '/'}">
<label for="username">User name</label><input type="text" id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<p><button type="submit" class="primary">Log in</button></p>
</form>`,
  );
}
