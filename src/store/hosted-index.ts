// What the hosted repositories hold: tags, manifests and which blobs each repository may serve.
// Hosted content is data, not cache: this index lives in the data dir (never only in Redis), so a
// backup of the data dir is a backup of every pushed image. The bytes themselves are in the BlobStore.

/** A manifest pushed to a repository, as the index records it. */
export interface HostedManifest {
  readonly mediaType: string;
  readonly size: number;
  /** Config and layers of an image manifest, or the child manifests of an index. */
  readonly references: readonly string[];
  /** The `subject` digest, for the referrers API. */
  readonly subject?: string;
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  /** When it was pushed (ms since epoch). */
  readonly pushedAt: number;
}

export interface HostedIndex {
  /** The digest a tag points at. */
  getTag(repo: string, tag: string): Promise<string | undefined>;
  /** Points the tag at a manifest; atomic: a reader sees the old or the new digest, never a torn record. */
  setTag(repo: string, tag: string, digest: string): Promise<void>;
  /** Returns whether the tag existed. */
  deleteTag(repo: string, tag: string): Promise<boolean>;
  /** The repository's tags, sorted. */
  listTags(repo: string): Promise<string[]>;

  getManifest(repo: string, digest: string): Promise<HostedManifest | undefined>;
  putManifest(repo: string, digest: string, manifest: HostedManifest): Promise<void>;
  /** Removes the manifest and every tag pointing at it; returns whether it existed. */
  deleteManifest(repo: string, digest: string): Promise<boolean>;

  /** Lets the repository serve a blob (pushed or mounted there). */
  linkBlob(repo: string, digest: string, size: number): Promise<void>;
  hasBlob(repo: string, digest: string): Promise<boolean>;
  /** Returns whether the link existed. */
  unlinkBlob(repo: string, digest: string): Promise<boolean>;

  /**
   * Marks content as hosted before it is linked (and before its bytes are committed), so eviction spares
   * it; every call renews the mark, so garbage collection leaves it alone for its grace time.
   */
  pin(digest: string): Promise<void>;
  /**
   * Removes the mark unless it was renewed within `graceMs` or `keep()` says the content is still held;
   * resolves with whether it did (garbage collection).
   */
  unpin(digest: string, graceMs: number, keep: () => Promise<boolean>): Promise<boolean>;
  /** Every pinned digest, with when it was last pinned (ms since epoch). */
  listPins(): AsyncIterable<{ digest: string; pinnedAt: number }>;
  /**
   * Whether any repository has ever linked this digest as a blob or manifest. Such content is never
   * evicted, and the mirror does not hand it out by digest alone; only garbage collection unpins it.
   */
  isPinned(digest: string): Promise<boolean>;

  /** Every repository holding at least one tag or manifest (`withLinksOnly`: or only blob links), sorted. */
  listRepos(options?: { withLinksOnly?: boolean }): Promise<string[]>;

  /** The repository's manifests, tagged or not. */
  listManifests(repo: string): Promise<string[]>;
  /** The repository's blob links and when each was made (ms since epoch). */
  listBlobLinks(repo: string): Promise<{ digest: string; linkedAt: number }[]>;
  /** Manifests of the repository whose `subject` is `digest` (the referrers API), sorted. */
  referrers(repo: string, subject: string): Promise<string[]>;
}

/**
 * Index keys. A hosted repository is its own name ("lab/app"); an override of an upstream's repository
 * lives under "_override/<upstream>/<repo>", which no valid repository name can collide with (name
 * components never start with "_").
 */
export const OVERRIDE_PREFIX = '_override/';

export function overrideKey(upstream: string, repo: string): string {
  return `${OVERRIDE_PREFIX}${upstream}/${repo}`;
}

/** The upstream and repository of an override key, or undefined for a hosted repository's key. */
export function parseOverrideKey(key: string): { upstream: string; repo: string } | undefined {
  if (!key.startsWith(OVERRIDE_PREFIX)) return undefined;
  const rest = key.slice(OVERRIDE_PREFIX.length);
  const slash = rest.indexOf('/');
  return slash > 0 ? { upstream: rest.slice(0, slash), repo: rest.slice(slash + 1) } : undefined;
}
