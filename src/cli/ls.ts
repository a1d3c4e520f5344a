// `ocimirror ls [repository]`: what the running mirror has cached, from its admin API.
import { parseArgs } from 'node:util';
import type { RepositoryDetail, RepositorySummary } from '../cache/inventory.ts';
import { parseImageRef } from '../oci/image-ref.ts';
import { adminBase, adminRequest, repositoryPath, reportFailures } from './admin-client.ts';
import { formatBytes, formatTime, manifestKind, shortDigest, table } from './format.ts';

export const LS_USAGE = `Usage: ocimirror ls [repository[:tag]] [options]

Without a repository: the cached and hosted repositories with their tag counts, and the bytes the
cache and the hosted repositories hold (hosted content is never evicted). With one (alpine, library/alpine,
docker.io/library/alpine, ghcr.io/org/app): its cached tags with digest, type, size on disk, when the
upstream last confirmed the tag, and when a client last pulled one of its blobs.

Options:
  -a, --admin URL   the mirror's admin API (default: see --config, else $OCIMIRROR_ADMIN, else
                    $OCIMIRROR_CONFIG's admin.listen, else http://127.0.0.1:5001)
  -c, --config FILE the mirror's config file: the admin API is at its admin.listen
      --json        print the admin API's JSON answer
      --digests     print full digests`;

export async function lsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      admin: { type: 'string', short: 'a' },
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      digests: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(LS_USAGE);
    return 0;
  }
  if (positionals.length > 1) {
    console.error(`ocimirror ls: give at most one repository\n\n${LS_USAGE}`);
    return 2;
  }
  return reportFailures('ls', async () => {
    const base = adminBase(values.admin, values.config);
    if (positionals.length === 0) {
      const answer = await adminRequest<{ repositories: RepositorySummary[]; usage?: { cacheBytes: number; hostedBytes: number } }>(base, 'GET', '/_ocimirror/repositories');
      if (values.json) {
        console.log(JSON.stringify(answer, null, 2));
        return 0;
      }
      const upstreamColumn = (r: RepositorySummary) => (r.kind === 'override' ? `${r.upstream} (override)` : r.upstream);
      console.log(table(['REPOSITORY', 'UPSTREAM', 'TAGS'], answer.repositories.map((r) => [r.name, upstreamColumn(r), String(r.tags)])));
      if (answer.usage) console.log(`\ncache: ${formatBytes(answer.usage.cacheBytes)}   hosted: ${formatBytes(answer.usage.hostedBytes)} (never evicted)`);
      return 0;
    }
    const ref = parseImageRef(positionals[0]!);
    const detail = await adminRequest<RepositoryDetail>(base, 'GET', repositoryPath(ref));
    const tags = ref.tag === undefined ? detail.tags : detail.tags.filter((t) => t.tag === ref.tag);
    if (values.json) {
      console.log(JSON.stringify({ ...detail, tags }, null, 2));
      return 0;
    }
    const digest = (d: string) => (values.digests ? d : shortDigest(d));
    const rows = tags.flatMap((t) =>
      t.manifests.map((m, i) => [
        i === 0 ? t.tag : '',
        digest(m.digest),
        manifestKind(m.mediaType),
        i === 0 ? formatBytes(t.sizeBytes) + (t.missingBlobs ? ` (+${t.missingBlobs} not cached)` : '') : '',
        formatTime(m.fetchedAt),
        i === 0 ? formatTime(t.lastAccess) : '',
      ]),
    );
    console.log(`${detail.name} (upstream ${detail.upstream}, repository ${detail.repo})`);
    console.log(table(['TAG', 'DIGEST', 'TYPE', 'SIZE', 'FETCHED', 'LAST PULLED'], rows));
    return 0;
  });
}
