// What the mirror knows about tags and manifests: shared by all replicas when it lives in Redis.
// It never says whether this replica holds a blob's bytes; the BlobStore does.

export interface TagKey {
  readonly upstream: string;
  readonly repo: string;
  readonly tag: string;
  /** The client's Accept class (see parseAccept): a tag's answer depends on it. */
  readonly accept: string;
}

export interface TagRecord {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  /** When the upstream last confirmed this digest (ms since epoch). */
  readonly fetchedAt: number;
}

export interface ManifestRecord {
  readonly mediaType: string;
  readonly size: number;
  /** Digests this manifest references: config and layers, or child manifests of an index. */
  readonly references: readonly string[];
}

export interface BlobRecord {
  readonly size: number;
  /** Last time a client was served this blob (ms since epoch). */
  readonly lastAccess: number;
}

export interface RepoRef {
  readonly upstream: string;
  readonly repo: string;
}

export interface MetadataStore {
  getTag(key: TagKey): Promise<TagRecord | undefined>;
  setTag(key: TagKey, record: TagRecord): Promise<void>;
  /** Removes the tag for every Accept class. */
  deleteTag(upstream: string, repo: string, tag: string): Promise<void>;
  /** Tags with at least one cached answer, sorted. */
  listTags(upstream: string, repo: string): Promise<string[]>;
  /** Every cached answer for the repository's tags (one per tag and Accept class), sorted by tag. */
  tagRecords(upstream: string, repo: string): Promise<(TagRecord & { tag: string; accept: string })[]>;
  /** Repositories with at least one cached tag, sorted by upstream then repo. */
  listRepos(): Promise<RepoRef[]>;

  getManifest(digest: string): Promise<ManifestRecord | undefined>;
  setManifest(digest: string, record: ManifestRecord): Promise<void>;

  /** Records that a blob of this size was served or stored now. */
  touchBlob(digest: string, size: number, at: number): Promise<void>;
  getBlob(digest: string): Promise<BlobRecord | undefined>;
  /** Least recently used first. */
  blobsByAge(limit: number): Promise<(BlobRecord & { digest: string })[]>;
  forgetBlob(digest: string): Promise<void>;

  /** Reachability check for readiness probes. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
