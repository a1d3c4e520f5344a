import { writeLayer, type BuiltLayer, type LayerSpec } from './layer.ts';
import {
  ensureLayout,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_MANIFEST,
  tagInLayout,
  writeJsonBlob,
  type Descriptor,
  type Platform,
} from './oci-layout.ts';

export type { BuiltLayer, LayerSpec } from './layer.ts';
export type { Platform } from './oci-layout.ts';
export { manifestDigestOf, pushImage, skopeoCopy, skopeoInspect } from './skopeo.ts';
export type { SkopeoCopyOptions, SkopeoInspectInfo, SkopeoInspectOptions } from './skopeo.ts';

export interface BuildImageOptions {
  tag: string;
  layers: LayerSpec[];
  /** Defaults to linux/amd64. */
  platform?: Platform;
}

export interface BuiltImage {
  layoutDir: string;
  tag: string;
  /** `oci:<layoutDir>:<tag>`, a skopeo source reference. */
  ociRef: string;
  manifestDigest: string;
  manifestSize: number;
  configDigest: string;
  layers: BuiltLayer[];
}

export interface BuildIndexOptions {
  tag: string;
  platforms: Array<Platform & { layers: LayerSpec[] }>;
}

export interface BuiltIndex {
  layoutDir: string;
  tag: string;
  ociRef: string;
  indexDigest: string;
  manifests: Array<{ platform: Platform; manifestDigest: string; configDigest: string; layers: BuiltLayer[] }>;
}

/**
 * Builds a single-platform OCI image into the OCI layout `dir` (created if
 * needed; several tags may share one layout). Layers without a seed get one
 * derived from tag, platform and position, so rebuilding gives the same digests.
 */
export async function buildImage(dir: string, options: BuildImageOptions): Promise<BuiltImage> {
  await ensureLayout(dir);
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const manifest = await writeImage(dir, options.tag, platform, options.layers);
  await tagInLayout(dir, manifest.descriptor, options.tag);
  return {
    layoutDir: dir,
    tag: options.tag,
    ociRef: `oci:${dir}:${options.tag}`,
    manifestDigest: manifest.descriptor.digest,
    manifestSize: manifest.descriptor.size,
    configDigest: manifest.configDigest,
    layers: manifest.layers,
  };
}

/** Builds a multi-platform OCI image index (e.g. linux/amd64 + linux/arm64) into the layout `dir`. */
export async function buildIndex(dir: string, options: BuildIndexOptions): Promise<BuiltIndex> {
  await ensureLayout(dir);
  const built = [];
  for (const { layers, ...platform } of options.platforms) {
    built.push({ platform, ...(await writeImage(dir, options.tag, platform, layers)) });
  }
  const index = await writeJsonBlob(dir, OCI_INDEX, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: built.map(({ descriptor, platform }) => ({ ...descriptor, platform })),
  });
  await tagInLayout(dir, index, options.tag);
  return {
    layoutDir: dir,
    tag: options.tag,
    ociRef: `oci:${dir}:${options.tag}`,
    indexDigest: index.digest,
    manifests: built.map(({ platform, descriptor, configDigest, layers }) => ({
      platform,
      manifestDigest: descriptor.digest,
      configDigest,
      layers,
    })),
  };
}

async function writeImage(
  dir: string,
  tag: string,
  platform: Platform,
  specs: LayerSpec[],
): Promise<{ descriptor: Descriptor; configDigest: string; layers: BuiltLayer[] }> {
  const layers: BuiltLayer[] = [];
  for (const [i, spec] of specs.entries()) {
    const seed = spec.seed ?? `${tag}/${platformName(platform)}/${i}`;
    layers.push(await writeLayer(dir, spec, i, seed));
  }
  const config = await writeJsonBlob(dir, OCI_CONFIG, {
    created: '1970-01-01T00:00:00Z',
    ...platform,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map((_, i) => ({ created: '1970-01-01T00:00:00Z', created_by: `ocimirror test layer ${i}` })),
  });
  const descriptor = await writeJsonBlob(dir, OCI_MANIFEST, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
  });
  return { descriptor, configDigest: config.digest, layers };
}

function platformName(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}
