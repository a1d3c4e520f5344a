/**
 * Stored blobs that clients may fetch from the storage itself (storage.s3.redirect): a short-lived URL
 * at the bucket that serves one blob, so its bytes bypass the mirror.
 */
export interface BlobRedirects {
  /** A URL the client can GET (with Range) the stored blob `digest` from, valid for a short while. */
  urlFor(digest: string): Promise<string>;
}
