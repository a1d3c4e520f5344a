// The hosted index as files in the data dir, one file per fact, so that replicas sharing the data dir
// see each other's pushes at once and a crash at any point leaves either the old or the new state:
//   repositories/<repo>/_tags/<tag>                   the digest the tag points at
//   repositories/<repo>/_manifests/<alg>/<hex>        the manifest's record (JSON)
//   repositories/<repo>/_blobs/<alg>/<hex>            a link: the repository may serve this blob
//   repositories/<repo>/_referrers/<alg>/<hex>/<alg>-<hex>   manifest (name) whose subject is <alg>:<hex>
//   pins/<alg>/<hex>                                  some repository linked this digest (mtime: last pinned)
// Every write goes to a temp file, is fsynced, renamed into place, and the directory fsynced.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest } from '../oci/digest.ts';
import { isTag } from '../oci/reference.ts';
import {
  checkedRepoKey,
  INDEX_BLOBS as BLOBS,
  INDEX_MANIFESTS as MANIFESTS,
  INDEX_REFERRERS as REFERRERS,
  INDEX_TAGS as TAGS,
} from './hosted-keys.ts';
import { OVERRIDE_PREFIX, type HostedIndex, type HostedManifest } from './hosted-index.ts';


export class DiskHostedIndex implements HostedIndex {
  readonly #repos: string;
  readonly #pins: string;

  constructor(root: string) {
    this.#repos = join(root, 'repositories');
    this.#pins = join(root, 'pins');
  }

  async getTag(repo: string, tag: string): Promise<string | undefined> {
    const text = await readText(join(this.#repo(repo), TAGS, checkedTag(tag)));
    return text?.trim() || undefined;
  }

  async setTag(repo: string, tag: string, digest: string): Promise<void> {
    await writeAtomically(join(this.#repo(repo), TAGS, checkedTag(tag)), `${parseDigest(digest).value}\n`);
  }

  async deleteTag(repo: string, tag: string): Promise<boolean> {
    return remove(join(this.#repo(repo), TAGS, checkedTag(tag)));
  }

  async listTags(repo: string): Promise<string[]> {
    const names = await readdir(join(this.#repo(repo), TAGS)).catch(() => [] as string[]);
    return names.filter(isTag).sort();
  }

  async getManifest(repo: string, digest: string): Promise<HostedManifest | undefined> {
    const text = await readText(this.#digestPath(repo, MANIFESTS, digest));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as HostedManifest;
    } catch {
      return undefined; // unreachable with atomic writes; a hand-damaged record reads as absent
    }
  }

  async putManifest(repo: string, digest: string, manifest: HostedManifest): Promise<void> {
    const path = this.#digestPath(repo, MANIFESTS, digest); // refuses a bad key before anything is pinned
    await this.pin(digest);
    // The referrer link first: a manifest visible without it would be missing from the referrers API.
    if (manifest.subject) await writeAtomically(this.#referrerPath(repo, manifest.subject, digest), '');
    await writeAtomically(path, JSON.stringify(manifest));
  }

  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    const record = await this.getManifest(repo, digest);
    const existed = await remove(this.#digestPath(repo, MANIFESTS, digest));
    if (record?.subject) await remove(this.#referrerPath(repo, record.subject, digest));
    for (const tag of await this.listTags(repo)) {
      if ((await this.getTag(repo, tag)) === digest) await this.deleteTag(repo, tag);
    }
    return existed;
  }

  async linkBlob(repo: string, digest: string, size: number): Promise<void> {
    const path = this.#digestPath(repo, BLOBS, digest); // refuses a bad key before anything is pinned
    await this.pin(digest);
    if (await exists(path)) return;
    await writeAtomically(path, `${size}\n`);
  }

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    return exists(this.#digestPath(repo, BLOBS, digest));
  }

  async unlinkBlob(repo: string, digest: string): Promise<boolean> {
    return remove(this.#digestPath(repo, BLOBS, digest));
  }

  async isPinned(digest: string): Promise<boolean> {
    const { algorithm, hex } = parseDigest(digest);
    return exists(join(this.#pins, algorithm, hex));
  }

  async listRepos(options: { withLinksOnly?: boolean } = {}): Promise<string[]> {
    const found: string[] = [];
    const walk = async (dir: string, name: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      const names = new Set(entries.filter((e) => e.isDirectory()).map((e) => e.name));
      const kinds = options.withLinksOnly ? [TAGS, MANIFESTS, BLOBS] : [TAGS, MANIFESTS];
      if (name && (await someHaveEntries(kinds.map((kind) => join(dir, kind))))) found.push(name);
      for (const child of names) {
        // Below the root only "_override" (and below it, upstream names) may start with "_".
        const overrideRoot = name === '' && `${child}/` === OVERRIDE_PREFIX;
        const upstreamDir = `${name}/` === OVERRIDE_PREFIX;
        if (child.startsWith('_') && !overrideRoot && !upstreamDir) continue;
        await walk(join(dir, child), name ? `${name}/${child}` : child);
      }
    };
    await walk(this.#repos, '');
    return found.sort();
  }

  async pin(digest: string): Promise<void> {
    const { algorithm, hex } = parseDigest(digest);
    const path = join(this.#pins, algorithm, hex);
    const now = new Date();
    // Renewed on every call: garbage collection spares a pin younger than its grace time.
    const renewed = await utimes(path, now, now).then(() => true, () => false);
    if (renewed) return;
    await mkdir(join(this.#pins, algorithm), { recursive: true });
    await (await open(path, 'a')).close();
  }

  async unpin(digest: string, graceMs: number, keep: () => Promise<boolean>): Promise<boolean> {
    const { algorithm, hex } = parseDigest(digest);
    const path = join(this.#pins, algorithm, hex);
    // Aside first (atomic): a push pinning meanwhile makes a new pin, which stays whatever we decide.
    const aside = join(this.#pins, `.unpin-${algorithm}-${hex}-${randomBytes(4).toString('hex')}`);
    if (!(await rename(path, aside).then(() => true, () => false))) return false;
    const info = await stat(aside).catch(() => undefined);
    let restore = true;
    try {
      restore = !info || Date.now() - info.mtimeMs < graceMs || (await keep());
    } finally {
      if (restore) await rename(aside, path).catch(() => rm(aside, { force: true }));
    }
    if (restore) return false;
    await rm(aside, { force: true });
    return true;
  }

  async *listPins(): AsyncIterable<{ digest: string; pinnedAt: number }> {
    for (const algorithm of await readdir(this.#pins).catch(() => [] as string[])) {
      if (algorithm.startsWith('.')) continue;
      for (const hex of await readdir(join(this.#pins, algorithm)).catch(() => [] as string[])) {
        const info = await stat(join(this.#pins, algorithm, hex)).catch(() => undefined);
        if (info) yield { digest: `${algorithm}:${hex}`, pinnedAt: info.mtimeMs };
      }
    }
  }

  async listManifests(repo: string): Promise<string[]> {
    return this.#digestsIn(join(this.#repo(repo), MANIFESTS));
  }

  async listBlobLinks(repo: string): Promise<{ digest: string; linkedAt: number }[]> {
    const dir = join(this.#repo(repo), BLOBS);
    const digests = await this.#digestsIn(dir);
    const links = await Promise.all(
      digests.map(async (digest) => {
        const [algorithm, hex] = digest.split(':') as [string, string];
        const info = await stat(join(dir, algorithm, hex)).catch(() => undefined);
        return info ? { digest, linkedAt: info.mtimeMs } : undefined;
      }),
    );
    return links.filter((l) => l !== undefined);
  }

  async referrers(repo: string, subject: string): Promise<string[]> {
    const { algorithm, hex } = parseDigest(subject);
    const names = await readdir(join(this.#repo(repo), REFERRERS, algorithm, hex)).catch(() => [] as string[]);
    return names
      .filter((n) => !n.startsWith('.'))
      .map((n) => n.replace('-', ':'))
      .sort();
  }

  /** "<alg>:<hex>" of the files below dir/<alg>/. */
  async #digestsIn(dir: string): Promise<string[]> {
    const found: string[] = [];
    for (const algorithm of await readdir(dir).catch(() => [] as string[])) {
      for (const hex of await readdir(join(dir, algorithm)).catch(() => [] as string[])) {
        if (!hex.startsWith('.')) found.push(`${algorithm}:${hex}`);
      }
    }
    return found.sort();
  }

  #referrerPath(repo: string, subject: string, digest: string): string {
    const s = parseDigest(subject);
    const d = parseDigest(digest);
    return join(this.#repo(repo), REFERRERS, s.algorithm, s.hex, `${d.algorithm}-${d.hex}`);
  }

  /** The repository's directory; the key is checked so that no input can name a path outside the tree. */
  #repo(repo: string): string {
    return join(this.#repos, ...checkedRepoKey(repo).split('/'));
  }

  #digestPath(repo: string, kind: string, digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.#repo(repo), kind, algorithm, hex);
  }
}

function checkedTag(tag: string): string {
  if (!isTag(tag)) throw new Error(`not a tag: ${JSON.stringify(tag.slice(0, 200))}`);
  return tag;
}

async function readText(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function hasEntries(dir: string): Promise<boolean> {
  const names = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return names.some((e) => e.isFile() && !e.name.startsWith('.'));
}

async function someHaveEntries(dirs: readonly string[]): Promise<boolean> {
  for (const dir of dirs) if (await hasEntries(dir)) return true;
  return false;
}

async function remove(path: string): Promise<boolean> {
  const existed = await exists(path);
  await rm(path, { force: true });
  return existed;
}

/** temp file, fsync, rename, fsync of the directory: after a crash the file is the old or the new one. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const dir = join(path, '..');
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.tmp-${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'wx', 0o644);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}
