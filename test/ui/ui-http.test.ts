// The web UI's HTTP answers without a browser: the security headers and cookie flags, escaping of what
// a visitor typed, a cross-site form refused, and the config key that turns the UI off.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { get as httpsGet } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { initTls, tlsPaths } from '../../src/tls/init.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

let mirror: RunningMirror;
let off: RunningMirror;
let limited: RunningMirror;
/** An upstream that knows no image but tells its rate limit, as Docker Hub does. */
let hub: Server;

beforeAll(async () => {
  // No upstream is ever asked: the pages read the mirror's own stores.
  const upstreams = [{ name: 'docker.io', url: 'http://127.0.0.1:9', default: true }];
  mirror = await startMirror({ hosted: { namespaces: ['lab'] }, upstreams });
  off = await startMirror({ ui: false, upstreams });
  hub = createServer((_req, res) => res.writeHead(404, { 'ratelimit-remaining': '97;w=21600', 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}'));
  await new Promise<void>((resolve) => hub.listen(0, '127.0.0.1', resolve));
  limited = await startMirror({ upstreams: [{ name: 'docker.io', url: `http://127.0.0.1:${(hub.address() as AddressInfo).port}`, default: true }] });
});

afterAll(async () => {
  await mirror?.dispose();
  await off?.dispose();
  await limited?.dispose();
  hub?.close();
});

describe('the web UI over HTTP', () => {
  it('sends a CSP without inline script, refuses framing, and sets an HttpOnly SameSite=Strict session cookie', async () => {
    const res = await fetch(`${mirror.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^ocimirror_session=[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict$/);
    // Every asset comes from the mirror itself.
    const body = await res.text();
    expect([...body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]).filter((url) => !url!.startsWith('/'))).toEqual([]);
    expect((await fetch(`${mirror.url}/ui/assets/ui.js`)).headers.get('content-type')).toContain('javascript');
  });

  it('escapes what the visitor typed', async () => {
    const body = await (await fetch(`${mirror.url}/ui/repositories?q=${encodeURIComponent('<script>alert(1)</script>"')}`)).text();
    expect(body).not.toContain('<script>alert(1)');
    expect(body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;');
  });

  it('escapes what comes from images (labels, history, annotations) and lists referrers', async () => {
    const evil = '<img src=x onerror=alert(1)>';
    const sha = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const put = async (bytes: Buffer) => {
      const res = await fetch(`${mirror.url}/v2/lab/evil/blobs/uploads/?digest=${sha(bytes)}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
      expect(res.status).toBe(201);
      return { digest: sha(bytes), size: bytes.length };
    };
    const layer = await put(Buffer.from('not really a tar'));
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { [evil]: evil }, Env: [evil], Cmd: [evil] }, rootfs: { type: 'layers', diff_ids: [layer.digest] }, history: [{ created_by: evil, comment: evil }] }));
    const configBlob = await put(config);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
      annotations: { [evil]: evil },
    });
    const pushed = await fetch(`${mirror.url}/v2/lab/evil/manifests/1`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
    expect(pushed.status).toBe(201);
    // An SBOM whose subject is that image: listed on the image's page.
    const empty = await put(Buffer.from('{}'));
    const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(Buffer.from(manifest)), size: Buffer.byteLength(manifest) };
    const sbom = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/spdx+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty }, layers: [{ mediaType: 'application/spdx+json', ...layer }], subject });
    expect((await fetch(`${mirror.url}/v2/lab/evil/manifests/${sha(Buffer.from(sbom))}`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: sbom })).status).toBe(201);
    const imagePage = await (await fetch(`${mirror.url}/ui/image?name=lab/evil&ref=1`)).text();
    expect(imagePage).toContain('data-testid="referrers"');
    expect(imagePage).toContain('application/spdx+json');
    expect(imagePage).toContain(sha(Buffer.from(sbom)).slice(0, 19));
    for (const path of ['/ui/image?name=lab/evil&ref=1', '/ui/repository?name=lab/evil', '/ui/repositories']) {
      const body = await (await fetch(`${mirror.url}${path}`)).text();
      expect(body).not.toContain('<img');
      if (path.startsWith('/ui/image')) expect(body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    }
  });

  it('refuses a form posted from another site, and one without the CSRF token', async () => {
    const first = await fetch(`${mirror.url}/ui/gc`);
    const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await first.text())![1]!;
    const post = (headers: Record<string, string>, form: Record<string, string>) =>
      fetch(`${mirror.url}/ui/gc`, { method: 'POST', headers: { cookie, ...headers }, body: new URLSearchParams(form) });
    expect((await post({ origin: 'http://evil.example' }, { _csrf: csrf, dryRun: '1' })).status).toBe(403);
    expect((await post({ origin: 'not a url' }, { _csrf: csrf, dryRun: '1' })).status).toBe(403);
    expect((await post({}, { dryRun: '1' })).status).toBe(403);
    const ok = await post({ origin: mirror.url }, { _csrf: csrf, dryRun: '1' });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('Dry run: what would be freed');
  });

  it('answers a repository it does not know with an error page, not a crash', async () => {
    const res = await fetch(`${mirror.url}/ui/image?name=lab/nothing&ref=1`);
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('role="alert"');
    expect((await fetch(`${mirror.url}/ui/repository?name=${encodeURIComponent('Not A Name')}`)).status).toBe(400);
  });

  it('shows each upstream’s last error, and Docker Hub’s rate limit when the upstream tells it', async () => {
    expect((await fetch(`${mirror.url}/v2/library/nothing/manifests/1`)).status).toBeGreaterThanOrEqual(500);
    const down = await (await fetch(`${mirror.url}/`)).text();
    expect(down).toContain('connect ECONNREFUSED 127.0.0.1:9');
    expect((await fetch(`${limited.url}/v2/library/nothing/manifests/1`)).status).toBe(404);
    const health = await (await fetch(`${limited.url}/`)).text();
    expect(health).toContain('97 per 6 h');
    expect(health).not.toContain('none yet');
  });

  it('marks the session cookie Secure on the TLS listener', async () => {
    const dataDir = await makeTempDir('ui-tls');
    const tls = { listen: '127.0.0.1:0' };
    const paths = tlsPaths(parseConfig({ dataDir, tls }, { env: {} }));
    await initTls({ paths, names: ['127.0.0.1'] });
    const secure = await startMirror({ dataDir, tls, upstreams: [{ name: 'docker.io', url: 'http://127.0.0.1:9', default: true }] });
    try {
      const ca = await readFile(paths.caCert, 'utf8');
      const cookie = await new Promise<string>((resolve, reject) => {
        httpsGet({ host: '127.0.0.1', port: secure.tlsPorts[0], path: '/', ca }, (res) => {
          res.resume();
          resolve(String(res.headers['set-cookie'] ?? ''));
        }).on('error', reject);
      });
      expect(cookie).toMatch(/; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
    } finally {
      await secure.dispose();
      await removeTempDir(dataDir);
    }
  });

  it('is not there when the config turns it off (ui: false), and /v2/ still is', async () => {
    expect((await fetch(`${off.url}/`)).status).toBe(404);
    expect((await fetch(`${off.url}/ui/repositories`)).status).toBe(404);
    expect((await fetch(`${off.url}/v2/`)).status).toBe(200);
  });
});
