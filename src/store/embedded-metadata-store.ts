// The no-Redis default: metadata in memory, made durable by an append-only journal under the data dir
// (replayed at start, compacted when it grows). One process owns a data dir at a time (lock file);
// several replicas need Redis.
import { open, readFile, rename, rm, stat, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { BlobRecord, ManifestRecord, MetadataStore, RepoRef, TagKey, TagRecord } from './metadata-store.ts';

type Entry =
  | { t: 'tag'; k: string; v: TagRecord }
  | { t: 'untag'; k: string }
  | { t: 'manifest'; k: string; v: ManifestRecord }
  | { t: 'blob'; k: string; v: BlobRecord }
  | { t: 'unblob'; k: string };

const SEP = '\u0000';
/** Access times are flushed in batches: losing a few seconds of them in a crash only skews LRU order. */
const ACCESS_FLUSH_MS = 5_000;
const LOCK_HEARTBEAT_MS = 10_000;
const LOCK_STALE_MS = 30_000;

export class EmbeddedMetadataStore implements MetadataStore {
  readonly #dir: string;
  readonly #tags = new Map<string, TagRecord>();
  readonly #manifests = new Map<string, ManifestRecord>();
  readonly #blobs = new Map<string, BlobRecord>();
  readonly #dirtyBlobs = new Set<string>();
  #journal?: FileHandle;
  #writes: Promise<void> = Promise.resolve();
  #flushTimer?: NodeJS.Timeout;
  #lines = 0;
  #heartbeat?: NodeJS.Timeout;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async open(dir: string): Promise<EmbeddedMetadataStore> {
    const store = new EmbeddedMetadataStore(dir);
    await store.#lock();
    await store.#replay();
    await store.#compact();
    store.#journal = await open(store.#journalPath, 'a');
    store.#flushTimer = setInterval(() => void store.#flushAccess(), ACCESS_FLUSH_MS).unref();
    return store;
  }

  get #journalPath(): string {
    return join(this.#dir, 'metadata.jsonl');
  }

  get #lockPath(): string {
    return join(this.#dir, 'metadata.lock');
  }

  /**
   * Takes the data dir's lock: created atomically, holding "<host> <pid>", its mtime refreshed while the
   * store is open. A lock is honoured while its holder is alive on this host, or while its heartbeat is
   * fresh (another host sharing the volume); a crashed holder's lock goes stale and is taken over.
   */
  async #lock(): Promise<void> {
    const mine = `${hostname()} ${process.pid}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(this.#lockPath, mine, { flag: 'wx' });
        this.#heartbeat = setInterval(() => void utimes(this.#lockPath, new Date(), new Date()).catch(() => {}), LOCK_HEARTBEAT_MS).unref();
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const [text, info] = await Promise.all([readFile(this.#lockPath, 'utf8').catch(() => ''), stat(this.#lockPath).catch(() => undefined)]);
      const [host, pidText] = text.trim().split(' ');
      const pid = Number(pidText ?? host);
      const sameHost = pidText === undefined || host === hostname();
      const fresh = info !== undefined && Date.now() - info.mtimeMs < LOCK_STALE_MS;
      const held = sameHost ? pid !== process.pid && isAlive(pid) : fresh;
      if (held) {
        throw new Error(`data dir ${this.#dir} is in use by process ${text.trim()}; several processes on one data dir need Redis (redis.url)`);
      }
      await rm(this.#lockPath, { force: true });
    }
    throw new Error(`could not take the lock ${this.#lockPath}`);
  }

  async #replay(): Promise<void> {
    const text = await readFile(this.#journalPath, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (!line) continue;
      let entry: Entry;
      try {
        entry = JSON.parse(line) as Entry;
      } catch {
        continue; // a torn last line after a crash
      }
      this.#apply(entry);
      this.#lines++;
    }
  }

  #apply(entry: Entry): void {
    switch (entry.t) {
      case 'tag': this.#tags.set(entry.k, entry.v); break;
      case 'untag': this.#tags.delete(entry.k); break;
      case 'manifest': this.#manifests.set(entry.k, entry.v); break;
      case 'blob': this.#blobs.set(entry.k, entry.v); break;
      case 'unblob': this.#blobs.delete(entry.k); break;
    }
  }

  /** Rewrites the journal as a snapshot of the live entries when it has grown past twice their number. */
  async #compact(): Promise<void> {
    const live = this.#tags.size + this.#manifests.size + this.#blobs.size;
    if (this.#lines <= 2 * live + 1000) return;
    const lines: string[] = [];
    for (const [k, v] of this.#tags) lines.push(JSON.stringify({ t: 'tag', k, v }));
    for (const [k, v] of this.#manifests) lines.push(JSON.stringify({ t: 'manifest', k, v }));
    for (const [k, v] of this.#blobs) lines.push(JSON.stringify({ t: 'blob', k, v }));
    const temp = `${this.#journalPath}.compact`;
    await writeFile(temp, lines.length ? `${lines.join('\n')}\n` : '');
    await rename(temp, this.#journalPath);
    this.#lines = lines.length;
  }

  #append(...entries: Entry[]): Promise<void> {
    for (const entry of entries) this.#apply(entry);
    const text = entries.map((e) => `${JSON.stringify(e)}\n`).join('');
    this.#lines += entries.length;
    this.#writes = this.#writes.then(() => this.#journal?.appendFile(text)).catch(() => {});
    return this.#writes;
  }

  async getTag(key: TagKey): Promise<TagRecord | undefined> {
    return this.#tags.get(tagKey(key));
  }

  async setTag(key: TagKey, record: TagRecord): Promise<void> {
    await this.#append({ t: 'tag', k: tagKey(key), v: record });
  }

  async deleteTag(upstream: string, repo: string, tag: string): Promise<void> {
    const prefix = [upstream, repo, tag, ''].join(SEP);
    const gone = [...this.#tags.keys()].filter((k) => k.startsWith(prefix));
    if (gone.length) await this.#append(...gone.map((k): Entry => ({ t: 'untag', k })));
  }

  async listTags(upstream: string, repo: string): Promise<string[]> {
    const prefix = [upstream, repo, ''].join(SEP);
    const tags = new Set<string>();
    for (const k of this.#tags.keys()) if (k.startsWith(prefix)) tags.add(k.split(SEP)[2]!);
    return [...tags].sort();
  }

  async tagRecords(upstream: string, repo: string): Promise<(TagRecord & { tag: string; accept: string })[]> {
    const prefix = [upstream, repo, ''].join(SEP);
    return [...this.#tags]
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, record]) => {
        const [, , tag, accept] = k.split(SEP) as [string, string, string, string];
        return { ...record, tag, accept };
      })
      .sort((a, b) => a.tag.localeCompare(b.tag) || a.accept.localeCompare(b.accept));
  }

  async listRepos(): Promise<RepoRef[]> {
    const repos = new Map<string, RepoRef>();
    for (const k of this.#tags.keys()) {
      const [upstream, repo] = k.split(SEP) as [string, string];
      repos.set(`${upstream}${SEP}${repo}`, { upstream, repo });
    }
    return [...repos.values()].sort((a, b) => a.upstream.localeCompare(b.upstream) || a.repo.localeCompare(b.repo));
  }

  async getManifest(digest: string): Promise<ManifestRecord | undefined> {
    return this.#manifests.get(digest);
  }

  async setManifest(digest: string, record: ManifestRecord): Promise<void> {
    await this.#append({ t: 'manifest', k: digest, v: record });
  }

  async touchBlob(digest: string, size: number, at: number): Promise<void> {
    const known = this.#blobs.has(digest);
    this.#blobs.set(digest, { size, lastAccess: at });
    if (known) this.#dirtyBlobs.add(digest);
    else await this.#append({ t: 'blob', k: digest, v: { size, lastAccess: at } });
  }

  async getBlob(digest: string): Promise<BlobRecord | undefined> {
    return this.#blobs.get(digest);
  }

  async blobsByAge(limit: number): Promise<(BlobRecord & { digest: string })[]> {
    return [...this.#blobs]
      .map(([digest, r]) => ({ digest, ...r }))
      .sort((a, b) => a.lastAccess - b.lastAccess)
      .slice(0, limit);
  }

  async forgetBlob(digest: string): Promise<void> {
    this.#dirtyBlobs.delete(digest);
    if (this.#blobs.has(digest)) await this.#append({ t: 'unblob', k: digest });
  }

  async ping(): Promise<void> {}

  async #flushAccess(): Promise<void> {
    const entries: Entry[] = [];
    for (const digest of this.#dirtyBlobs) {
      const record = this.#blobs.get(digest);
      if (record) entries.push({ t: 'blob', k: digest, v: record });
    }
    this.#dirtyBlobs.clear();
    if (entries.length) await this.#append(...entries);
  }

  async close(): Promise<void> {
    clearInterval(this.#flushTimer);
    await this.#flushAccess();
    await this.#writes;
    await this.#journal?.close();
    this.#journal = undefined;
    clearInterval(this.#heartbeat);
    await rm(this.#lockPath, { force: true });
  }
}

function tagKey(key: TagKey): string {
  return [key.upstream, key.repo, key.tag, key.accept].join(SEP);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
