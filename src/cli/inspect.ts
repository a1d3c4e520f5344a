// `ocimirror inspect <image>`: a cached image's manifest and config, like `skopeo inspect`, from the
// running mirror's cache (never from the upstream).
import { parseArgs } from 'node:util';
import type { ImageInspection, InspectedBlob, Platform } from '../cache/inspect.ts';
import { isIndexType } from '../oci/media-types.ts';
import { parseImageRef } from '../oci/image-ref.ts';
import { adminBase, adminRequest, imagePath, reportFailures } from './admin-client.ts';
import { formatBytes, formatTime, manifestKind, table } from './format.ts';

export const INSPECT_USAGE = `Usage: ocimirror inspect <image> [options]

Shows a cached image: alpine:3.20, docker.io/library/alpine:3.20, ghcr.io/org/app@sha256:...
For an image manifest: platform, creation time, config and layers; for an index: its platforms.

Options:
  -a, --admin URL          the mirror's admin API (default: see --config, else $OCIMIRROR_ADMIN, else
                           $OCIMIRROR_CONFIG's admin.listen, else http://127.0.0.1:5001)
  -c, --config FILE        the mirror's config file: the admin API is at its admin.listen
  -p, --platform OS/ARCH   of an index, show this platform's manifest (e.g. linux/arm64)
      --json               everything, as JSON (manifest and config documents included)
      --image-config       only the image config document (JSON)`;

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      admin: { type: 'string', short: 'a' },
      config: { type: 'string', short: 'c' },
      platform: { type: 'string', short: 'p' },
      json: { type: 'boolean' },
      'image-config': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(INSPECT_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    // --config used to print the image config; it now names the mirror's config file, as for serve.
    const hint = values.config !== undefined && positionals.length === 0 ? ` (--config names the mirror's config file; the image's config document is --image-config)` : '';
    console.error(`ocimirror inspect: give one image${hint}\n\n${INSPECT_USAGE}`);
    return 2;
  }
  return reportFailures('inspect', async () => {
    const ref = parseImageRef(positionals[0]!);
    const image = await adminRequest<ImageInspection>(adminBase(values.admin, values.config), 'GET', imagePath(ref, { platform: values.platform }));
    if (values['image-config']) {
      if (image.config === undefined) {
        console.error(`ocimirror inspect: ${isIndexType(image.mediaType) ? 'an index has no config; pick a platform with --platform' : 'the config is not cached'}`);
        return 1;
      }
      console.log(JSON.stringify(image.config, null, 2));
    } else if (values.json) {
      console.log(JSON.stringify(image, null, 2));
    } else {
      console.log(describe(image));
    }
    return 0;
  });
}

function describe(image: ImageInspection): string {
  const lines: [string, string][] = [
    ['Name', `${image.name} (upstream ${image.upstream}, repository ${image.repo})`],
    ...(image.tag !== undefined ? [['Tag', image.tag] as [string, string]] : []),
    ['Digest', image.digest],
    ['MediaType', image.mediaType],
  ];
  if (image.platform) lines.push(['Platform', platformName(image.platform)]);
  if (image.created) lines.push(['Created', image.created]);
  const c = image.config as { config?: { Entrypoint?: unknown; Cmd?: unknown; Env?: unknown; Labels?: unknown } } | undefined;
  if (Array.isArray(c?.config?.Entrypoint)) lines.push(['Entrypoint', JSON.stringify(c.config.Entrypoint)]);
  if (Array.isArray(c?.config?.Cmd)) lines.push(['Cmd', JSON.stringify(c.config.Cmd)]);
  if (Array.isArray(c?.config?.Env)) lines.push(['Env', (c.config.Env as string[]).join('\n              ')]);
  if (c?.config?.Labels && typeof c.config.Labels === 'object') {
    lines.push(['Labels', Object.entries(c.config.Labels).map(([k, v]) => `${k}=${String(v)}`).join('\n              ') || '-']);
  }
  if (image.configDescriptor) {
    lines.push(['Config', `${image.configDescriptor.digest} (${formatBytes(image.configDescriptor.size)}${image.configDescriptor.held ? '' : ', not cached'})`]);
  }
  const out = lines.map(([k, v]) => `${`${k}:`.padEnd(14)}${v}`);
  if (image.layers) {
    const total = image.layers.reduce((sum, l) => sum + l.size, 0);
    const cached = image.layers.filter((l) => l.held).length;
    out.push(`${'Layers:'.padEnd(14)}${image.layers.length}, ${formatBytes(total)} (${cached === image.layers.length ? 'all' : cached} cached)`);
    out.push(indent(table(['DIGEST', 'SIZE', 'CACHED'], image.layers.map((l) => [l.digest, formatBytes(l.size), held(l)]))));
  }
  if (image.platforms) {
    out.push('Platforms:');
    out.push(indent(table(['PLATFORM', 'DIGEST', 'TYPE', 'CACHED'], image.platforms.map((p) => [p.platform ? platformName(p.platform) : '-', p.digest, manifestKind(p.mediaType), held(p)]))));
  }
  if (image.answers && image.answers.length > 1) {
    out.push('Cached answers of the tag (by client Accept header):');
    out.push(indent(table(['DIGEST', 'TYPE', 'FETCHED'], image.answers.map((a) => [a.digest, manifestKind(a.mediaType), formatTime(a.fetchedAt)]))));
  }
  return out.join('\n');
}

function platformName(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/') || '-';
}

function held(blob: InspectedBlob): string {
  return blob.held ? 'yes' : 'no';
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
