// The kubelet-shaped cold pull: `ctr images pull --max-concurrent-downloads 3` (what containerd's CRI
// plugin does by default) of an image of many layers, directly from the upstream and through a new
// ocimirror process, with the upstream behind a throttled link on every path. Each pull gets a new
// containerd (empty content store) and, through the mirror, a new ocimirror with an empty data dir.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FaultProxy } from '../test/support/fault-proxy.ts';
import { startContainerd } from '../test/support/containerd.ts';
import type { BuiltImage } from '../test/support/images.ts';
import type { MirrorProcess } from '../test/support/mirror-process.ts';
import { makeTempDir, removeTempDir } from '../test/support/tmp.ts';
import { median, type Row } from './report.ts';

export interface CtrPullBench {
  /** The image in the upstream, under `reference`. */
  readonly image: BuiltImage;
  readonly reference: string;
  /** The upstream as every path reaches it: through the throttling proxy. */
  readonly link: { readonly proxy: FaultProxy; readonly bytesPerSec: number };
  readonly reps: number;
  /** A new ocimirror whose default upstream is `url`; dispose() stops it and removes its data. */
  readonly freshMirror: (upstream: { readonly url: string }) => Promise<{ readonly process: MirrorProcess; dispose(): Promise<void> }>;
  readonly log: (message: string) => void;
}

const MAX_CONCURRENT_DOWNLOADS = 3;
const MB = 1e6;

export async function ctrPulls(bench: CtrPullBench): Promise<{ row: Row; detail: string }> {
  const { proxy, bytesPerSec } = bench.link;
  const reference = `${proxy.host}/${bench.reference}`;
  const samples: Record<'direct' | 'ocimirror', number[]> = { direct: [], ocimirror: [] };

  /** One timed pull (fetch + unpack) by a new containerd whose hosts.toml sends `reference`'s host to `server`. */
  const pull = async (server: string): Promise<number> => {
    const hostsDir = await makeTempDir('bench-ctr-hosts');
    const containerd = await startContainerd();
    try {
      await mkdir(join(hostsDir, proxy.host), { recursive: true });
      // As a node's /etc/containerd/certs.d/<registry>/hosts.toml: `server` is the registry itself; a
      // mirror is a [host] tried first. Every address is on loopback.
      const mirrorHost = server === proxy.host ? '' : `\n[host."http://${server}"]\n  capabilities = ["pull", "resolve"]\n`;
      await writeFile(join(hostsDir, proxy.host, 'hosts.toml'), `server = "http://${proxy.host}"\n${mirrorHost}`);
      const begin = performance.now();
      await containerd.ctr(['images', 'pull', '--plain-http', '--hosts-dir', hostsDir, '--snapshotter', 'overlayfs', '--max-concurrent-downloads', String(MAX_CONCURRENT_DOWNLOADS), reference], 180_000);
      const seconds = (performance.now() - begin) / 1000;
      const content = await containerd.content();
      const missing = bench.image.layers.filter((l) => !content.includes(l.digest));
      if (missing.length > 0) throw new Error(`ctr pull via ${server}: ${missing.length} layers missing from containerd's content store`);
      return seconds;
    } finally {
      await containerd.dispose();
      await removeTempDir(hostsDir);
    }
  };

  for (let rep = 0; rep < bench.reps; rep++) {
    for (const kind of rep % 2 === 0 ? (['direct', 'ocimirror'] as const) : (['ocimirror', 'direct'] as const)) {
      if (kind === 'direct') {
        samples.direct.push(await pull(proxy.host));
        continue;
      }
      const mirror = await bench.freshMirror({ url: proxy.url });
      try {
        samples.ocimirror.push(await pull(mirror.process.host));
      } finally {
        await mirror.dispose();
      }
    }
  }

  const [direct, ocimirror] = [median(samples.direct), median(samples.ocimirror)];
  const bytes = bench.image.layers.reduce((n, l) => n + l.size, 0);
  const linkText = `${(bytesPerSec / MB).toFixed(0)} MB/s per connection`;
  bench.log(`ctr cold pull behind ${linkText}: direct ${direct.toFixed(2)} s, ocimirror ${ocimirror.toFixed(2)} s`);
  return {
    row: {
      name: `Cold pull, ${bench.image.layers.length} layers / ${(bytes / MB).toFixed(0)} MB, \`ctr images pull --max-concurrent-downloads ${MAX_CONCURRENT_DOWNLOADS}\`, upstream behind a link of ${linkText}`,
      unit: 's, lower is better',
      ocimirror,
      direct,
      target: 'ocimirror/direct <= 0.8',
      met: ocimirror <= 0.8 * direct,
    },
    detail:
      `ctr cold pull wall times (s; median of ${bench.reps}; fetch and unpack by a new containerd each time, overlayfs snapshotter as on a kubelet node; through the mirror a new ocimirror with an empty data dir; ` +
      `every path, direct included, reaches the upstream through test/support/fault-proxy.ts throttling each response body to ${linkText}): ` +
      `direct [${samples.direct.map((v) => v.toFixed(2)).join(', ')}]; ocimirror [${samples.ocimirror.map((v) => v.toFixed(2)).join(', ')}]`,
  };
}
