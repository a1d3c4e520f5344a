// The one conformance suite every HostedIndex implementation must pass (see STYLE.md "Tests").
import { afterEach, beforeEach, describe, expect, it, type TestFunction } from 'vitest';
import { overrideKey, parseOverrideKey, type HostedIndex, type HostedManifest } from '../../src/store/hosted-index.ts';

export interface HostedIndexFixture {
  /** A fresh, empty index. */
  index: HostedIndex;
  /** Another index on the same data, as a second replica sharing the data dir (or a restart) opens it. */
  openReplica(): Promise<HostedIndex>;
  /** Removes the index's data. */
  cleanup(): Promise<void>;
}

export interface HostedIndexSuiteOptions {
  /** Titles of tests this implementation is known to fail (run as it.fails, so a fix shows up). */
  readonly knownBugs?: readonly string[];
}

const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`;
const manifest = (n: number, extra: Partial<HostedManifest> = {}): HostedManifest => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  size: 400 + n,
  references: [digest(1000 + n), digest(2000 + n)],
  pushedAt: 1_700_000_000_000 + n,
  ...extra,
});

/** The error a call refuses with (thrown or rejected), or undefined when it succeeded. */
export async function refusal(call: () => Promise<unknown>): Promise<unknown> {
  return Promise.resolve()
    .then(call)
    .then(
      () => undefined,
      (err: unknown) => err ?? new Error('rejected with nothing'),
    );
}

/** Repository keys no index may accept: each names a path outside its repository tree, or is no repository name. */
export const HOSTILE_KEYS = [
  '',
  '../x',
  '..',
  '.',
  '/abs',
  'a/../../x',
  'a/./b',
  '_x',
  'lab/_tags',
  'a//b',
  'a/',
  'Upper/case',
  'lab\\app',
  'lab/app\0',
  `${'a'.repeat(256)}`,
  '_override',
  '_override/',
  '_override/docker.io',
  '_override/../library/alpine',
  '_override/./library/alpine',
  '_override//library/alpine',
  '_override/docker.io/../../x',
  '_override/docker.io/_x',
  '_override/a/b\\c/x',
];

export const HOSTILE_TAGS = ['', '../x', '.hidden', '-x', 'a/b', 'a\\b', 'x'.repeat(129), 'tag with space', 'tag\0'];

export const HOSTILE_DIGESTS = ['', 'sha256:../../etc', `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, `md5:${'a'.repeat(32)}`, `sha256:${'a'.repeat(62)}/..`, 'latest'];

export function describeHostedIndex(name: string, factory: () => Promise<HostedIndexFixture>, options: HostedIndexSuiteOptions = {}): void {
  const test = (title: string, fn: TestFunction) => (options.knownBugs?.includes(title) ? it.fails : it)(title, fn);

  describe(`HostedIndex contract: ${name}`, () => {
    let fixture: HostedIndexFixture;
    let index: HostedIndex;

    beforeEach(async () => {
      fixture = await factory();
      index = fixture.index;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    describe('tags', () => {
      test('an unknown tag is undefined and an unknown repository has no tags', async () => {
        expect(await index.getTag('lab/app', 'latest')).toBeUndefined();
        expect(await index.listTags('lab/app')).toEqual([]);
      });

      test('setTag then getTag gives the digest', async () => {
        await index.setTag('lab/app', 'latest', digest(1));
        expect(await index.getTag('lab/app', 'latest')).toBe(digest(1));
      });

      test('setTag moves an existing tag', async () => {
        await index.setTag('lab/app', 'latest', digest(1));
        await index.setTag('lab/app', 'latest', digest(2));
        expect(await index.getTag('lab/app', 'latest')).toBe(digest(2));
        expect(await index.listTags('lab/app')).toEqual(['latest']);
      });

      test('holds sha512 digests', async () => {
        const long = `sha512:${'ab'.repeat(64)}`;
        await index.setTag('lab/app', 'v1', long);
        expect(await index.getTag('lab/app', 'v1')).toBe(long);
      });

      test('deleteTag removes the tag and says whether it was there', async () => {
        await index.setTag('lab/app', 'latest', digest(1));
        await index.setTag('lab/app', 'v1', digest(1));
        expect(await index.deleteTag('lab/app', 'latest')).toBe(true);
        expect(await index.getTag('lab/app', 'latest')).toBeUndefined();
        expect(await index.getTag('lab/app', 'v1')).toBe(digest(1));
        expect(await index.listTags('lab/app')).toEqual(['v1']);
        expect(await index.deleteTag('lab/app', 'latest')).toBe(false);
        expect(await index.deleteTag('lab/other', 'latest')).toBe(false);
      });

      test('listTags is sorted', async () => {
        const tags = ['v1.10', 'latest', 'V2', '1.0', '_private', 'v1.9', 'a-b_c.d', 'x'.repeat(128)];
        for (const [i, t] of tags.entries()) await index.setTag('lab/app', t, digest(i));
        expect(await index.listTags('lab/app')).toEqual([...tags].sort());
        for (const [i, t] of tags.entries()) expect(await index.getTag('lab/app', t), t).toBe(digest(i));
      });

      test('tags are scoped to their repository', async () => {
        await index.setTag('lab/app', 'latest', digest(1));
        await index.setTag('lab/app/sub', 'latest', digest(2));
        await index.setTag('lab/ap', 'latest', digest(3));
        await index.setTag(overrideKey('docker.io', 'lab/app'), 'latest', digest(4));
        expect(await index.getTag('lab/app', 'latest')).toBe(digest(1));
        expect(await index.getTag('lab/app/sub', 'latest')).toBe(digest(2));
        expect(await index.getTag('lab/ap', 'latest')).toBe(digest(3));
        expect(await index.getTag(overrideKey('docker.io', 'lab/app'), 'latest')).toBe(digest(4));
        expect(await index.getTag('lab', 'latest')).toBeUndefined();
        expect(await index.listTags('lab/app')).toEqual(['latest']);
        expect(await index.listTags('lab')).toEqual([]);
      });

      test('many tags set at once in one repository are all kept', async () => {
        const tags = Array.from({ length: 40 }, (_, i) => `t${i}`);
        await Promise.all(tags.map((t, i) => index.setTag('lab/app', t, digest(i))));
        expect(await index.listTags('lab/app')).toEqual([...tags].sort());
        for (const [i, t] of tags.entries()) expect(await index.getTag('lab/app', t)).toBe(digest(i));
      });

      test('a tag moved by many writers at once ends at one of their digests, and no read is torn or empty', async () => {
        await index.setTag('lab/app', 'latest', digest(1));
        const replica = await fixture.openReplica();
        const written = new Set([digest(1)]);
        let writing = true;
        const seen: (string | undefined)[] = [];
        // Readers on this index and on a replica, while eight writers keep moving the tag for a while.
        const readers = [index, index, replica, replica].map(async (reading) => {
          while (writing) seen.push(await reading.getTag('lab/app', 'latest'));
        });
        const until = Date.now() + 400;
        const writers = Array.from({ length: 8 }, async (_, lane) => {
          for (let i = 0; i < 10 || Date.now() < until; i++) {
            const d = digest(10_000 * (lane + 1) + i);
            written.add(d);
            await (lane % 2 ? replica : index).setTag('lab/app', 'latest', d);
          }
        });
        try {
          await Promise.all(writers);
        } finally {
          writing = false;
          await Promise.all(readers);
        }
        expect(seen.length).toBeGreaterThan(10);
        expect(seen.filter((d) => d === undefined || !written.has(d))).toEqual([]);
        const last = await index.getTag('lab/app', 'latest');
        expect(written.has(last!) && last !== digest(1)).toBe(true);
        expect(await replica.getTag('lab/app', 'latest')).toBe(last);
        expect(await index.listTags('lab/app')).toEqual(['latest']);
      });
    });

    describe('manifests', () => {
      test('an unknown manifest is undefined', async () => {
        expect(await index.getManifest('lab/app', digest(1))).toBeUndefined();
      });

      test('putManifest then getManifest gives the record, with every optional field', async () => {
        const plain = manifest(1);
        const full = manifest(2, {
          mediaType: 'application/vnd.oci.image.index.v1+json',
          references: [],
          subject: digest(1),
          artifactType: 'application/vnd.example.sbom+json',
          annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'x': 'ünïcode ✓' },
        });
        await index.putManifest('lab/app', digest(1), plain);
        await index.putManifest('lab/app', digest(2), full);
        expect(await index.getManifest('lab/app', digest(1))).toEqual(plain);
        expect(await index.getManifest('lab/app', digest(2))).toEqual(full);
      });

      test('putManifest again replaces the record', async () => {
        await index.putManifest('lab/app', digest(1), manifest(1));
        await index.putManifest('lab/app', digest(1), manifest(1, { pushedAt: 5 }));
        expect(await index.getManifest('lab/app', digest(1))).toEqual(manifest(1, { pushedAt: 5 }));
      });

      test('manifests are scoped to their repository', async () => {
        await index.putManifest('lab/app', digest(1), manifest(1));
        expect(await index.getManifest('lab/other', digest(1))).toBeUndefined();
        expect(await index.getManifest('lab/app/sub', digest(1))).toBeUndefined();
        expect(await index.getManifest(overrideKey('docker.io', 'lab/app'), digest(1))).toBeUndefined();
      });

      test('deleteManifest removes it and every tag pointing at it, not tags pointing elsewhere', async () => {
        await index.putManifest('lab/app', digest(1), manifest(1));
        await index.putManifest('lab/app', digest(2), manifest(2));
        await index.setTag('lab/app', 'latest', digest(1));
        await index.setTag('lab/app', 'v1', digest(1));
        await index.setTag('lab/app', 'v2', digest(2));
        await index.putManifest('lab/other', digest(1), manifest(1));
        await index.setTag('lab/other', 'latest', digest(1));

        expect(await index.deleteManifest('lab/app', digest(1))).toBe(true);

        expect(await index.getManifest('lab/app', digest(1))).toBeUndefined();
        expect(await index.getTag('lab/app', 'latest')).toBeUndefined();
        expect(await index.getTag('lab/app', 'v1')).toBeUndefined();
        expect(await index.listTags('lab/app')).toEqual(['v2']);
        expect(await index.getTag('lab/app', 'v2')).toBe(digest(2));
        expect(await index.getManifest('lab/app', digest(2))).toEqual(manifest(2));
        // Another repository's manifest and tags of the same digest stay.
        expect(await index.getManifest('lab/other', digest(1))).toEqual(manifest(1));
        expect(await index.getTag('lab/other', 'latest')).toBe(digest(1));

        expect(await index.deleteManifest('lab/app', digest(1))).toBe(false);
        expect(await index.deleteManifest('lab/nothing', digest(1))).toBe(false);
      });
    });

    describe('blob links', () => {
      test('linkBlob, hasBlob, unlinkBlob', async () => {
        expect(await index.hasBlob('lab/app', digest(1))).toBe(false);
        await index.linkBlob('lab/app', digest(1), 1234);
        expect(await index.hasBlob('lab/app', digest(1))).toBe(true);
        expect(await index.hasBlob('lab/app', digest(2))).toBe(false);
        expect(await index.unlinkBlob('lab/app', digest(1))).toBe(true);
        expect(await index.hasBlob('lab/app', digest(1))).toBe(false);
        expect(await index.unlinkBlob('lab/app', digest(1))).toBe(false);
      });

      test('linking twice is harmless and one unlink removes the link', async () => {
        await index.linkBlob('lab/app', digest(1), 10);
        await index.linkBlob('lab/app', digest(1), 10);
        expect(await index.hasBlob('lab/app', digest(1))).toBe(true);
        expect(await index.unlinkBlob('lab/app', digest(1))).toBe(true);
        expect(await index.hasBlob('lab/app', digest(1))).toBe(false);
      });

      test('a link in one repository is not visible in another', async () => {
        await index.linkBlob('lab/a', digest(1), 10);
        expect(await index.hasBlob('lab/b', digest(1))).toBe(false);
        expect(await index.hasBlob('lab/a/sub', digest(1))).toBe(false);
        expect(await index.hasBlob('lab', digest(1))).toBe(false);
        expect(await index.hasBlob(overrideKey('docker.io', 'lab/a'), digest(1))).toBe(false);
        await index.linkBlob('lab/b', digest(1), 10);
        expect(await index.unlinkBlob('lab/a', digest(1))).toBe(true);
        expect(await index.hasBlob('lab/b', digest(1))).toBe(true);
      });

      test('a blob link is not a manifest and a manifest is not a blob link', async () => {
        await index.linkBlob('lab/app', digest(1), 10);
        await index.putManifest('lab/app', digest(2), manifest(2));
        expect(await index.getManifest('lab/app', digest(1))).toBeUndefined();
        expect(await index.hasBlob('lab/app', digest(2))).toBe(false);
      });
    });

    describe('pins', () => {
      test('nothing is pinned at first; pin pins', async () => {
        expect(await index.isPinned(digest(1))).toBe(false);
        await index.pin(digest(1));
        await index.pin(digest(1));
        expect(await index.isPinned(digest(1))).toBe(true);
        expect(await index.isPinned(digest(2))).toBe(false);
      });

      test('linkBlob and putManifest pin the digest, for every repository', async () => {
        await index.linkBlob('lab/a', digest(1), 10);
        await index.putManifest('lab/b', digest(2), manifest(2));
        expect(await index.isPinned(digest(1))).toBe(true);
        expect(await index.isPinned(digest(2))).toBe(true);
        expect(await index.isPinned(digest(3))).toBe(false);
      });

      test('unlinkBlob and deleteManifest do not unpin', async () => {
        await index.linkBlob('lab/app', digest(1), 10);
        await index.putManifest('lab/app', digest(2), manifest(2));
        await index.setTag('lab/app', 'latest', digest(2));
        await index.unlinkBlob('lab/app', digest(1));
        await index.deleteManifest('lab/app', digest(2));
        expect(await index.isPinned(digest(1))).toBe(true);
        expect(await index.isPinned(digest(2))).toBe(true);
      });

      test('a sha512 digest can be pinned', async () => {
        const long = `sha512:${'cd'.repeat(64)}`;
        await index.linkBlob('lab/app', long, 10);
        expect(await index.isPinned(long)).toBe(true);
        expect(await index.hasBlob('lab/app', long)).toBe(true);
      });
    });

    describe('listRepos', () => {
      test('an empty index lists no repositories', async () => {
        expect(await index.listRepos()).toEqual([]);
      });

      test('lists hosted names, nested names and override keys, sorted', async () => {
        const alpine = overrideKey('docker.io', 'library/alpine');
        const ported = overrideKey('registry.example.com:5000', 'team/tool');
        await index.setTag('myorg/team/tool', 'v1', digest(1));
        await index.setTag('lab/app', 'latest', digest(2));
        await index.putManifest('lab/zeta', digest(3), manifest(3));
        await index.setTag(alpine, '3.20', digest(4));
        await index.putManifest(ported, digest(5), manifest(5));
        await index.setTag('myorg/team', 'v0', digest(6));
        await index.setTag('a0', 'x', digest(7));
        const expected = ['myorg/team/tool', 'lab/app', 'lab/zeta', alpine, ported, 'myorg/team', 'a0'].sort();
        expect(await index.listRepos()).toEqual(expected);
        // Intermediate path components ("myorg", "lab") are no repositories of their own.
        expect(await index.listRepos()).not.toContain('myorg');
        expect(await index.listRepos()).not.toContain('lab');
      });

      test('override keys round-trip through parseOverrideKey', async () => {
        const alpine = overrideKey('docker.io', 'library/alpine');
        await index.setTag(alpine, 'latest', digest(1));
        await index.setTag('lab/app', 'latest', digest(2));
        const repos = await index.listRepos();
        expect(repos).toEqual([alpine, 'lab/app'].sort());
        expect(repos.map((r) => parseOverrideKey(r))).toEqual(
          repos.map((r) => (r === alpine ? { upstream: 'docker.io', repo: 'library/alpine' } : undefined)),
        );
        expect(parseOverrideKey(overrideKey('localhost:5000', 'a/b/c'))).toEqual({ upstream: 'localhost:5000', repo: 'a/b/c' });
        expect(parseOverrideKey('lab/app')).toBeUndefined();
      });

      test('a repository holding only blob links is not listed', async () => {
        await index.linkBlob('lab/blobs-only', digest(1), 10);
        await index.linkBlob(overrideKey('docker.io', 'library/busybox'), digest(2), 10);
        await index.setTag('lab/app', 'latest', digest(3));
        expect(await index.listRepos()).toEqual(['lab/app']);
      });

      test('a repository whose tags and manifests are all gone drops out', async () => {
        await index.putManifest('lab/app', digest(1), manifest(1));
        await index.setTag('lab/app', 'latest', digest(1));
        await index.setTag('lab/tags-only', 'v1', digest(9));
        await index.linkBlob('lab/app', digest(2), 10);
        expect(await index.listRepos()).toEqual(['lab/app', 'lab/tags-only']);
        await index.deleteManifest('lab/app', digest(1));
        await index.deleteTag('lab/tags-only', 'v1');
        expect(await index.listRepos()).toEqual([]);
      });
    });

    describe('keys, tags and digests are validated', () => {
      const validKeyCalls = (key: string): [string, () => Promise<unknown>][] => [
        ['getTag', () => index.getTag(key, 'latest')],
        ['setTag', () => index.setTag(key, 'latest', digest(1))],
        ['deleteTag', () => index.deleteTag(key, 'latest')],
        ['listTags', () => index.listTags(key)],
        ['getManifest', () => index.getManifest(key, digest(1))],
        ['putManifest', () => index.putManifest(key, digest(1), manifest(1))],
        ['deleteManifest', () => index.deleteManifest(key, digest(1))],
        ['linkBlob', () => index.linkBlob(key, digest(1), 10)],
        ['hasBlob', () => index.hasBlob(key, digest(1))],
        ['unlinkBlob', () => index.unlinkBlob(key, digest(1))],
      ];

      test('valid keys are accepted', async () => {
        for (const key of ['a', 'lab/app', 'a.b/c_d/e__f/g-h/i--j', 'myorg/team/tool', overrideKey('docker.io', 'library/alpine'), overrideKey('localhost:5000', 'x')]) {
          for (const [method, call] of validKeyCalls(key)) expect(await refusal(call), `${method}(${JSON.stringify(key)})`).toBeUndefined();
        }
      });

      it.each(HOSTILE_KEYS)('repository key %j is refused by every method', async (key) => {
        for (const [method, call] of validKeyCalls(key)) expect(await refusal(call), method).toBeInstanceOf(Error);
        expect(await index.listRepos()).toEqual([]);
      });

      test('a refused linkBlob or putManifest pins nothing', async () => {
        for (const key of HOSTILE_KEYS) {
          expect(await refusal(() => index.linkBlob(key, digest(1), 10)), key).toBeInstanceOf(Error);
          expect(await refusal(() => index.putManifest(key, digest(2), manifest(2))), key).toBeInstanceOf(Error);
        }
        expect(await index.isPinned(digest(1))).toBe(false);
        expect(await index.isPinned(digest(2))).toBe(false);
      });

      it.each(HOSTILE_TAGS)('tag %j is refused', async (tag) => {
        await index.setTag('lab/app', 'latest', digest(1));
        expect(await refusal(() => index.setTag('lab/app', tag, digest(2))), 'setTag').toBeInstanceOf(Error);
        expect(await refusal(() => index.getTag('lab/app', tag)), 'getTag').toBeInstanceOf(Error);
        expect(await refusal(() => index.deleteTag('lab/app', tag)), 'deleteTag').toBeInstanceOf(Error);
        expect(await index.listTags('lab/app')).toEqual(['latest']);
        expect(await index.getTag('lab/app', 'latest')).toBe(digest(1));
      });

      it.each(HOSTILE_DIGESTS)('digest %j is refused', async (bad) => {
        const calls: [string, () => Promise<unknown>][] = [
          ['setTag', () => index.setTag('lab/app', 'latest', bad)],
          ['getManifest', () => index.getManifest('lab/app', bad)],
          ['putManifest', () => index.putManifest('lab/app', bad, manifest(1))],
          ['deleteManifest', () => index.deleteManifest('lab/app', bad)],
          ['linkBlob', () => index.linkBlob('lab/app', bad, 10)],
          ['hasBlob', () => index.hasBlob('lab/app', bad)],
          ['unlinkBlob', () => index.unlinkBlob('lab/app', bad)],
          ['pin', () => index.pin(bad)],
          ['isPinned', () => index.isPinned(bad)],
        ];
        for (const [method, call] of calls) expect(await refusal(call), method).toBeInstanceOf(Error);
        expect(await index.getTag('lab/app', 'latest')).toBeUndefined();
        expect(await index.listRepos()).toEqual([]);
      });

      // Promise-returning methods report bad input as a rejection, so `.catch()` and Promise.all see it.
      test('refusals are rejections, never synchronous throws', () => {
        const calls: [string, () => Promise<unknown>][] = [
          ...validKeyCalls('../x'),
          ['getTag bad tag', () => index.getTag('lab/app', '../x')],
          ['setTag bad digest', () => index.setTag('lab/app', 'latest', '../x')],
          ['hasBlob bad digest', () => index.hasBlob('lab/app', '../x')],
          ['unlinkBlob bad digest', () => index.unlinkBlob('lab/app', '../x')],
          ['pin', () => index.pin('../x')],
          ['isPinned', () => index.isPinned('../x')],
        ];
        const syncThrows: string[] = [];
        const pending: Promise<unknown>[] = [];
        for (const [method, call] of calls) {
          try {
            pending.push(call().catch(() => undefined));
          } catch {
            syncThrows.push(method);
          }
        }
        return Promise.all(pending).then(() => expect(syncThrows).toEqual([]));
      });
    });

    describe('what garbage collection and the referrers API read', () => {
      test('listManifests, listBlobLinks (with when linked) and listPins (with when pinned)', async () => {
        const before = Date.now() - 1_000;
        await index.putManifest('lab/app', digest(2), manifest(2));
        await index.putManifest('lab/app', digest(1), manifest(1));
        await index.linkBlob('lab/app', digest(3), 7);
        expect(await index.listManifests('lab/app')).toEqual([digest(1), digest(2)]);
        expect(await index.listManifests('lab/other')).toEqual([]);
        const links = await index.listBlobLinks('lab/app');
        expect(links.map((l) => l.digest)).toEqual([digest(3)]);
        expect(links[0]!.linkedAt).toBeGreaterThan(before);
        const pins: { digest: string; pinnedAt: number }[] = [];
        for await (const pin of index.listPins()) pins.push(pin);
        expect(pins.map((p) => p.digest).sort()).toEqual([digest(1), digest(2), digest(3)]);
        for (const pin of pins) expect(pin.pinnedAt).toBeGreaterThan(before);
      });

      test('unpin keeps a pin renewed within the grace time or one keep() claims, and removes the others', async () => {
        await index.pin(digest(1));
        expect(await index.unpin(digest(1), 60_000, async () => false)).toBe(false);
        expect(await index.isPinned(digest(1))).toBe(true);
        expect(await index.unpin(digest(1), 0, async () => true)).toBe(false);
        expect(await index.isPinned(digest(1))).toBe(true);
        expect(await index.unpin(digest(1), 0, async () => false)).toBe(true);
        expect(await index.isPinned(digest(1))).toBe(false);
        expect(await index.unpin(digest(9), 0, async () => false)).toBe(false);
      });

      test('an unpin whose keep() fails leaves the pin', async () => {
        await index.pin(digest(1));
        await expect(index.unpin(digest(1), 0, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
        expect(await index.isPinned(digest(1))).toBe(true);
      });

      test('referrers lists the manifests whose subject is the digest, until they are deleted', async () => {
        await index.putManifest('lab/app', digest(1), manifest(1));
        await index.putManifest('lab/app', digest(2), manifest(2, { subject: digest(1) }));
        await index.putManifest('lab/app', digest(3), manifest(3, { subject: digest(1) }));
        await index.putManifest('lab/other', digest(4), manifest(4, { subject: digest(1) }));
        expect(await index.referrers('lab/app', digest(1))).toEqual([digest(2), digest(3)]);
        expect(await index.referrers('lab/app', digest(9))).toEqual([]);
        await index.deleteManifest('lab/app', digest(2));
        expect(await index.referrers('lab/app', digest(1))).toEqual([digest(3)]);
        expect(await index.referrers('lab/other', digest(1))).toEqual([digest(4)]);
      });

      test('listRepos withLinksOnly also lists repositories that hold only blob links', async () => {
        await index.linkBlob('lab/links-only', digest(1), 1);
        await index.setTag('lab/tagged', 'latest', digest(2));
        expect(await index.listRepos()).toEqual(['lab/tagged']);
        expect(await index.listRepos({ withLinksOnly: true })).toEqual(['lab/links-only', 'lab/tagged']);
      });
    });

    describe('replicas on one data dir', () => {
      test('a second index on the same data sees every write at once', async () => {
        const replica = await fixture.openReplica();
        await index.setTag('lab/app', 'latest', digest(1));
        await index.putManifest('lab/app', digest(1), manifest(1));
        await index.linkBlob('lab/app', digest(2), 10);
        await index.pin(digest(3));
        await index.setTag(overrideKey('docker.io', 'library/alpine'), 'latest', digest(4));

        expect(await replica.getTag('lab/app', 'latest')).toBe(digest(1));
        expect(await replica.listTags('lab/app')).toEqual(['latest']);
        expect(await replica.getManifest('lab/app', digest(1))).toEqual(manifest(1));
        expect(await replica.hasBlob('lab/app', digest(2))).toBe(true);
        expect(await replica.isPinned(digest(2))).toBe(true);
        expect(await replica.isPinned(digest(3))).toBe(true);
        expect(await replica.listRepos()).toEqual([overrideKey('docker.io', 'library/alpine'), 'lab/app'].sort());

        // ...and the first sees the replica's changes.
        await replica.setTag('lab/app', 'latest', digest(5));
        await replica.unlinkBlob('lab/app', digest(2));
        await replica.deleteTag(overrideKey('docker.io', 'library/alpine'), 'latest');
        expect(await index.getTag('lab/app', 'latest')).toBe(digest(5));
        expect(await index.hasBlob('lab/app', digest(2))).toBe(false);
        expect(await index.listRepos()).toEqual(['lab/app']);

        await replica.deleteManifest('lab/app', digest(1));
        expect(await index.getManifest('lab/app', digest(1))).toBeUndefined();
        expect(await index.getTag('lab/app', 'latest')).toBe(digest(5));
      });

      test('writes from both at once are all kept', async () => {
        const replica = await fixture.openReplica();
        await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 ? index : replica).setTag('lab/app', `t${i}`, digest(i))),
        );
        const tags = Array.from({ length: 20 }, (_, i) => `t${i}`).sort();
        expect(await index.listTags('lab/app')).toEqual(tags);
        expect(await replica.listTags('lab/app')).toEqual(tags);
      });
    });
  });
}
