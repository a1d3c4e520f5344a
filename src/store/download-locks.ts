// Who downloads a blob when several mirror processes share one data dir: the holder of the digest's
// lease. The others follow its upload through the shared store. A single process needs no lease.

export interface InflightUpload {
  /** The BlobUpload.id to follow. */
  readonly id: string;
  /** Total size, when the upstream said. */
  readonly size?: number;
}

export interface DownloadLease {
  /** Tells the other processes where the bytes are going. */
  publish(upload: InflightUpload): Promise<void>;
  release(): Promise<void>;
}

export interface DownloadLocks {
  /** The lease for this digest, or undefined when another process holds it. */
  acquire(digest: string): Promise<DownloadLease | undefined>;
  /** The upload the lease holder published, if any. */
  inflight(digest: string): Promise<InflightUpload | undefined>;
  /** Whether any process holds the digest's lease. */
  held(digest: string): Promise<boolean>;
}

/** One process: every acquire succeeds (in-process coalescing is done by SingleFlight). */
export class LocalDownloadLocks implements DownloadLocks {
  async acquire(): Promise<DownloadLease> {
    return { publish: async () => {}, release: async () => {} };
  }
  async inflight(): Promise<undefined> {
    return undefined;
  }
  async held(): Promise<boolean> {
    return false;
  }
}
