// The web UI's repository listing with many cached repositories: the server time of a page (the app
// answering in this process, no network), for the first page, a page in the middle and a search. The
// repositories' tags all point at one image pulled through the mirror, as many repositories share base
// layers: every row shown is sized from real cached bytes.
import { join } from 'node:path';
import { buildImage, pushImage, skopeoCopy } from '../test/support/images.ts';
import { startMirror } from '../test/support/mirror.ts';
import type { RunningRegistry } from '../test/support/registry.ts';
import { median, type Row } from './report.ts';

const REPOSITORIES = 5_000;
const REPS = 15;
const TARGET_MS = 200;

export async function uiListing(upstream: RunningRegistry, work: string, log: (message: string) => void): Promise<Row> {
  const built = await buildImage(join(work, 'ui-image'), { tag: '1', layers: [{ randomBytes: 256 * 1024, seed: 'bench-ui-0' }, { randomBytes: 64 * 1024, seed: 'bench-ui-1' }] });
  const image = { reference: 'bench/ui:1' };
  await pushImage(built, upstream, image.reference);
  const mirror = await startMirror({ log: { level: 'warn' }, upstreams: [{ name: 'upstream', url: upstream.url, default: true }] });
  try {
    await skopeoCopy(`docker://${mirror.host}/${image.reference}`, `oci:${join(work, 'ui-listing')}:1`);
    const meta = mirror.runtime.deps.meta;
    const [repo, tag] = image.reference.split(':') as [string, string];
    const [record] = (await meta.tagRecords('upstream', repo)).filter((r) => r.tag === tag);
    if (!record) throw new Error(`bench ui: ${image.reference} is not cached after the pull`);
    log(`ui listing: recording ${REPOSITORIES} cached repositories`);
    for (let i = 0; i < REPOSITORIES; i++) {
      await meta.setTag({ upstream: 'upstream', repo: `team-${i % 50}/app-${i}`, tag: 'latest', accept: record.accept }, { digest: record.digest, mediaType: record.mediaType, size: record.size, fetchedAt: record.fetchedAt });
    }
    const timed = async (path: string) => {
      const samples: number[] = [];
      for (let rep = 0; rep < REPS; rep++) {
        const started = performance.now();
        const res = await mirror.app.request(path, { headers: { host: mirror.host } });
        const body = await res.text();
        samples.push(performance.now() - started);
        if (res.status !== 200 || !body.includes('Page ')) throw new Error(`bench ui: ${path} answered ${res.status}`);
      }
      return median(samples);
    };
    const first = await timed('/ui/repositories');
    const middle = await timed(`/ui/repositories?page=${Math.floor(REPOSITORIES / 100)}`);
    const search = await timed('/ui/repositories?q=app-49');
    const slowest = Math.max(first, middle, search);
    log(`ui listing of ${REPOSITORIES} repositories: first page ${first.toFixed(1)} ms, middle page ${middle.toFixed(1)} ms, search ${search.toFixed(1)} ms (median of ${REPS})`);
    return {
      name: `Web UI repository listing, ${REPOSITORIES} cached repositories, 50 per page (slowest of first page ${first.toFixed(0)} ms, middle page ${middle.toFixed(0)} ms, search ${search.toFixed(0)} ms; server time, median of ${REPS})`,
      unit: 'ms',
      ocimirror: Number(slowest.toFixed(1)),
      target: `< ${TARGET_MS} ms`,
      met: slowest < TARGET_MS,
    };
  } finally {
    await mirror.dispose();
  }
}
