// redis.url may name a Sentinel (redis+sentinel://host:port/<master>): the mirror finds the primary
// through a real redis-server running as sentinel, and its metadata lands there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { requireBinary } from '../support/binaries.ts';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { freePort } from '../support/ports.ts';
import { startProcess, type ManagedProcess } from '../support/process.ts';
import { startRedis, type RunningRedis } from '../support/redis.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { effectiveKeyPrefix, parseRedisTarget } from '../../src/store/redis-connection.ts';

describe('Redis through Sentinel', () => {
  let work: string;
  let registry: RunningRegistry;
  let primary: RunningRedis;
  let sentinel: ManagedProcess;
  let sentinelPort: number;
  let image: BuiltImage;
  let mirror: RunningMirror;

  beforeAll(async () => {
    work = await makeTempDir('sentinel-test');
    registry = await startRegistry();
    image = await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ files: { s: '1' } }] });
    await pushImage(image, registry, 'library/app:v1');
    primary = await startRedis();
    sentinelPort = await freePort();
    const config = join(work, 'sentinel.conf');
    await writeFile(config, `port ${sentinelPort}\nbind 127.0.0.1\ndir ${work}\nsentinel monitor mymaster 127.0.0.1 ${primary.port} 1\n`);
    sentinel = startProcess({ command: requireBinary('redis-server', 'redis-server'), args: [config, '--sentinel'], env: { PATH: process.env.PATH } });
    await sentinel.waitReady({ tcp: { port: sentinelPort } }, 30_000);
    mirror = await startMirror({
      redis: { url: `redis+sentinel://127.0.0.1:${sentinelPort}/mymaster`, keyPrefix: 'sentinel-test:' },
      upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }],
    });
  }, 120_000);

  afterAll(async () => {
    await mirror?.dispose();
    await sentinel?.stop();
    await primary?.dispose();
    await registry?.dispose();
    if (work) await removeTempDir(work);
  });

  it('pulls through the mirror with its metadata on the primary the sentinel names', async () => {
    await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'copy')}:x`);
    const ready = await fetch(`${mirror.url}/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { redis: 'ok' } });
    const direct = new Redis(primary.url);
    try {
      expect(await direct.smembers('sentinel-test:repos')).toEqual(['docker.io|library/app']);
    } finally {
      direct.disconnect();
    }
  }, 60_000);

  it('parses Sentinel and Cluster URLs', () => {
    expect(parseRedisTarget('redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2/mymaster/2')).toEqual({
      kind: 'sentinel',
      nodes: [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26379 }],
      password: 'pw',
      masterName: 'mymaster',
      db: 2,
    });
    expect(parseRedisTarget('redis+cluster://a:7000,b:7001')).toEqual({ kind: 'cluster', nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }] });
    expect(parseRedisTarget('redis://127.0.0.1:6379')).toBeUndefined();
    expect(() => parseRedisTarget('redis+sentinel://a:1')).toThrow(/master name/);
  });

  it('gives cluster keys one hash tag, so multi-key scripts stay in one slot', () => {
    expect(effectiveKeyPrefix('redis+cluster://a:7000', 'ocimirror:')).toBe('{ocimirror}:');
    expect(effectiveKeyPrefix('redis+cluster://a:7000', '{mirror}:x:')).toBe('{mirror}:x:');
    expect(effectiveKeyPrefix('redis://a:6379', 'ocimirror:')).toBe('ocimirror:');
  });
});
