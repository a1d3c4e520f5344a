// The process lifecycle operators rely on: a bad config is refused with exit code 2; SIGTERM lets a
// download in progress finish, then exits 0; a Redis outage degrades to serving from disk, readiness
// says so, and service recovers when Redis is back, without a restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand } from '../support/command.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { INSTALLED_BIN, startMirrorProcess } from '../support/mirror-process.ts';
import { startRedis } from '../support/redis.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

let work: string;
let registry: RunningRegistry;
let image: BuiltImage;

beforeAll(async () => {
  work = await makeTempDir('lifecycle-test');
  registry = await startRegistry();
  image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 100 * 1024 * 1024, seed: 'lifecycle' }, { files: { x: '1' } }] });
  await pushImage(image, registry, 'library/big:v1', { timeoutMs: 300_000 });
}, 300_000);

afterAll(async () => {
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

describe('start-up', () => {
  it('refuses a bad config with a message naming the field and exit code 2', async () => {
    const file = join(work, 'bad.yaml');
    await writeFile(file, 'listen: 127.0.0.1:0\nupstreams:\n  - name: x\n    url: registry.example.com\n    tagTtl: soon\n');
    const result = await runCommand(process.execPath, [MAIN, 'serve', '--config', file]).then(
      () => ({ code: 0, stderr: '' }),
      (err: Error) => ({ code: Number(/exited with code (\d+)/.exec(err.message)?.[1]), stderr: err.message }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('upstreams.0.url');
    expect(result.stderr).toContain('upstreams.0.tagTtl');
  });

  it('the installed command (bin/ocimirror.js through its shebang and node flags, on dist/) serves a pull', async () => {
    const mirror = await startMirrorProcess(
      { dataDir: join(work, 'installed-bin'), upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] },
      { executable: INSTALLED_BIN },
    );
    try {
      await skopeoCopy(`docker://${mirror.host}/library/big:v1`, `oci:${join(work, 'installed-bin-copy')}:x`, { timeoutMs: 120_000 });
      // The shebang's flag and environment reached node: the process runs with them.
      const cmdline = (await readFile(`/proc/${mirror.process.pid}/cmdline`, 'utf8')).split('\0');
      expect(cmdline).toContain('--max-semi-space-size=2');
      const environ = (await readFile(`/proc/${mirror.process.pid}/environ`, 'utf8')).split('\0');
      expect(environ).toContain('MALLOC_ARENA_MAX=1');
    } finally {
      expect((await mirror.terminate()).code).toBe(0);
    }
  }, 180_000);
});

describe('SIGTERM', () => {
  let proxy: FaultProxy;

  beforeAll(async () => {
    proxy = await startFaultProxy(registry.url, { fault: { dripBytesPerSec: 40 * 1024 * 1024 } });
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  it('lets a 100 MB download in progress complete, then exits 0', async () => {
    const mirror = await startMirrorProcess({ dataDir: join(work, 'sigterm-data'), upstreams: [{ name: 'docker.io', url: proxy.url, aliases: ['docker.io'], default: true }] });
    const layer = image.layers[0]!;
    const body = fetch(`${mirror.url}/v2/library/big/blobs/${layer.digest}`).then(async (res) => Buffer.from(await res.arrayBuffer()));
    await sleep(500); // the download is well under way, far from done
    const exit = mirror.terminate();
    const bytes = await body;
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(layer.digest);
    expect(await exit).toEqual({ code: 0, signal: null });
    expect(mirror.logs().some((l) => l.msg === 'stopping: finishing responses and downloads in progress')).toBe(true);
  }, 120_000);
});

describe('Redis outage', () => {
  it('serves cached pulls from disk, reports it in /readyz, and recovers when Redis returns', async () => {
    const redis = await startRedis();
    const mirror = await startMirrorProcess({
      dataDir: join(work, 'redis-outage-data'),
      redis: { url: redis.url },
      upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }],
    });
    try {
      await skopeoCopy(`docker://${mirror.host}/library/big:v1`, `oci:${join(work, 'before')}:x`, { timeoutMs: 120_000 });
      expect((await fetch(`${mirror.url}/readyz`)).status).toBe(200);

      await redis.stop();
      await skopeoCopy(`docker://${mirror.host}/library/big:v1`, `oci:${join(work, 'during')}:x`, { timeoutMs: 120_000 });
      const notReady = await fetch(`${mirror.url}/readyz`);
      expect(notReady.status).toBe(503);
      expect((await notReady.json()) as unknown).toMatchObject({ checks: { redis: expect.not.stringMatching(/^ok$/) } });
      expect(await (await fetch(`${mirror.url}/metrics`)).text()).toMatch(/ocimirror_redis_errors_total [1-9]/);

      await redis.start();
      let ready = 0;
      for (let i = 0; i < 100 && ready !== 200; i++) {
        await sleep(100);
        ready = (await fetch(`${mirror.url}/readyz`)).status;
      }
      expect(ready).toBe(200);
      await skopeoCopy(`docker://${mirror.host}/library/big:v1`, `oci:${join(work, 'after')}:x`, { timeoutMs: 120_000 });
    } finally {
      await mirror.terminate(10_000);
      await redis.dispose();
    }
  }, 180_000);
});
