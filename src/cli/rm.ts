// `ocimirror rm <image>...`: drops cached tags from the running mirror and frees the blobs no other
// cached image uses (see src/cache/remove-tag.ts).
import { parseArgs } from 'node:util';
import type { RemovedTag } from '../cache/remove-tag.ts';
import { ImageRefError, parseImageRef } from '../oci/image-ref.ts';
import { AdminError, adminBase, adminRequest, imagePath } from './admin-client.ts';
import { formatBytes } from './format.ts';

export const RM_USAGE = `Usage: ocimirror rm <image>... [options]

Drops each cached tag (alpine:3.20, docker.io/library/alpine:3.20, ghcr.io/org/app:v1) and deletes the
manifests, configs and layers that no other cached image uses. The next pull of the tag goes upstream.

Options:
  -a, --admin URL   the mirror's admin API (default: $OCIMIRROR_ADMIN, else http://127.0.0.1:5001)
  -n, --dry-run     only report what would be freed
      --json        print the admin API's JSON answers`;

export async function rmCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      admin: { type: 'string', short: 'a' },
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
    return 1;
  }
  const base = adminBase(values.admin);
  const results: RemovedTag[] = [];
  let failed = 0;
  for (const text of positionals) {
    try {
      const ref = parseImageRef(text);
      const removed = await adminRequest<RemovedTag>(base, 'DELETE', imagePath(ref, { dryRun: values['dry-run'] ? '1' : undefined }));
      results.push(removed);
      if (!values.json) {
        const verb = removed.dryRun ? 'would free' : 'freed';
        console.log(`${removed.upstream}/${removed.repo}:${removed.tag}: ${verb} ${removed.freed.length} blobs, ${formatBytes(removed.freedBytes)}${removed.shared ? ` (${removed.shared} shared with other images kept)` : ''}`);
      }
    } catch (err) {
      if (!(err instanceof AdminError || err instanceof ImageRefError)) throw err;
      failed++;
      console.error(`ocimirror rm: ${text}: ${err.message}`);
    }
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));
  return failed ? 1 : 0;
}
