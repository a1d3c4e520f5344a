// The page around every view: head (the mirror's own stylesheet and script, nothing from elsewhere),
// navigation, who is logged in, and the main content.
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { Session } from './session.ts';
import type { UiAccess } from './access.ts';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

export interface PageContext {
  readonly session: Session;
  readonly access: UiAccess;
}

const NAV: readonly { href: string; label: string; admin?: boolean; auth?: boolean }[] = [
  { href: '/', label: 'Dashboard' },
  { href: '/ui/repositories', label: 'Repositories' },
  { href: '/ui/warm', label: 'Warm' },
  { href: '/ui/gc', label: 'Garbage collection', admin: true },
  { href: '/ui/tokens', label: 'Tokens', admin: true, auth: true },
];

/** `head`: extra head elements (the warm page's refresh while a warm runs). */
export function page(ctx: PageContext, title: string, current: string, body: Html, head?: Html): Html {
  const links = NAV.filter((n) => (!n.admin || ctx.access.admin) && (!n.auth || ctx.access.authOn));
  const who = ctx.access.principal.kind === 'anonymous' ? undefined : ctx.access.principal.name;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ocimirror</title>
<link rel="stylesheet" href="/ui/assets/style.css">
<script src="/ui/assets/ui.js" defer></script>
${head ?? ''}
</head>
<body>
<header class="top">
<a class="brand" href="/">ocimirror</a>
<nav aria-label="Main"><ul>${links.map((n) => html`<li><a href="${n.href}"${n.href === current ? html` aria-current="page"` : ''}>${n.label}</a></li>`)}</ul></nav>
<div class="who">${
    ctx.access.authOn
      ? who
        ? html`<span>Signed in as <strong>${who}</strong></span> <form method="post" action="/ui/logout" class="inline">${csrfField(ctx)}<button type="submit">Log out</button></form>`
        : html`<a href="/ui/login">Log in</a>`
      : ''
  }</div>
</header>
<main id="main">
<h1>${title}</h1>
${body}
</main>
</body>
</html>`;
}

export function csrfField(ctx: PageContext): Html {
  return html`<input type="hidden" name="_csrf" value="${ctx.session.csrf}">`;
}

/** A notice above a view's content: what an action did, or why it was refused. */
export function notice(kind: 'ok' | 'error', text: string | undefined): Html | string {
  if (!text) return '';
  return html`<p class="notice ${kind}" role="${kind === 'error' ? 'alert' : 'status'}">${text}</p>`;
}
