// The hosted index as objects in the bucket, one object per fact (the same layout as the disk index,
// disk-hosted-index.ts), so that replicas sharing only the bucket see each other's pushes at once and
// every write is atomic (an object PUT replaces the whole object or nothing):
//   index/repositories/<repo>/_tags/<tag>                            the digest the tag points at
//   index/repositories/<repo>/_manifests/<alg>/<hex>                 the manifest's record (JSON)
//   index/repositories/<repo>/_blobs/<alg>/<hex>                     a link: the repository may serve this blob
//   index/repositories/<repo>/_referrers/<alg>/<hex>/<alg>-<hex>     manifest whose subject is <alg>:<hex>
//   index/pins/<alg>/<hex>                                           some repository linked this digest (last modified: last pinned)
import { randomBytes } from 'node:crypto';
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
import type { S3Bucket } from './s3-bucket.ts';

const REPOS = 'index/repositories/';
const PINS = 'index/pins/';
const RECORDS: readonly string[] = [TAGS, MANIFESTS, BLOBS, REFERRERS];
/** Folder listings at once while walking the repositories. */
const LIST_CONCURRENCY = 8;

export class S3HostedIndex implements HostedIndex {
  readonly #bucket: S3Bucket;

  constructor(bucket: S3Bucket) {
    this.#bucket = bucket;
  }

  async getTag(repo: string, tag: string): Promise<string | undefined> {
    const text = await this.#bucket.getText(`${this.#repo(repo)}${TAGS}/${checkedTag(tag)}`);
    return text?.trim() || undefined;
  }

  async setTag(repo: string, tag: string, digest: string): Promise<void> {
    const key = `${this.#repo(repo)}${TAGS}/${checkedTag(tag)}`;
    await this.#bucket.put(key, `${parseDigest(digest).value}\n`);
  }

  async deleteTag(repo: string, tag: string): Promise<boolean> {
    return this.#remove(`${this.#repo(repo)}${TAGS}/${checkedTag(tag)}`);
  }

  async listTags(repo: string): Promise<string[]> {
    const prefix = `${this.#repo(repo)}${TAGS}/`;
    const objects = await this.#bucket.listAll(prefix);
    return objects.map((o) => o.key.slice(prefix.length)).filter(isTag).sort();
  }

  async getManifest(repo: string, digest: string): Promise<HostedManifest | undefined> {
    const text = await this.#bucket.getText(this.#digestKey(repo, MANIFESTS, digest));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as HostedManifest;
    } catch {
      return undefined;
    }
  }

  async putManifest(repo: string, digest: string, manifest: HostedManifest): Promise<void> {
    const key = this.#digestKey(repo, MANIFESTS, digest); // refuses a bad key before anything is pinned
    await this.pin(digest);
    // The referrer link first: a manifest visible without it would be missing from the referrers API.
    if (manifest.subject) await this.#bucket.put(this.#referrerKey(repo, manifest.subject, digest), '');
    await this.#bucket.put(key, JSON.stringify(manifest));
  }

  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    const record = await this.getManifest(repo, digest);
    const existed = await this.#remove(this.#digestKey(repo, MANIFESTS, digest));
    if (record?.subject) await this.#remove(this.#referrerKey(repo, record.subject, digest));
    for (const tag of await this.listTags(repo)) {
      if ((await this.getTag(repo, tag)) === digest) await this.deleteTag(repo, tag);
    }
    return existed;
  }

  async linkBlob(repo: string, digest: string, size: number): Promise<void> {
    const key = this.#digestKey(repo, BLOBS, digest);
    await this.pin(digest);
    if (await this.#bucket.head(key)) return;
    await this.#bucket.put(key, `${size}\n`);
  }

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    return (await this.#bucket.head(this.#digestKey(repo, BLOBS, digest))) !== undefined;
  }

  async unlinkBlob(repo: string, digest: string): Promise<boolean> {
    return this.#remove(this.#digestKey(repo, BLOBS, digest));
  }

  async pin(digest: string): Promise<void> {
    // Rewritten on every call: garbage collection spares a pin younger than its grace time. The body
    // differs each time, so that unpin sees a renewal by its ETag (last-modified has whole seconds).
    await this.#bucket.put(this.#pinKey(digest), `${Date.now()} ${randomBytes(4).toString('hex')}\n`);
  }

  async unpin(digest: string, graceMs: number, keep: () => Promise<boolean>): Promise<boolean> {
    const key = this.#pinKey(digest);
    const head = await this.#bucket.head(key);
    if (!head || Date.now() - head.modifiedAt < graceMs) return false;
    if (await keep()) return false;
    // A push that pinned while keep() was asked renewed the pin: it stays.
    const again = await this.#bucket.head(key);
    if (!again || again.etag !== head.etag) return false;
    await this.#bucket.deleteKeys([key]);
    return true;
  }

  async *listPins(): AsyncIterable<{ digest: string; pinnedAt: number }> {
    for await (const object of this.#bucket.list(PINS)) {
      const [algorithm, hex, ...rest] = object.key.slice(PINS.length).split('/');
      if (algorithm && hex && !rest.length) yield { digest: `${algorithm}:${hex}`, pinnedAt: object.modifiedAt };
    }
  }

  async isPinned(digest: string): Promise<boolean> {
    return (await this.#bucket.head(this.#pinKey(digest))) !== undefined;
  }

  async listRepos(options: { withLinksOnly?: boolean } = {}): Promise<string[]> {
    const kinds = options.withLinksOnly ? [TAGS, MANIFESTS, BLOBS] : [TAGS, MANIFESTS];
    const found = new Set<string>();
    // Folder by folder (a listing each), so a repository's thousands of blob links and manifests cost
    // nothing here. A repository is a folder holding a record folder ("_tags", ...); below the root only
    // "_override" (and right below it, upstream names) may start with "_", so those are never records.
    let level = [''];
    while (level.length) {
      const next: string[] = [];
      for (let i = 0; i < level.length; i += LIST_CONCURRENCY) {
        await Promise.all(
          level.slice(i, i + LIST_CONCURRENCY).map(async (path) => {
            const recordsHere = path !== '' && path !== OVERRIDE_PREFIX;
            for (const child of await this.#bucket.folders(`${REPOS}${path}`)) {
              if (recordsHere && RECORDS.includes(child)) {
                if (kinds.includes(child)) found.add(path.slice(0, -1));
              } else next.push(`${path}${child}/`);
            }
          }),
        );
      }
      level = next;
    }
    return [...found].sort();
  }

  async listManifests(repo: string): Promise<string[]> {
    return (await this.#digestsIn(`${this.#repo(repo)}${MANIFESTS}/`)).map((d) => d.digest);
  }

  async listBlobLinks(repo: string): Promise<{ digest: string; linkedAt: number }[]> {
    return (await this.#digestsIn(`${this.#repo(repo)}${BLOBS}/`)).map((d) => ({ digest: d.digest, linkedAt: d.modifiedAt }));
  }

  async referrers(repo: string, subject: string): Promise<string[]> {
    const { algorithm, hex } = parseDigest(subject);
    const prefix = `${this.#repo(repo)}${REFERRERS}/${algorithm}/${hex}/`;
    const objects = await this.#bucket.listAll(prefix);
    return objects.map((o) => o.key.slice(prefix.length).replace('-', ':')).sort();
  }

  async #digestsIn(prefix: string): Promise<{ digest: string; modifiedAt: number }[]> {
    const objects = await this.#bucket.listAll(prefix);
    return objects
      .map((o) => ({ parts: o.key.slice(prefix.length).split('/'), modifiedAt: o.modifiedAt }))
      .filter(({ parts }) => parts.length === 2)
      .map(({ parts, modifiedAt }) => ({ digest: `${parts[0]}:${parts[1]}`, modifiedAt }))
      .sort((a, b) => a.digest.localeCompare(b.digest));
  }

  async #remove(key: string): Promise<boolean> {
    const existed = (await this.#bucket.head(key)) !== undefined;
    if (existed) await this.#bucket.deleteKeys([key]);
    return existed;
  }

  /** The repository's key prefix ("index/repositories/lab/app/"); the key is checked first. */
  #repo(repo: string): string {
    return `${REPOS}${checkedRepoKey(repo)}/`;
  }

  #digestKey(repo: string, kind: string, digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return `${this.#repo(repo)}${kind}/${algorithm}/${hex}`;
  }

  #referrerKey(repo: string, subject: string, digest: string): string {
    const s = parseDigest(subject);
    const d = parseDigest(digest);
    return `${this.#repo(repo)}${REFERRERS}/${s.algorithm}/${s.hex}/${d.algorithm}-${d.hex}`;
  }

  #pinKey(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return `${PINS}${algorithm}/${hex}`;
  }
}

function checkedTag(tag: string): string {
  if (!isTag(tag)) throw new Error(`not a tag: ${JSON.stringify(tag.slice(0, 200))}`);
  return tag;
}
