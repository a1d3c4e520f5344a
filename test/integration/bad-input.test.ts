// Malformed requests get the spec's error JSON with a 4xx status, never a crash, and never a file
// outside the data dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode, rawRequest } from '../support/http.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const CASES: { path: string; method: string; status: number; code: string }[] = ([
  { path: '/v2/Library/Alpine/manifests/latest', status: 400, code: 'NAME_INVALID' },
  { path: '/v2/a..b/manifests/latest', status: 400, code: 'NAME_INVALID' },
  { path: '/v2/a//b/manifests/latest', status: 400, code: 'NAME_INVALID' },
  // The URL parser resolves %2e%2e segments (WHATWG URL), leaving /etc/manifests/latest: no such endpoint.
  { path: '/v2/%2e%2e/%2e%2e/etc/manifests/latest', status: 404, code: 'UNSUPPORTED' },
  { path: '/v2/..%2f..%2fetc/manifests/latest', status: 400, code: 'NAME_INVALID' },
  { path: `/v2/${'a'.repeat(300)}/manifests/latest`, status: 400, code: 'NAME_INVALID' },
  { path: `/v2/${Array(80).fill('abcd').join('/')}/manifests/latest`, status: 400, code: 'NAME_INVALID' },
  // A tag that cannot exist is unknown (the distribution-spec conformance suite wants 404, not 400).
  { path: '/v2/library/alpine/manifests/-bad-tag', status: 404, code: 'MANIFEST_UNKNOWN' },
  { path: `/v2/library/alpine/manifests/${'t'.repeat(129)}`, status: 404, code: 'MANIFEST_UNKNOWN' },
  { path: '/v2/library/alpine/manifests/sha256:zzzz', status: 400, code: 'DIGEST_INVALID' },
  { path: '/v2/library/alpine/blobs/md5:d41d8cd98f00b204e9800998ecf8427e', status: 400, code: 'DIGEST_INVALID' },
  { path: '/v2/library/alpine/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd', status: 400, code: 'DIGEST_INVALID' },
  { path: `/v2/library/alpine/blobs/sha256:${'A'.repeat(64)}`, status: 400, code: 'DIGEST_INVALID' },
  { path: '/v2/library/alpine/blobs/sha256:abc', status: 400, code: 'DIGEST_INVALID' },
  { path: '/v2/alpine/manifests/latest?ns=evil.example.com', status: 404, code: 'NAME_UNKNOWN' },
  { path: '/v2/alpine/manifests/latest?ns=127.0.0.1:1', status: 404, code: 'NAME_UNKNOWN' },
  { path: '/v2/../../etc/passwd', status: 404, code: 'UNSUPPORTED' },
  { path: '/v2/library/alpine/manifests/latest', method: 'PUT', status: 405, code: 'UNSUPPORTED' },
  { path: '/v2/library/alpine/blobs/uploads/', method: 'POST', status: 405, code: 'UNSUPPORTED' },
  { path: `/v2/library/alpine/manifests/sha256:${'0'.repeat(64)}`, method: 'DELETE', status: 405, code: 'UNSUPPORTED' },
  { path: '/v2/library/alpine/tags/list?n=-1', status: 400, code: 'UNSUPPORTED' },
] as { path: string; method?: string; status: number; code: string }[]).map((c) => ({ method: 'GET', ...c }));

describe('bad input', () => {
  let root: string;
  let registry: RunningRegistry;
  let mirror: RunningMirror;

  beforeAll(async () => {
    root = await makeTempDir('bad-input-test');
    registry = await startRegistry();
    mirror = await startMirror({ dataDir: join(root, 'data'), upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] });
  }, 60_000);

  afterAll(async () => {
    await mirror?.dispose();
    await registry?.dispose();
    if (root) await removeTempDir(root);
  });

  it.each(CASES)('$method $path -> $status $code', async ({ path, method, status, code }) => {
    const res = await rawRequest(mirror.url, { path, method });
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(errorCode(res)).toBe(code);
  });

  it('answers HEAD errors with the status and no body', async () => {
    const res = await rawRequest(mirror.url, { path: '/v2/library/alpine/blobs/md5:abc', method: 'HEAD' });
    expect(res.status).toBe(400);
    expect(res.body.byteLength).toBe(0);
  });

  it('created nothing outside its data dir, and nothing but its own files inside', async () => {
    expect(await readdir(root)).toEqual(['data']);
    const data = (await readdir(join(root, 'data'))).sort();
    expect(data.filter((f) => !['blobs', 'metadata.jsonl', 'metadata.lock'].includes(f))).toEqual([]);
    expect(await readdir(join(root, 'data', 'blobs'))).toEqual(['_uploads']);
  });
});
