/** The configured blob storage cannot be used at start (bucket unreachable or missing, keys refused). */
export class StorageError extends Error {
  override readonly name = 'StorageError';
}
