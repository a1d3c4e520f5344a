// The tags/list cache is bounded by bytes, not only by entries (issue 14, item 4): 1,000 entries of up
// to 16 MiB each could hold gigabytes. The upstream is a scripted loopback server, because making a real
// registry answer a 12 MiB tag list would take pushing some 100,000 tags.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startMirror, type RunningMirror } from '../support/mirror.ts';

const LIST_BYTES = 12 * 1024 * 1024;
const REPOS = 8;
/** What the mirror may keep of tag lists at most (src/deps.ts, tagLists). */
const CACHE_BYTES = 64 * 1024 * 1024;

describe('the tags/list cache', () => {
  let server: http.Server;
  let mirror: RunningMirror;

  beforeAll(async () => {
    const tags = Array.from({ length: Math.ceil(LIST_BYTES / 103) }, (_, i) => `t${String(i).padStart(99, '0')}`);
    server = http.createServer((req, res) => {
      const repo = /^\/v2\/(.+)\/tags\/list/.exec(req.url ?? '')?.[1];
      if (!repo) {
        res.writeHead(req.url === '/v2/' ? 200 : 404, { 'content-type': 'application/json' });
        return void res.end('{}');
      }
      const body = JSON.stringify({ name: repo, tags });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    mirror = await startMirror({ upstreams: [{ name: 'upstream', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, default: true }] });
  });

  afterAll(async () => {
    await mirror?.dispose();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('keeps no more than its byte budget, however many large lists pass through it', async () => {
    for (let i = 0; i < REPOS; i++) {
      const res = await fetch(`${mirror.url}/v2/repo${i}/tags/list`);
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(LIST_BYTES - 1024);
    }
    const held = [...mirror.runtime.deps.tagLists.values()].reduce((sum, entry) => sum + entry.body.byteLength, 0);
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThanOrEqual(CACHE_BYTES);
  }, 60_000);
});
