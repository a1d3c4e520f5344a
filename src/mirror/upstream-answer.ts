// Turns an upstream's unhappy answer into the OCI error our client should see.
import { OCI_ERROR_STATUS, OciError, type OciErrorCode } from '../oci/errors.ts';
import type { UpstreamResponse } from '../upstream/registry-client.ts';
import { discard, readLimited } from '../upstream/body.ts';

const MAX_ERROR_BODY = 16 * 1024;

/** Reads a small error body (if any) and builds the error; `notFound` is the code for a 404. */
export async function upstreamError(res: UpstreamResponse, upstream: string, notFound: OciErrorCode): Promise<OciError> {
  const detail = await readErrorCode(res);
  if (res.status === 404) return new OciError(notFound, `not found upstream (${upstream})`, { detail: { upstream } });
  if (res.status === 429) {
    const retryAfter = res.headers['retry-after'];
    return new OciError('TOOMANYREQUESTS', `upstream ${upstream} is rate limiting`, {
      detail: { upstream },
      ...(typeof retryAfter === 'string' ? { headers: { 'retry-after': retryAfter } } : {}),
    });
  }
  if (res.status === 508) {
    // Answered 508 in turn (not 502, which the mirror before us would retry): each mirror of a loop
    // answers at once, and the client learns what happened.
    return new OciError(
      'UNAVAILABLE',
      `upstream ${upstream} leads back to this mirror (a proxy loop, directly or through other mirrors): check the upstreams' url/address and the /etc/hosts of the mirror hosts`,
      { status: 508, detail: { upstream } },
    );
  }
  if (res.status === 401 || res.status === 403) {
    return new OciError('DENIED', `upstream ${upstream} denied access: the repository may not exist or needs credentials in the mirror's config`, { detail: { upstream, status: res.status } });
  }
  if (res.status >= 400 && res.status < 500 && detail && detail in OCI_ERROR_STATUS) {
    return new OciError(detail as OciErrorCode, `upstream ${upstream} answered ${detail}`, { status: res.status, detail: { upstream } });
  }
  return new OciError('UNAVAILABLE', `upstream ${upstream} answered ${res.status}`, { status: 502, detail: { upstream, status: res.status } });
}

async function readErrorCode(res: UpstreamResponse): Promise<string | undefined> {
  const length = Number(res.headers['content-length'] ?? 0);
  if (!(length > 0 && length <= MAX_ERROR_BODY) || !/json/.test(String(res.headers['content-type']))) {
    discard(res.body);
    return undefined;
  }
  try {
    const body = await readLimited(res.body, MAX_ERROR_BODY, () => new Error('error body too large'));
    const doc = JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown }[] };
    const code = doc.errors?.[0]?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}
