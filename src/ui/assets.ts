// The UI's only stylesheet and script, served by the mirror itself (labs are offline: no CDN). The
// script does what plain HTML cannot: copy a pull command, ask before deleting.
import { Hono } from 'hono';
import type { AppEnv } from '../http/env.ts';

const STYLE = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa; --accent: #0b5cad; --bad: #a40e26; --good: #116329; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible { outline: 3px solid #1f6feb; outline-offset: 2px; }
.top { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.5rem; background: #24292f; color: #fff; flex-wrap: wrap; }
.top a { color: #fff; }
.brand { font-weight: 700; text-decoration: none; font-size: 1.1rem; }
.top nav ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; flex-wrap: wrap; }
.top nav a[aria-current="page"] { font-weight: 700; text-decoration: underline; }
.who { margin-left: auto; display: flex; gap: .5rem; align-items: center; }
.who button { background: transparent; color: #fff; border: 1px solid #8c959f; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; word-break: break-all; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
pre { background: var(--panel); border: 1px solid var(--line); padding: .6rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 1rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; background: var(--panel); }
.card .value { font-size: 1.6rem; font-weight: 700; }
.card .label { color: var(--muted); }
.meter { height: .6rem; background: #e6e9ed; border-radius: .3rem; overflow: hidden; margin-top: .4rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1rem; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: .6rem; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
.legend { color: var(--muted); font-size: .85rem; }
.swatch { display: inline-block; width: .8rem; height: .8rem; vertical-align: middle; margin: 0 .25rem 0 .6rem; }
.swatch.cache { background: #1a7f37; } .swatch.upstream { background: #bc4c00; } .swatch.ratio { background: #0b5cad; }
form.inline { display: inline; margin: 0; }
button, .button { font: inherit; padding: .3rem .8rem; border-radius: 6px; border: 1px solid #8c959f; background: #f6f8fa; color: var(--fg); cursor: pointer; }
button.danger { border-color: var(--bad); color: var(--bad); background: #fff; }
button.primary { background: #1f6f3b; color: #fff; border-color: #1f6f3b; }
label { display: block; font-weight: 600; margin: .6rem 0 .2rem; }
input[type=text], input[type=password], input[type=search], select, textarea { font: inherit; padding: .35rem .5rem; border: 1px solid #8c959f; border-radius: 6px; min-width: 18rem; max-width: 100%; }
fieldset { border: 1px solid var(--line); border-radius: 6px; margin: .6rem 0; }
fieldset label { display: inline; font-weight: 400; margin-right: 1rem; }
.notice { padding: .6rem .8rem; border-radius: 6px; border: 1px solid; }
.notice.ok { color: var(--good); border-color: var(--good); background: #dafbe1; }
.notice.error { color: var(--bad); border-color: var(--bad); background: #ffebe9; }
.muted { color: var(--muted); }
.commands td:first-child { white-space: nowrap; }
.commands code { word-break: break-all; }
.pager { display: flex; gap: 1rem; align-items: center; }
.secret { font-size: 1.05rem; background: #fff8c5; border: 1px solid #d4a72c; padding: .6rem; word-break: break-all; }
`;

const SCRIPT = `'use strict';
document.addEventListener('click', function (event) {
  var button = event.target.closest('button[data-copy]');
  if (!button) return;
  var text = document.getElementById(button.getAttribute('data-copy')).textContent;
  navigator.clipboard.writeText(text).then(function () {
    button.textContent = 'Copied';
    setTimeout(function () { button.textContent = 'Copy'; }, 1500);
  }, function () { button.textContent = 'Select and copy'; });
});
document.addEventListener('submit', function (event) {
  var question = event.target.getAttribute('data-confirm');
  if (question && !window.confirm(question)) event.preventDefault();
});
`;

export function assetRoutes(): Hono<AppEnv> {
  const headers = (type: string) => ({ 'content-type': type, 'cache-control': 'public, max-age=300', 'x-content-type-options': 'nosniff' });
  return new Hono<AppEnv>()
    .get('/ui/assets/style.css', (c) => {
      c.set('route', 'ui_asset');
      return c.body(STYLE, 200, headers('text/css; charset=utf-8'));
    })
    .get('/ui/assets/ui.js', (c) => {
      c.set('route', 'ui_asset');
      return c.body(SCRIPT, 200, headers('text/javascript; charset=utf-8'));
    });
}
