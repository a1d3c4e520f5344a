// PUT /v2/<name>/manifests/<tag|digest> into a hosted repository (distribution-spec "Pushing
// manifests"): the bytes are stored exactly as sent, under their digest; everything they reference must
// already be in the repository; then the tags move, each atomically.
import { digestOf, looksLikeDigest, parseDigest } from '../oci/digest.ts';
import { OciError } from '../oci/errors.ts';
import { MAX_MANIFEST_BYTES, summarizeManifest, type ManifestSummary } from '../oci/manifest.ts';
import { bareMediaType, isIndexType, isManifestType, isSchema1 } from '../oci/media-types.ts';
import { isTag } from '../oci/reference.ts';
import type { HostedManifest } from '../store/hosted-index.ts';
import type { HostedDeps } from './deps.ts';
import { pinAround } from './link.ts';


export interface ManifestPush {
  readonly key: string;
  /** The tag or digest of the request path. */
  readonly reference: string;
  /** More tags (`?tag=`, distribution-spec 1.1.1). */
  readonly tags: readonly string[];
  readonly contentType: string | undefined;
  readonly body: Uint8Array;
  /**
   * For overrides: makes a referenced blob the repository does not link yet available (fetched through
   * the mirror), returning whether it could. Hosted repositories have none: what is not pushed is missing.
   */
  readonly ensureBlob?: (digest: string) => Promise<boolean>;
  /** Who pushes (with client authentication on), for the audit line. */
  readonly actor?: string;
}

export interface PushedManifest {
  readonly digest: string;
  readonly subject?: string;
}

export async function putManifest(deps: HostedDeps, push: ManifestPush): Promise<PushedManifest> {
  const { key, body } = push;
  const tags = [...(isTag(push.reference) ? [push.reference] : []), ...push.tags];
  if (!looksLikeDigest(push.reference) && !isTag(push.reference)) throw new OciError('MANIFEST_INVALID', 'not a valid tag', { detail: { tag: push.reference.slice(0, 200) } });
  for (const tag of push.tags) if (!isTag(tag)) throw new OciError('MANIFEST_INVALID', 'not a valid tag', { detail: { tag: tag.slice(0, 200) } });
  const digest = digestFor(push.reference, body);

  const contentType = bareMediaType(push.contentType);
  if (isSchema1(contentType)) throw new OciError('MANIFEST_INVALID', 'Docker schema1 manifests are not supported; push schema2 or OCI');
  const { summary, doc } = parse(body);
  const mediaType = isManifestType(contentType) ? contentType : summary.mediaType && isManifestType(summary.mediaType) ? summary.mediaType : undefined;
  if (!mediaType) throw new OciError('MANIFEST_INVALID', `"${contentType || '(no Content-Type)'}" is not a manifest media type`, { detail: { contentType: contentType.slice(0, 200) } });
  if (summary.mediaType && summary.mediaType !== mediaType) {
    throw new OciError('MANIFEST_INVALID', `the manifest's mediaType "${summary.mediaType}" differs from its Content-Type "${mediaType}"`);
  }
  await checkReferences(deps, push, mediaType, summary);

  const subject = descriptorDigest(doc.subject);
  const record: HostedManifest = {
    mediaType,
    size: body.byteLength,
    references: [summary.config, ...summary.layers, ...summary.manifests].flatMap((d) => (d ? [d.digest] : [])),
    ...(subject ? { subject } : {}),
    ...(typeof doc.artifactType === 'string' ? { artifactType: doc.artifactType } : typeof (doc.config as { mediaType?: unknown } | undefined)?.mediaType === 'string' && subject ? { artifactType: (doc.config as { mediaType: string }).mediaType } : {}),
    ...(isStringMap(doc.annotations) ? { annotations: doc.annotations } : {}),
    pushedAt: deps.now(),
  };
  await pinAround(deps, digest, async () => (await deps.blobs.stat(digest)) ?? (await deps.blobs.put(digest, body)));
  await deps.index.putManifest(key, digest, record);
  for (const tag of tags) await deps.index.setTag(key, tag, digest);
  deps.logger.info({ repo: key, digest, tags, media_type: mediaType, size_bytes: body.byteLength, ...(push.actor ? { user: push.actor } : {}) }, 'manifest pushed');
  return { digest, ...(subject ? { subject } : {}) };
}

/** The body's digest; a PUT by digest must name exactly that. */
function digestFor(reference: string, body: Uint8Array): string {
  if (!looksLikeDigest(reference)) return digestOf(body);
  const wanted = parseDigest(reference);
  const actual = digestOf(body, wanted.algorithm);
  if (actual !== wanted.value) throw new OciError('DIGEST_INVALID', 'the manifest does not match the digest it was pushed by', { detail: { digest: wanted.value, actual } });
  return actual;
}

function parse(body: Uint8Array): { summary: ManifestSummary; doc: Record<string, unknown> } {
  try {
    const summary = summarizeManifest(body);
    return { summary, doc: JSON.parse(Buffer.from(body).toString('utf8')) as Record<string, unknown> };
  } catch (err) {
    // summarizeManifest speaks of upstream answers (502); a client's bad push is a 400.
    throw new OciError('MANIFEST_INVALID', err instanceof OciError ? err.message : 'manifest is not valid JSON');
  }
}

async function checkReferences(deps: HostedDeps, push: ManifestPush, mediaType: string, summary: ManifestSummary): Promise<void> {
  if (isIndexType(mediaType)) {
    for (const child of summary.manifests) {
      if (!(await deps.index.getManifest(push.key, child.digest))) {
        throw new OciError('MANIFEST_UNKNOWN', `the index names manifest ${child.digest}, which is not in this repository: push it first`, { detail: { digest: child.digest } });
      }
    }
    return;
  }
  if (!summary.config) throw new OciError('MANIFEST_INVALID', 'an image manifest needs a config descriptor');
  for (const blob of [summary.config, ...summary.layers]) {
    if (await deps.index.hasBlob(push.key, blob.digest)) continue;
    if (push.ensureBlob && (await push.ensureBlob(blob.digest))) continue;
    throw new OciError('MANIFEST_BLOB_UNKNOWN', `the manifest names blob ${blob.digest}, which is not in this repository: push it first`, { detail: { digest: blob.digest } });
  }
}

function descriptorDigest(value: unknown): string | undefined {
  const digest = (value as { digest?: unknown } | undefined)?.digest;
  if (typeof digest !== 'string') return undefined;
  try {
    return parseDigest(digest).value;
  } catch {
    throw new OciError('MANIFEST_INVALID', 'the subject descriptor has an invalid digest');
  }
}

function isStringMap(value: unknown): value is Record<string, string> {
  return !!value && typeof value === 'object' && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}
