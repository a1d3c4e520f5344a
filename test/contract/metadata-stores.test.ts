import { spawn } from 'node:child_process';
import { appendFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedMetadataStore } from '../../src/store/embedded-metadata-store.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { RedisMetadataStore } from '../../src/store/redis-metadata-store.ts';
import { startRedis, type RunningRedis } from '../support/redis.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { describeMetadataStore } from './metadata-store.contract.ts';

describeMetadataStore('EmbeddedMetadataStore', async () => {
  const dir = await makeTempDir('embedded-metadata');
  let store: MetadataStore = await EmbeddedMetadataStore.open(dir);
  return {
    store,
    async reopen() {
      await store.close();
      store = await EmbeddedMetadataStore.open(dir);
      return store;
    },
    async cleanup() {
      await store.close();
      await removeTempDir(dir);
    },
  };
});

describe('RedisMetadataStore', () => {
  let redis: RunningRedis;
  let prefixes = 0;
  const nextPrefix = () => `contract-${process.pid}-${++prefixes}:`;

  beforeAll(async () => {
    redis = await startRedis();
  }, 60_000);

  afterAll(async () => {
    await redis?.dispose();
  }, 30_000);

  describeMetadataStore(
    'RedisMetadataStore',
    async () => {
      const options = { url: redis.url, keyPrefix: nextPrefix() };
      let store: MetadataStore = await RedisMetadataStore.open(options);
      return {
        store,
        async reopen() {
          await store.close();
          store = await RedisMetadataStore.open(options);
          return store;
        },
        async cleanup() {
          await store.close();
        },
      };
    },
  );

  it('stores with different key prefixes do not see each other', async () => {
    const a = await RedisMetadataStore.open({ url: redis.url, keyPrefix: nextPrefix() });
    const b = await RedisMetadataStore.open({ url: redis.url, keyPrefix: nextPrefix() });
    try {
      const record = { digest: `sha256:${'1'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, fetchedAt: 1 };
      await a.setTag({ upstream: 'docker.io', repo: 'library/alpine', tag: 'latest', accept: '1111' }, record);
      await a.touchBlob(record.digest, 1, 1);
      expect(await b.getTag({ upstream: 'docker.io', repo: 'library/alpine', tag: 'latest', accept: '1111' })).toBeUndefined();
      expect(await b.listRepos()).toEqual([]);
      expect(await b.blobsByAge(10)).toEqual([]);
    } finally {
      await Promise.allSettled([a.close(), b.close()]);
    }
  });
});

describe('EmbeddedMetadataStore data directory', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await makeTempDir('embedded-metadata-lock');
  });

  afterAll(async () => {
    await removeTempDir(dir);
  });

  it('refuses a data dir held by another live process', async () => {
    const held = join(dir, 'held');
    await makeDir(held);
    await writeFile(join(held, 'metadata.lock'), String(process.ppid));
    await expect(EmbeddedMetadataStore.open(held)).rejects.toThrow(String(process.ppid));
  });

  it('takes over a data dir whose holder has exited', async () => {
    const stale = join(dir, 'stale');
    await makeDir(stale);
    await writeFile(join(stale, 'metadata.lock'), String(await pidOfExitedProcess()));
    const store = await EmbeddedMetadataStore.open(stale);
    await store.close();
  });

  it('a second store can open the dir once the first is closed', async () => {
    const reused = join(dir, 'reused');
    await makeDir(reused);
    const first = await EmbeddedMetadataStore.open(reused);
    await first.close();
    const second = await EmbeddedMetadataStore.open(reused);
    await second.close();
  });

  it('keeps what was written before a crash left half a line behind', async () => {
    const crashed = join(dir, 'crashed');
    await makeDir(crashed);
    const record = { digest: `sha256:${'2'.repeat(64)}`, mediaType: 'application/vnd.oci.image.index.v1+json', size: 7, fetchedAt: 5 };
    const first = await EmbeddedMetadataStore.open(crashed);
    await first.setTag({ upstream: 'docker.io', repo: 'library/alpine', tag: 'latest', accept: '1111' }, record);
    await first.close();
    for (const name of await readdir(crashed)) await appendFile(join(crashed, name), '{"t":"tag","k":"dock');
    const second = await EmbeddedMetadataStore.open(crashed);
    try {
      expect(await second.getTag({ upstream: 'docker.io', repo: 'library/alpine', tag: 'latest', accept: '1111' })).toEqual(record);
      expect(await second.listTags('docker.io', 'library/alpine')).toEqual(['latest']);
    } finally {
      await second.close();
    }
  });
});

async function makeDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
}

/** The pid of a process that has already exited (reuse within the test is vanishingly unlikely). */
function pidOfExitedProcess(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', () => resolve(child.pid!));
  });
}
