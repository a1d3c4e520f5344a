// `ocimirror inspect`: a cached image as `skopeo inspect` shows it, from the cache alone: the manifest,
// and for an image manifest its config; for an index its platforms (and whether each is cached).
import { OciError } from '../oci/errors.ts';
import { looksLikeDigest } from '../oci/digest.ts';
import { summarizeManifest, type Descriptor } from '../oci/manifest.ts';
import { isIndexType } from '../oci/media-types.ts';
import type { ProxyDeps } from '../mirror/deps.ts';
import { mirrorName, type TagManifest } from './inventory.ts';
import { manifestNode } from './manifest-tree.ts';

/** What inspecting a cached image reads. */
export type InspectDeps = Pick<ProxyDeps, 'blobs' | 'meta' | 'manifests' | 'table'>;

/** Configs are small JSON documents; a bigger one is listed but not parsed into the answer. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export interface Platform {
  readonly os?: string;
  readonly architecture?: string;
  readonly variant?: string;
}

export interface InspectedBlob {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly held: boolean;
  readonly platform?: Platform;
}

export interface ImageInspection {
  readonly upstream: string;
  readonly repo: string;
  readonly name: string;
  /** The tag asked for, if any. */
  readonly tag?: string;
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  /** The manifest document as cached. */
  readonly manifest: unknown;
  /** Every cached answer of the tag (clients with different Accept headers may get different manifests). */
  readonly answers?: readonly TagManifest[];
  /** Index: its platform manifests. */
  readonly platforms?: readonly InspectedBlob[];
  /** Image manifest: platform, creation time and config document (when held), layers. */
  readonly platform?: Platform;
  readonly created?: string;
  readonly config?: unknown;
  readonly configDescriptor?: InspectedBlob;
  readonly layers?: readonly InspectedBlob[];
}

export async function inspectImage(
  deps: InspectDeps,
  target: { upstream: string; repo: string; reference: string },
  options: { platform?: string } = {},
): Promise<ImageInspection> {
  const { upstream, repo, reference } = target;
  let digest = reference;
  let tag: string | undefined;
  let answers: TagManifest[] | undefined;
  if (!looksLikeDigest(reference)) {
    tag = reference;
    const records = (await deps.meta.tagRecords(upstream, repo)).filter((r) => r.tag === tag);
    if (records.length === 0) throw new OciError('MANIFEST_UNKNOWN', 'tag is not cached', { detail: { upstream, repo, tag } });
    answers = [...new Map(records.map((r) => [r.digest, { digest: r.digest, mediaType: r.mediaType, size: r.size, fetchedAt: r.fetchedAt }])).values()];
    // The index when some client got one: it describes the most; else the most recently confirmed answer.
    digest = (answers.find((a) => isIndexType(a.mediaType)) ?? [...answers].sort((a, b) => b.fetchedAt - a.fetchedAt)[0]!).digest;
  }
  let loaded = await loadManifest(deps, digest);
  if (options.platform && isIndexType(loaded.mediaType)) {
    const wanted = parsePlatform(options.platform);
    const child = loaded.summary.manifests.find((d) => matches(d.platform, wanted));
    if (!child) throw new OciError('MANIFEST_UNKNOWN', `the index has no ${options.platform} manifest`, { detail: { digest, platform: options.platform } });
    loaded = await loadManifest(deps, child.digest);
  }
  const base = {
    upstream,
    repo,
    name: mirrorName(deps.table, upstream, repo),
    ...(tag !== undefined ? { tag } : {}),
    digest: loaded.digest,
    mediaType: loaded.mediaType,
    size: loaded.body.byteLength,
    manifest: JSON.parse(Buffer.from(loaded.body).toString('utf8')) as unknown,
    ...(answers ? { answers } : {}),
  };
  if (isIndexType(loaded.mediaType)) {
    return { ...base, platforms: await Promise.all(loaded.summary.manifests.map((d) => describe(deps, d))) };
  }
  const layers = await Promise.all(loaded.summary.layers.map((d) => describe(deps, d)));
  const configDescriptor = loaded.summary.config ? await describe(deps, loaded.summary.config) : undefined;
  const config = configDescriptor?.held && configDescriptor.size <= MAX_CONFIG_BYTES ? await readJson(deps, configDescriptor.digest) : undefined;
  const c = (config ?? {}) as { os?: unknown; architecture?: unknown; variant?: unknown; created?: unknown };
  const platform: Platform = {
    ...(typeof c.os === 'string' ? { os: c.os } : {}),
    ...(typeof c.architecture === 'string' ? { architecture: c.architecture } : {}),
    ...(typeof c.variant === 'string' ? { variant: c.variant } : {}),
  };
  return {
    ...base,
    ...(Object.keys(platform).length ? { platform } : {}),
    ...(typeof c.created === 'string' ? { created: c.created } : {}),
    ...(config !== undefined ? { config } : {}),
    ...(configDescriptor ? { configDescriptor } : {}),
    layers,
  };
}

async function loadManifest(deps: InspectDeps, digest: string) {
  const node = await manifestNode(deps, digest);
  const body = node ? await deps.blobs.read(digest) : undefined;
  if (!node || !body) throw new OciError('MANIFEST_UNKNOWN', 'manifest is not cached', { detail: { digest } });
  return { digest, mediaType: node.mediaType, body, summary: summarizeManifest(body) };
}

async function describe(deps: InspectDeps, d: Descriptor): Promise<InspectedBlob> {
  const held = (await deps.blobs.stat(d.digest)) !== undefined;
  return { digest: d.digest, mediaType: d.mediaType, size: d.size, held, ...(d.platform ? { platform: d.platform } : {}) };
}

async function readJson(deps: InspectDeps, digest: string): Promise<unknown> {
  const bytes = await deps.blobs.read(digest);
  if (!bytes) return undefined;
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** "linux/arm64", "linux/arm/v7". */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant] = text.split('/');
  if (!os || !architecture || text.split('/').length > 3) {
    throw new OciError('UNSUPPORTED', 'platform must be os/architecture[/variant], e.g. linux/arm64', { status: 400, detail: { platform: text.slice(0, 100) } });
  }
  return { os, architecture, ...(variant ? { variant } : {}) };
}

function matches(have: Platform | undefined, want: Platform): boolean {
  return have?.os === want.os && have?.architecture === want.architecture && (want.variant === undefined || have?.variant === want.variant);
}
