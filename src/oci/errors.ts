// The OCI error catalogue: one typed error class, every code with its HTTP status.
// distribution-spec "Error Codes"; UNKNOWN/UNAVAILABLE/TOOMANYREQUESTS/RANGE_INVALID as the reference registry uses them.

export const OCI_ERROR_STATUS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 404,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  /** A Range no byte of the blob satisfies, or an upload chunk that does not start where the upload ends. */
  RANGE_INVALID: 416,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  UNAVAILABLE: 503,
  UNKNOWN: 500,
} as const;

export type OciErrorCode = keyof typeof OCI_ERROR_STATUS;

export interface OciErrorOptions {
  /** Overrides the catalogue status (e.g. 502 for a broken upstream). */
  readonly status?: number;
  readonly detail?: unknown;
  /** Extra response headers, e.g. Retry-After on TOOMANYREQUESTS. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
}

export class OciError extends Error {
  override readonly name = 'OciError';
  readonly code: OciErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: OciErrorCode, message: string, options: OciErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? OCI_ERROR_STATUS[code];
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  toJSON(): { errors: { code: string; message: string; detail?: unknown }[] } {
    const entry: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}
