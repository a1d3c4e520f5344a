// The one place where errors become HTTP answers: OCI error JSON with the catalogue's status.
import type { Context } from 'hono';
import { DigestMismatchError } from '../store/blob-store.ts';
import { TokenAuthError } from '../upstream/token-auth.ts';
import { UpstreamUnavailableError } from '../upstream/errors.ts';
import { OciError } from '../oci/errors.ts';

/** Anything thrown while answering, as the OCI error a client should see. */
export function toOciError(err: unknown): OciError {
  if (err instanceof OciError) return err;
  if (err instanceof UpstreamUnavailableError) {
    return new OciError('UNAVAILABLE', err.message, { status: err.reason === 'timeout' ? 504 : 502, detail: { upstream: err.upstream, reason: err.reason } });
  }
  if (err instanceof TokenAuthError) {
    return err.status === 401 || err.status === 403
      ? new OciError('DENIED', `upstream token server refused the mirror's credentials (${err.status})`)
      : new OciError('UNAVAILABLE', err.message, { status: err.status === 508 ? 508 : 502 });
  }
  if (err instanceof DigestMismatchError) return new OciError('UNAVAILABLE', 'upstream sent content that does not match its digest', { status: 502 });
  return new OciError('UNKNOWN', 'internal error');
}

export function errorResponse(c: Context, err: unknown): Response {
  const oci = toOciError(err);
  c.set('error', err);
  const body = JSON.stringify(oci.toJSON());
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', ...oci.headers };
  // HEAD answers carry no body, but keep the status and headers.
  return c.req.method === 'HEAD' ? c.body(null, oci.status as 400, headers) : c.body(body, oci.status as 400, headers);
}
