// The one conformance suite every MetadataStore implementation must pass (see STYLE.md "Tests").
import { afterEach, beforeEach, describe, expect, it, type TestFunction } from 'vitest';
import type { MetadataStore, TagKey, TagRecord } from '../../src/store/metadata-store.ts';

export interface MetadataStoreFixture {
  /** A fresh, empty store. */
  store: MetadataStore;
  /** Closes the store and opens the same data again; absent for implementations that keep nothing. */
  reopen?: () => Promise<MetadataStore>;
  /** Closes whichever store is open and removes its data. */
  cleanup(): Promise<void>;
}

export interface MetadataStoreSuiteOptions {
  /** Titles of tests this implementation is known to fail (run as it.fails, so a fix shows up). */
  readonly knownBugs?: readonly string[];
}

const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;
const tag = (n: number, extra: Partial<TagRecord> = {}): TagRecord => ({
  digest: digest(n),
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  size: 500 + n,
  fetchedAt: 1_700_000_000_000 + n,
  ...extra,
});
const key = (repo: string, t: string, accept = '1010', upstream = 'docker.io'): TagKey => ({ upstream, repo, tag: t, accept });

export function describeMetadataStore(name: string, factory: () => Promise<MetadataStoreFixture>, options: MetadataStoreSuiteOptions = {}): void {
  const test = (title: string, fn: TestFunction) => (options.knownBugs?.includes(title) ? it.fails : it)(title, fn);

  describe(`MetadataStore contract: ${name}`, () => {
    let fixture: MetadataStoreFixture;
    let store: MetadataStore;

    beforeEach(async () => {
      fixture = await factory();
      store = fixture.store;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    describe('tags', () => {
      test('an unknown tag is undefined', async () => {
        expect(await store.getTag(key('library/alpine', 'latest'))).toBeUndefined();
      });

      test('setTag then getTag returns the record', async () => {
        await store.setTag(key('library/alpine', 'latest'), tag(1));
        expect(await store.getTag(key('library/alpine', 'latest'))).toEqual(tag(1));
      });

      test('setTag replaces the previous record', async () => {
        await store.setTag(key('library/alpine', 'latest'), tag(1));
        await store.setTag(key('library/alpine', 'latest'), tag(2, { mediaType: 'application/vnd.oci.image.index.v1+json' }));
        expect(await store.getTag(key('library/alpine', 'latest'))).toEqual(tag(2, { mediaType: 'application/vnd.oci.image.index.v1+json' }));
      });

      test('each Accept class has its own answer', async () => {
        await store.setTag(key('library/alpine', 'latest', '1111'), tag(1));
        await store.setTag(key('library/alpine', 'latest', '1010'), tag(2));
        expect(await store.getTag(key('library/alpine', 'latest', '1111'))).toEqual(tag(1));
        expect(await store.getTag(key('library/alpine', 'latest', '1010'))).toEqual(tag(2));
        expect(await store.getTag(key('library/alpine', 'latest', '0010'))).toBeUndefined();
      });

      test('tags are scoped to their upstream and repository', async () => {
        await store.setTag(key('library/alpine', 'latest'), tag(1));
        await store.setTag(key('library/alpine', 'latest', '1010', 'lab'), tag(2));
        await store.setTag(key('library/alpine/sub', 'latest'), tag(3));
        await store.setTag(key('library/alp', 'latest'), tag(4));
        expect(await store.getTag(key('library/alpine', 'latest'))).toEqual(tag(1));
        expect(await store.getTag(key('library/alpine', 'latest', '1010', 'lab'))).toEqual(tag(2));
        expect(await store.getTag(key('library/alpine/sub', 'latest'))).toEqual(tag(3));
        expect(await store.getTag(key('library/alp', 'latest'))).toEqual(tag(4));
        expect(await store.listTags('docker.io', 'library/alpine')).toEqual(['latest']);
      });

      test('deleteTag removes the tag for every Accept class and nothing else', async () => {
        await store.setTag(key('library/alpine', 'latest', '1111'), tag(1));
        await store.setTag(key('library/alpine', 'latest', '1010'), tag(2));
        await store.setTag(key('library/alpine', 'latest-rc', '1010'), tag(3));
        await store.setTag(key('library/alpine', 'latest', '1010', 'lab'), tag(4));
        await store.setTag(key('library/nginx', 'latest'), tag(5));
        await store.deleteTag('docker.io', 'library/alpine', 'latest');
        expect(await store.getTag(key('library/alpine', 'latest', '1111'))).toBeUndefined();
        expect(await store.getTag(key('library/alpine', 'latest', '1010'))).toBeUndefined();
        expect(await store.getTag(key('library/alpine', 'latest-rc', '1010'))).toEqual(tag(3));
        expect(await store.getTag(key('library/alpine', 'latest', '1010', 'lab'))).toEqual(tag(4));
        expect(await store.getTag(key('library/nginx', 'latest'))).toEqual(tag(5));
        expect(await store.listTags('docker.io', 'library/alpine')).toEqual(['latest-rc']);
      });

      test('deleteTag of an unknown tag does nothing', async () => {
        await store.setTag(key('library/alpine', 'latest'), tag(1));
        await store.deleteTag('docker.io', 'library/alpine', 'nope');
        await store.deleteTag('docker.io', 'library/none', 'latest');
        expect(await store.getTag(key('library/alpine', 'latest'))).toEqual(tag(1));
        expect(await store.listRepos()).toEqual([{ upstream: 'docker.io', repo: 'library/alpine' }]);
      });

      test('listTags is sorted and lists a tag once whatever its Accept classes', async () => {
        for (const t of ['v2', 'latest', 'v10', '1.0', 'V3']) await store.setTag(key('org/app', t, '1111'), tag(1));
        await store.setTag(key('org/app', 'latest', '1010'), tag(2));
        await store.setTag(key('org/app', 'v2', '0010'), tag(3));
        expect(await store.listTags('docker.io', 'org/app')).toEqual(['1.0', 'V3', 'latest', 'v10', 'v2']);
      });

      test('listTags of an unknown repository is empty', async () => {
        await store.setTag(key('org/app', 'latest'), tag(1));
        expect(await store.listTags('docker.io', 'org/other')).toEqual([]);
        expect(await store.listTags('docker.io', 'org')).toEqual([]);
        expect(await store.listTags('lab', 'org/app')).toEqual([]);
      });

      test('listRepos is sorted by upstream then repository, each once', async () => {
        await store.setTag(key('org/zeta', 'a'), tag(1));
        await store.setTag(key('org/zeta', 'b', '1111'), tag(2));
        await store.setTag(key('org/zeta', 'b', '1010'), tag(2));
        await store.setTag(key('library/alpine', 'latest'), tag(3));
        await store.setTag(key('team/app', 'latest', '1010', 'lab'), tag(4));
        await store.setTag(key('library/alpine', 'latest', '1010', 'ghcr.io'), tag(5));
        expect(await store.listRepos()).toEqual([
          { upstream: 'docker.io', repo: 'library/alpine' },
          { upstream: 'docker.io', repo: 'org/zeta' },
          { upstream: 'ghcr.io', repo: 'library/alpine' },
          { upstream: 'lab', repo: 'team/app' },
        ]);
      });

      test('a repository leaves listRepos with its last tag', async () => {
        await store.setTag(key('org/app', 'a', '1111'), tag(1));
        await store.setTag(key('org/app', 'a', '1010'), tag(1));
        await store.setTag(key('org/app', 'b'), tag(2));
        await store.setTag(key('org/other', 'a'), tag(3));
        await store.deleteTag('docker.io', 'org/app', 'a');
        expect((await store.listRepos()).map((r) => r.repo)).toEqual(['org/app', 'org/other']);
        await store.deleteTag('docker.io', 'org/app', 'b');
        expect(await store.listRepos()).toEqual([{ upstream: 'docker.io', repo: 'org/other' }]);
        expect(await store.listTags('docker.io', 'org/app')).toEqual([]);
      });

      test('listRepos of an empty store is empty', async () => {
        expect(await store.listRepos()).toEqual([]);
      });
    });

    describe('manifests', () => {
      const record = { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1234, references: [digest(10), digest(11)] };

      test('an unknown manifest is undefined', async () => {
        expect(await store.getManifest(digest(1))).toBeUndefined();
      });

      test('setManifest then getManifest returns the record', async () => {
        await store.setManifest(digest(1), record);
        await store.setManifest(digest(2), { mediaType: 'application/vnd.oci.image.index.v1+json', size: 99, references: [] });
        expect(await store.getManifest(digest(1))).toEqual(record);
        expect(await store.getManifest(digest(2))).toEqual({ mediaType: 'application/vnd.oci.image.index.v1+json', size: 99, references: [] });
      });

      test('setManifest replaces the previous record', async () => {
        await store.setManifest(digest(1), record);
        await store.setManifest(digest(1), { ...record, references: [digest(12)] });
        expect(await store.getManifest(digest(1))).toEqual({ ...record, references: [digest(12)] });
      });
    });

    describe('blobs', () => {
      test('an unknown blob is undefined', async () => {
        expect(await store.getBlob(digest(1))).toBeUndefined();
      });

      test('touchBlob records size and access time', async () => {
        await store.touchBlob(digest(1), 4096, 1_000);
        expect(await store.getBlob(digest(1))).toEqual({ size: 4096, lastAccess: 1_000 });
      });

      test('touching again updates the access time', async () => {
        await store.touchBlob(digest(1), 4096, 1_000);
        await store.touchBlob(digest(1), 4096, 5_000);
        expect(await store.getBlob(digest(1))).toEqual({ size: 4096, lastAccess: 5_000 });
      });

      test('blobsByAge lists least recently used first', async () => {
        await store.touchBlob(digest(1), 10, 3_000);
        await store.touchBlob(digest(2), 20, 1_000);
        await store.touchBlob(digest(3), 30, 2_000);
        expect(await store.blobsByAge(10)).toEqual([
          { digest: digest(2), size: 20, lastAccess: 1_000 },
          { digest: digest(3), size: 30, lastAccess: 2_000 },
          { digest: digest(1), size: 10, lastAccess: 3_000 },
        ]);
      });

      test('blobsByAge returns at most limit entries, the oldest', async () => {
        for (let i = 1; i <= 5; i++) await store.touchBlob(digest(i), i, 10_000 - i);
        expect((await store.blobsByAge(2)).map((b) => b.digest)).toEqual([digest(5), digest(4)]);
        expect((await store.blobsByAge(1)).map((b) => b.digest)).toEqual([digest(5)]);
      });

      test('blobsByAge(0) returns nothing', async () => {
        await store.touchBlob(digest(1), 10, 1_000);
        await store.touchBlob(digest(2), 20, 2_000);
        expect(await store.blobsByAge(0)).toEqual([]);
      });

      test('a touched blob moves to the back of the queue', async () => {
        await store.touchBlob(digest(1), 10, 1_000);
        await store.touchBlob(digest(2), 20, 2_000);
        await store.touchBlob(digest(1), 10, 3_000);
        expect((await store.blobsByAge(10)).map((b) => b.digest)).toEqual([digest(2), digest(1)]);
      });

      test('forgetBlob removes it from getBlob and blobsByAge', async () => {
        await store.touchBlob(digest(1), 10, 1_000);
        await store.touchBlob(digest(2), 20, 2_000);
        await store.forgetBlob(digest(1));
        expect(await store.getBlob(digest(1))).toBeUndefined();
        expect(await store.blobsByAge(10)).toEqual([{ digest: digest(2), size: 20, lastAccess: 2_000 }]);
      });

      test('forgetBlob of an unknown blob does nothing', async () => {
        await store.touchBlob(digest(1), 10, 1_000);
        await store.forgetBlob(digest(9));
        expect(await store.blobsByAge(10)).toEqual([{ digest: digest(1), size: 10, lastAccess: 1_000 }]);
      });

      test('a forgotten blob can be touched again', async () => {
        await store.touchBlob(digest(1), 10, 1_000);
        await store.forgetBlob(digest(1));
        await store.touchBlob(digest(1), 11, 2_000);
        expect(await store.getBlob(digest(1))).toEqual({ size: 11, lastAccess: 2_000 });
      });
    });

    test('ping resolves', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    test('everything survives closing and opening again', async (ctx) => {
      if (!fixture.reopen) return ctx.skip();
      await store.setTag(key('library/alpine', 'latest', '1111'), tag(1));
      await store.setTag(key('library/alpine', 'latest', '1010'), tag(2));
      await store.setTag(key('library/alpine', 'gone'), tag(3));
      await store.setTag(key('org/app', 'v1', '1010', 'lab'), tag(4));
      await store.deleteTag('docker.io', 'library/alpine', 'gone');
      await store.setManifest(digest(1), { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, references: [digest(5)] });
      await store.touchBlob(digest(5), 50, 1_000);
      await store.touchBlob(digest(6), 60, 2_000);
      await store.touchBlob(digest(7), 70, 3_000);
      await store.touchBlob(digest(5), 50, 4_000);
      await store.forgetBlob(digest(6));

      store = await fixture.reopen();

      expect(await store.getTag(key('library/alpine', 'latest', '1111'))).toEqual(tag(1));
      expect(await store.getTag(key('library/alpine', 'latest', '1010'))).toEqual(tag(2));
      expect(await store.getTag(key('library/alpine', 'gone'))).toBeUndefined();
      expect(await store.listTags('docker.io', 'library/alpine')).toEqual(['latest']);
      expect(await store.listRepos()).toEqual([
        { upstream: 'docker.io', repo: 'library/alpine' },
        { upstream: 'lab', repo: 'org/app' },
      ]);
      expect(await store.getManifest(digest(1))).toEqual({ mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, references: [digest(5)] });
      expect(await store.blobsByAge(10)).toEqual([
        { digest: digest(7), size: 70, lastAccess: 3_000 },
        { digest: digest(5), size: 50, lastAccess: 4_000 },
      ]);
    });
  });
}
