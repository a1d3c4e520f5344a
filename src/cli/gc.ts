// `ocimirror gc`: garbage collection in the running mirror (online: pulls and pushes go on), through
// its admin API; prints what was freed.
import { parseArgs } from 'node:util';
import type { GcReport } from '../gc/collect.ts';
import { AdminError, adminBase, adminRequest } from './admin-client.ts';
import { formatBytes } from './format.ts';

export const GC_USAGE = `Usage: ocimirror gc [options]

Frees the blobs and manifests that nothing references any more: no hosted tag, no hosted manifest that
is itself kept, no cached tag. Content written in the last gc.grace (default 1h) is kept, so pushes in
progress are safe. Runs inside the mirror while it serves; one run at a time across replicas.

Options:
  -a, --admin URL        the mirror's admin API (default: --config's admin.listen, $OCIMIRROR_ADMIN,
                         $OCIMIRROR_CONFIG's, else http://127.0.0.1:5001)
  -c, --config FILE      the mirror's config file, to find its admin API
  -n, --dry-run          only report what would be freed
      --delete-untagged  also free hosted manifests no tag reaches (as distribution's garbage-collect)
      --json             print the admin API's JSON answer`;

export async function gcCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      admin: { type: 'string', short: 'a' },
      config: { type: 'string', short: 'c' },
      'dry-run': { type: 'boolean', short: 'n' },
      'delete-untagged': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(GC_USAGE);
    return 0;
  }
  if (positionals.length > 0) {
    console.error(`ocimirror gc: takes no arguments\n\n${GC_USAGE}`);
    return 2;
  }
  const query = new URLSearchParams();
  if (values['dry-run']) query.set('dryRun', '1');
  if (values['delete-untagged']) query.set('deleteUntagged', '1');
  try {
    const report = await adminRequest<GcReport>(adminBase(values.admin, values.config), 'POST', `/_ocimirror/gc${query.size ? `?${query}` : ''}`);
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else {
      const verb = report.dryRun ? 'would free' : 'freed';
      console.log(
        `gc: ${verb} ${report.freedObjects} blobs and manifests, ${formatBytes(report.freedBytes)}; ${report.manifestsRemoved} hosted manifests and ${report.linksRemoved} blob links ${report.dryRun ? 'would be ' : ''}removed; ${report.keptObjects} kept (${report.durationMs} ms)`,
      );
    }
    return 0;
  } catch (err) {
    if (!(err instanceof AdminError)) throw err;
    console.error(`ocimirror gc: ${err.message}`);
    return 1;
  }
}
