// The bench's `ctr` part: `ctr images pull --max-concurrent-downloads 3` (what kubelet's CRI plugin does by
// default) of an image with CTR_LAYERS layers, cold, with every path behind the same per-connection
// throttle: straight from the upstream, and through a new ocimirror (whose layer prefetch fetches every
// layer at once while containerd asks for three at a time). The throttle is slower than the link rows'
// 50 MB/s: at 50 MB/s per connection, nine connections ask more than two shared cores move through
// disk and loopback, and the row would time the machine instead of the link.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startContainerd } from '../test/support/containerd.ts';
import { buildImage, pushImage } from '../test/support/images.ts';
import type { RunningRegistry } from '../test/support/registry.ts';
import { startThrottlingNginx } from './nginx.ts';
import { median, type Row } from './report.ts';

export const CTR_LAYERS = 8;
export const CTR_LAYER_MIB = 8;
/** Per connection (each response body), on every path. */
const CTR_BYTES_PER_SEC = 10 * 1_000_000;
const CTR_REPS = 3;
const CONCURRENT_DOWNLOADS = 3;

export interface CtrBench {
  readonly upstream: RunningRegistry;
  readonly work: string;
  /** Cleanups run when the bench ends. */
  readonly cleanups: Array<() => Promise<unknown>>;
  /** A new ocimirror process whose only upstream is `url`. */
  freshMirror(upstream: { readonly url: string }): Promise<{ process: { url: string; host: string }; dispose(): Promise<void> }>;
  log(message: string): void;
  readonly rows: Row[];
  readonly details: string[];
}

/** hosts.toml for `host`: its own server only (direct), or `mirror` first, as `ocimirror config containerd` writes. */
async function hostsDir(dir: string, host: string, mirror?: string): Promise<string> {
  await mkdir(join(dir, host), { recursive: true });
  const mirrorTable = mirror ? `\n[host."${mirror}"]\n  capabilities = ["pull", "resolve"]\n` : `\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]\n`;
  await writeFile(join(dir, host, 'hosts.toml'), `server = "http://${host}"\n${mirrorTable}`);
  return dir;
}

export async function ctrPulls(b: CtrBench): Promise<void> {
  b.log('ctr pull: building the image and starting containerd');
  const layers = Array.from({ length: CTR_LAYERS }, (_, i) => ({ randomBytes: CTR_LAYER_MIB * 1024 * 1024, seed: `bench-ctr-${i}` }));
  const image = await buildImage(join(b.work, 'ctr-layout'), { tag: '1', layers });
  await pushImage(image, b.upstream, 'bench/ctr:1', { timeoutMs: 300_000 });
  const bytes = image.layers.reduce((sum, l) => sum + l.size, 0);
  const proxy = await startThrottlingNginx(b.upstream.url, CTR_BYTES_PER_SEC);
  b.cleanups.push(() => proxy.stop());
  const samples: Record<'direct' | 'ocimirror', number[]> = { direct: [], ocimirror: [] };
  const host = proxy.host;
  for (let rep = 0; rep < CTR_REPS; rep++) {
    for (const kind of rep % 2 === 0 ? (['direct', 'ocimirror'] as const) : (['ocimirror', 'direct'] as const)) {
      // A containerd of its own for each pull: its content store starts empty.
      const containerd = await startContainerd();
      const mirror = kind === 'ocimirror' ? await b.freshMirror(proxy) : undefined;
      try {
        const dir = await hostsDir(join(b.work, `ctr-hosts-${kind}-${rep}`), host, mirror?.process.url);
        const begin = performance.now();
        // overlayfs, as on a kubelet node (the native snapshotter copies every parent layer per unpack).
        await containerd.ctr(['images', 'pull', '--hosts-dir', dir, '--snapshotter', 'overlayfs', '--max-concurrent-downloads', String(CONCURRENT_DOWNLOADS), `${host}/bench/ctr:1`], 300_000);
        samples[kind].push((performance.now() - begin) / 1000);
        const content = await containerd.content();
        const missing = image.layers.filter((l) => !content.includes(l.digest));
        if (missing.length > 0) throw new Error(`ctr pull (${kind}): ${missing.length} layers missing from containerd's content store`);
      } finally {
        await mirror?.dispose();
        await containerd.dispose();
      }
    }
  }
  const [direct, ocimirror] = [median(samples.direct), median(samples.ocimirror)];
  const rate = `${(CTR_BYTES_PER_SEC / 1e6).toFixed(0)} MB/s`;
  b.log(`ctr pull behind ${rate} per connection: direct ${direct.toFixed(2)} s, ocimirror ${ocimirror.toFixed(2)} s`);
  b.rows.push({
    name: `Cold pull, ${CTR_LAYERS} layers / ${(bytes / 1e6).toFixed(0)} MB, ctr images pull --max-concurrent-downloads ${CONCURRENT_DOWNLOADS}, upstream behind a link of ${rate} per connection`,
    unit: 's, lower is better',
    ocimirror,
    direct,
    target: 'ocimirror/direct <= 0.8',
    met: ocimirror <= 0.8 * direct,
  });
  b.details.push(
    `ctr row: containerd ${CTR_REPS}x per path, each pull by a new containerd (overlayfs snapshotter, unpacked; every layer checked in its content store) and, through the mirror, a new ocimirror process with an empty data dir (no warm-up pull); ` +
      `hosts.toml naming only the upstream (direct) or the mirror first (as \`ocimirror config containerd\` writes); every path goes through the same throttling nginx (bench/nginx.ts, limit_rate: ${rate} per connection). ` +
      `Wall times (s): direct [${samples.direct.map((v) => v.toFixed(2)).join(', ')}]; ocimirror [${samples.ocimirror.map((v) => v.toFixed(2)).join(', ')}].`,
    '',
  );
}
