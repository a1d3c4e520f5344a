// `ocimirror rm <image>...`: drops cached tags, manifests pulled by digest, or whole repositories from
// the running mirror, and frees the blobs no other cached image uses (see src/cache/remove-tag.ts and
// remove-cached.ts). A name alone is refused: removing is never a guess at `latest`.
import { parseArgs } from 'node:util';
import type { RemovedCached } from '../cache/remove-cached.ts';
import type { RemovedTag } from '../cache/remove-tag.ts';
import { ConfigError } from '../config/load.ts';
import { ImageRefError, parseImageRef, type ImageRef } from '../oci/image-ref.ts';
import { AdminError, adminBase, adminRequest, imagePath, repositoryPath } from './admin-client.ts';
import { formatBytes } from './format.ts';

export const RM_USAGE = `Usage: ocimirror rm <image>... [options]
       ocimirror rm --repository <repository>... [options]

Drops each cached tag (alpine:3.20, docker.io/library/alpine:3.20, ghcr.io/org/app:v1) or manifest
pulled by digest (ghcr.io/org/app@sha256:...), and deletes the manifests, configs and layers that no
other cached image uses. The next pull goes upstream. A name without tag or digest is refused; with
--repository each name is a repository, all of whose cached tags are dropped.

Options:
  -r, --repository  remove whole repositories (every cached tag)
  -a, --admin URL   the mirror's admin API (default: see --config, else $OCIMIRROR_ADMIN, else
                    $OCIMIRROR_CONFIG's admin.listen, else http://127.0.0.1:5001)
  -c, --config FILE the mirror's config file: the admin API is at its admin.listen
  -n, --dry-run     only report what would be freed
      --json        print the admin API's JSON answers`;

type Removed = RemovedTag | RemovedCached;

export async function rmCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      repository: { type: 'boolean', short: 'r' },
      admin: { type: 'string', short: 'a' },
      config: { type: 'string', short: 'c' },
      'dry-run': { type: 'boolean', short: 'n' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(RM_USAGE);
    return 0;
  }
  if (positionals.length === 0) {
    console.error(`ocimirror rm: give at least one image\n\n${RM_USAGE}`);
    return 2;
  }
  // Every argument is checked before anything is removed.
  const targets: { text: string; ref: ImageRef }[] = [];
  for (const text of positionals) {
    let ref: ImageRef;
    try {
      ref = parseImageRef(text);
    } catch (err) {
      if (!(err instanceof ImageRefError)) throw err;
      console.error(`ocimirror rm: ${err.message}`);
      return 2;
    }
    const named = ref.tag !== undefined || ref.digest !== undefined;
    if (values.repository && named) {
      console.error(`ocimirror rm: ${text}: --repository takes repository names, without tag or digest`);
      return 2;
    }
    if (!values.repository && !named) {
      console.error(`ocimirror rm: ${text}: name a tag (${text}:latest) or a digest (${text}@sha256:...); to drop every cached tag of the repository: ocimirror rm --repository ${text}`);
      return 2;
    }
    targets.push({ text, ref });
  }
  let base: string;
  try {
    base = adminBase(values.admin, values.config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`ocimirror rm: ${err.message}`);
    return 2;
  }
  const dryRun = values['dry-run'] ? '1' : undefined;
  const results: Removed[] = [];
  let failed = 0;
  for (const { text, ref } of targets) {
    try {
      const path = values.repository ? repositoryPath(ref, { dryRun }) : imagePath(ref, { dryRun });
      const removed = await adminRequest<Removed>(base, 'DELETE', path);
      results.push(removed);
      if (!values.json) console.log(describe(removed));
    } catch (err) {
      if (!(err instanceof AdminError)) throw err;
      failed++;
      console.error(`ocimirror rm: ${text}: ${err.message}`);
    }
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));
  return failed ? 1 : 0;
}

function describe(removed: Removed): string {
  const what =
    'tag' in removed
      ? `${removed.upstream}/${removed.repo}:${removed.tag}`
      : removed.tags.length
        ? `${removed.upstream}/${removed.repo} (${removed.tags.length === 1 ? 'tag' : 'tags'} ${removed.tags.join(', ')})`
        : `${removed.upstream}/${removed.repo}@${removed.digests[0] ?? ''}`;
  const verb = removed.dryRun ? 'would free' : 'freed';
  return `${what}: ${verb} ${removed.freed.length} blobs, ${formatBytes(removed.freedBytes)}${removed.shared ? ` (${removed.shared} shared with other images kept)` : ''}`;
}
