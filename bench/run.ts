// `npm run bench`: ocimirror against the reference registry in proxy mode (the peer; for pushes, in plain
// registry mode) and nginx serving the same file (the physical-limit reference), all on loopback, in one
// run that stops by itself.
// Writes bench/RESULTS.md.
import { stat, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../test/support/images.ts';
import { INSTALLED_BIN, startMirrorProcess, type MirrorProcess } from '../test/support/mirror-process.ts';
import { startRegistry, type RunningRegistry } from '../test/support/registry.ts';
import { makeTempDir, removeTempDir } from '../test/support/tmp.ts';
import { htpasswdLine } from '../test/support/htpasswd.ts';
import type { ConfigInput } from '../src/config/schema.ts';
import { DRAIN_CHUNK } from '../src/store/blob-stream.ts';
import { accessLogFrom, blobGets } from './access-log.ts';
import { ctrPulls } from './ctr-pull.ts';
import { curlDownloads, hashedDownload, parallelThroughput, runWrk, type WrkResult } from './clients.ts';
import { cpuSecondsOf, machineFacts, memoryOf, sampleRss } from './machine.ts';
import { startNginx, startThrottlingNginx, type RunningNginx } from './nginx.ts';
import { median, renderReport, type Row } from './report.ts';
import { s3Storage } from './s3.ts';
import { uiListing } from './ui.ts';

const MiB = 1024 * 1024;
const MB = 1e6;
/** The whole run is killed after this long, whatever it is doing. */
const WATCHDOG_MS = 25 * 60_000;
/** ocimirror's log level: its production default, one JSON access line per request. */
const LOG_LEVEL = 'info';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const BLOB_MIB = 200;
const BIG_BLOB_MIB = 1024;
const PULL_LAYERS = 5;
const PULL_LAYER_MIB = 20;
const THROUGHPUT_REPS = 5;
const WRK_SECONDS = 5;
const WRK_CONNECTIONS = 50;
const COLD_PULL_REPS = 3;
/** The per-connection rate of the throttled link in the cold pull row with a target (400 Mbit/s). */
const LINK_BYTES_PER_SEC = 50 * 1_000_000;
/**
 * A slower link, information only: at 5 x 50 MB/s the bench's processes (the throttling nginx, registry, skopeo,
 * mirror) keep both cores of a 2-core machine busy, at half that rate they do not; the two rows side
 * by side show how much of the 50 MB/s row's gap is CPU contention.
 */
const SLOW_LINK_BYTES_PER_SEC = 25 * 1_000_000;
const COLD_CLIENTS = 100;
const RSS_CLIENTS = 50;
/** The pushed image: PUSH_LAYERS layers of PUSH_LAYER_MIB MiB of incompressible bytes each (1 GiB). */
const PUSH_LAYERS = 4;
const PUSH_LAYER_MIB = 256;
const PUSH_REPS = 3;
/** Concurrent pushes of differently seeded images (so every byte is uploaded) in the memory row. */
const PUSH_CONCURRENT = 4;

/** For working on one part: BENCH_ONLY=throughput,manifests,pull,ctr,cold,rss,push,s3,ui runs only those and writes no RESULTS.md. */
const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
const enabled = (part: string) => only === undefined || only.includes(part);

const here = dirname(fileURLToPath(import.meta.url));
const started = new Date();
const t0 = performance.now();
const log = (message: string) => console.log(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${message}`);

// Exit through process.exit on SIGINT/SIGTERM, so that the 'exit' handlers run (the support library
// kills the children and removes the temp dirs there; nginx.ts kills nginx's workers).
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.once(signal, () => {
    console.error(`bench: ${signal}, stopping`);
    process.exit(code);
  });
}

const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 60_000} minutes; giving up`);
  process.exit(1); // the support library kills every child and removes temp dirs on exit
}, WATCHDOG_MS);

const cleanups: Array<() => Promise<unknown>> = [];
const rows: Row[] = [];
/** Rows without a target, shown after the others. */
const infoRows: Row[] = [];
const details: string[] = [];

try {
  await main();
} catch (err) {
  console.error('bench failed:', err);
  process.exitCode = 1;
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  clearTimeout(watchdog);
}

async function main(): Promise<void> {
  const machine = await machineFacts();
  const loadAtStart = loadavg();
  const work = await makeTempDir('bench');
  cleanups.push(() => removeTempDir(work));

  log('starting the upstream registry and building images');
  const upstream = await startRegistry();
  cleanups.push(() => upstream.dispose());
  const blob = await buildAndPush(upstream, work, 'bench/blob:1', [{ randomBytes: BLOB_MIB * MiB, seed: 'bench-blob' }]);
  const big = enabled('rss') ? await buildAndPush(upstream, work, 'bench/big:1', [{ randomBytes: BIG_BLOB_MIB * MiB, seed: 'bench-big' }]) : undefined;
  const layered = enabled('pull') || enabled('s3')
    ? await buildAndPush(
        upstream,
        work,
        'bench/layers:1',
        Array.from({ length: PULL_LAYERS }, (_, i) => ({ randomBytes: PULL_LAYER_MIB * MiB, seed: `bench-layer-${i}` })),
      )
    : undefined;
  const blobLayer = blob.layers[0]!;
  log('images pushed');

  const nginx = await startNginx(join(upstream.dataDir, 'docker', 'registry', 'v2', 'blobs'));
  cleanups.push(() => nginx.stop());
  const nginxCopying = await startNginx(join(upstream.dataDir, 'docker', 'registry', 'v2', 'blobs'), { sendfile: false });
  cleanups.push(() => nginxCopying.stop());
  const mirror = await freshMirror(upstream);
  cleanups.push(() => mirror.dispose());
  const peer = await startRegistry({ proxy: { remoteUrl: upstream.url } });
  cleanups.push(() => peer.dispose());

  const blobUrls = {
    ocimirror: `${mirror.process.url}/v2/bench/blob/blobs/${blobLayer.digest}`,
    peer: `${peer.url}/v2/bench/blob/blobs/${blobLayer.digest}`,
    nginx: `${nginx.url}${nginxPath(blobLayer.digest)}`,
    nginxCopying: `${nginxCopying.url}${nginxPath(blobLayer.digest)}`,
  };

  if (enabled('throughput')) await cachedBlobThroughput(upstream, peer, blobUrls, blobLayer);
  if (enabled('manifests')) await cachedManifests(upstream, mirror.process, peer, nginx, blob);
  if (layered && enabled('pull')) {
    await coldPulls(upstream, layered, work);
    for (const bytesPerSec of [LINK_BYTES_PER_SEC, SLOW_LINK_BYTES_PER_SEC]) {
      const throttle = await startThrottlingNginx(upstream.url, bytesPerSec);
      cleanups.push(() => throttle.stop());
      await coldPulls(upstream, layered, work, { throttle, bytesPerSec });
    }
  }
  if (enabled('ctr')) await ctrPulls({ upstream, work, cleanups, freshMirror, log, rows, details });
  if (enabled('cold')) await coldConcurrentClients(upstream, blobLayer);
  if (big) await peakMemory(upstream, big.layers[0]!);
  if (enabled('push')) await pushes(upstream, work);
  if (layered && enabled('s3')) await s3Storage({ upstream, blob: blobLayer, layered, work, freshMirror, log, rows: infoRows, details, cleanups });
  if (enabled('ui')) rows.push(await uiListing(upstream, work, log));

  const setup = [
    `upstream: docker-registry (distribution 2.8) on 127.0.0.1, filesystem storage, filled with \`skopeo copy\` from OCI layouts built by test/support/images.ts (incompressible AES-CTR bytes, gzip level 0)`,
    `peer: the same docker-registry in \`proxy:\` mode (remoteurl = the upstream), fresh data dir per instance; in the push rows, in plain registry mode (no \`proxy:\`), the push target`,
    `nginx: \`daemon off\`, \`worker_processes auto\`, \`sendfile on\`, \`access_log off\`, serving the upstream registry's own blob file; for comparison only, a second nginx with \`sendfile off\` (on this virtual machine, copying through user space measured faster than sendfile)`,
    `ocimirror: \`bin/ocimirror.js serve\` (the installed command: its shebang runs node --max-semi-space-size=2 with MALLOC_ARENA_MAX=1 on the compiled dist/) as a child process (test/support/mirror-process.ts), embedded metadata store, log level \`${LOG_LEVEL}\` (its default: one JSON line per request, read by the bench through a pipe), default tagTtl (10m)`,
    `blob for throughput and the 100-client test: ${blobLayer.size} bytes (${BLOB_MIB} MiB of random data in a tar+gzip layer); big blob: ${big?.layers[0]?.size} bytes; multi-layer image: ${PULL_LAYERS} layers, ${layered ? sizeOf(layered) : '?'} bytes`,
    `load average (1/5/15 min) at the start: ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}; at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (other sessions share this machine: numbers move between runs, ratios within a run are steadier)`,
    `clients: curl to /dev/null for blob bodies (same for every server), wrk 2 threads for manifests, skopeo copy to an oci: dir for pulls, curl piped into openssl dgst -sha256 for the 100-client test (every body checked)`,
  ];
  const report = renderReport({
    command: 'npm run bench',
    startedAt: started,
    durationS: (performance.now() - t0) / 1000,
    machine,
    setup,
    rows: [...rows, ...infoRows],
    details,
  });
  if (only === undefined) {
    await writeFile(join(here, 'RESULTS.md'), report);
    log('wrote bench/RESULTS.md');
  }
  console.log(report);
}

/** Builds a one-platform image in `work` and pushes it to the upstream as `reference`; the layout is deleted after. */
async function buildAndPush(
  upstream: RunningRegistry,
  work: string,
  reference: string,
  layers: Array<{ randomBytes: number; seed: string }>,
): Promise<BuiltImage> {
  const dir = join(work, reference.replace(/[/:]/g, '-'));
  const image = await buildImage(dir, { tag: '1', layers });
  await pushImage(image, upstream, reference, { timeoutMs: 300_000 });
  await removeTempDir(dir);
  return image;
}

function nginxPath(digest: string): string {
  return `/${blobDataPath(digest).join('/')}`;
}

interface FreshMirror {
  readonly process: MirrorProcess;
  readonly dataDir: string;
  dispose(): Promise<void>;
}

/** A new ocimirror process; with a fresh data dir unless one is given, and `extra` added to its config. */
async function freshMirror(upstream: { readonly url: string }, dataDir?: string, extra: Omit<ConfigInput, 'upstreams'> = {}): Promise<FreshMirror> {
  const dir = dataDir ?? (await makeTempDir('bench-ocimirror-data'));
  // The installed command (bin/ocimirror.js on the compiled dist/, with the node flags of its shebang,
  // as `npm install -g` and, with the same flags, the container image run it), not the .ts sources,
  // whose on-the-fly type stripping costs ~30 MB of RSS and start-up time.
  const child = await startMirrorProcess(
    { dataDir: dir, log: { level: LOG_LEVEL }, ...extra, upstreams: [{ name: 'upstream', url: upstream.url, default: true }] },
    { executable: INSTALLED_BIN },
  );
  return {
    process: child,
    dataDir: dir,
    dispose: async () => {
      await child.terminate(10_000);
      if (dataDir === undefined) await removeTempDir(dir);
    },
  };
}

type Servers<T> = { ocimirror: T; peer: T; nginx: T; nginxCopying: T };

async function cachedBlobThroughput(upstream: RunningRegistry, peer: RunningRegistry, urls: Servers<string>, layer: { digest: string; size: number }): Promise<void> {
  log('cached blob throughput: warming ocimirror and the peer');
  const warm = async (url: string) => {
    const [transfer] = await curlDownloads(url, 1, 120_000);
    if (transfer?.status !== 200 || transfer.bytes !== layer.size) throw new Error(`warming ${url}: status ${transfer?.status}, ${transfer?.bytes} bytes`);
  };
  await warm(urls.ocimirror);
  await warm(urls.peer);
  // The peer stores the blob in the background while it streams it: wait until its copy is complete.
  await waitForFile(join(peer.dataDir, 'docker', 'registry', 'v2', 'blobs', ...blobDataPath(layer.digest)), layer.size);
  await warm(urls.ocimirror);
  await warm(urls.peer);
  const bookmark = accessLogFrom(upstream);
  const names = ['ocimirror', 'peer', 'nginx', 'nginxCopying'] as const;
  for (const [streams, times] of [
    [1, 3],
    [8, 2],
  ] as const) {
    const samples: Servers<number[]> = { ocimirror: [], peer: [], nginx: [], nginxCopying: [] };
    for (let rep = 0; rep < THROUGHPUT_REPS; rep++) {
      // Rotate the order so no server always runs first (or right after another one).
      for (let i = 0; i < names.length; i++) {
        const name = names[(rep + i) % names.length]!;
        const result = await parallelThroughput(urls[name], { streams, times, expectBytes: layer.size, timeoutMs: 120_000 });
        samples[name].push(result.mbPerSecond);
      }
    }
    const ocimirror = median(samples.ocimirror);
    const peer = median(samples.peer);
    const nginx = median(samples.nginx);
    // Other programs share this machine: a repetition's three servers ran seconds apart, under the same
    // background load, so the ratio within each repetition is steadier than a ratio of medians.
    const pairedRatio = (other: number[]) => median(samples.ocimirror.map((v, i) => v / other[i]!));
    const ratios = { peer: pairedRatio(samples.peer), nginx: pairedRatio(samples.nginx) };
    const copyingRatio = pairedRatio(samples.nginxCopying);
    log(`cached blob, ${streams} stream(s): ${names.map((n) => `${n} ${median(samples[n]).toFixed(0)} MB/s`).join(', ')}`);
    const met = streams === 8 ? ratios.nginx >= 0.9 && ratios.peer >= 1 : ratios.peer >= 1;
    rows.push({
      name: `Cached blob throughput, ${streams} stream${streams > 1 ? 's' : ''}`,
      unit: 'MB/s',
      ocimirror,
      peer,
      nginx,
      ratios,
      target: streams === 8 ? '>= 0.9x nginx and >= peer' : '>= peer',
      met,
      gap:
        streams === 1
          ? 'One stream is one thread on each side: ocimirror reads the file into one 512 KiB buffer and writes it to the socket (two copies through user space), ' +
            'docker-registry (Go) hands the file to the socket with sendfile; curl on the other end takes a core of its own. On this virtual machine ' +
            'single-stream samples of every server swing up to 2x between repetitions (Details), which is more than the servers differ by; compare the paired ratio with the ratio of medians.'
          : undefined,
    });
    infoRows.push({
      name: `Cached blob throughput, ${streams} stream${streams > 1 ? 's' : ''}, against nginx with \`sendfile off\` (information only)`,
      unit: 'MB/s',
      ocimirror,
      nginx: median(samples.nginxCopying),
      ratios: { nginx: copyingRatio },
      target: '—',
    });
    details.push(
      `Cached blob throughput, ${streams} stream(s), each stream a curl process downloading the blob ${times} times over one connection; ` +
        `${THROUGHPUT_REPS} repetitions, in rotating order (MB/s): ` +
        names.map((n) => `${n === 'nginxCopying' ? 'nginx (sendfile off)' : n} [${samples[n].map((v) => v.toFixed(0)).join(', ')}]`).join('; ') +
        `. Ratios in the table: median of the per-repetition ratios (ratio of medians: ocimirror/peer ${(ocimirror / peer).toFixed(2)}, ocimirror/nginx ${(ocimirror / nginx).toFixed(2)}).`,
      '',
    );
  }
  const upstreamHits = blobGets(await bookmark.since(), layer.digest).count;
  details.push(`Upstream blob GETs while the throughput was measured (must be 0: both caches were warm): ${upstreamHits}.`, '');
  if (upstreamHits !== 0) throw new Error(`the throughput runs went upstream ${upstreamHits} times`);
}

/** Where docker-registry keeps a blob, below docker/registry/v2/blobs. */
function blobDataPath(digest: string): string[] {
  const hex = digest.slice('sha256:'.length);
  return ['sha256', hex.slice(0, 2), hex, 'data'];
}

async function waitForFile(path: string, size: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await stat(path).catch(() => undefined))?.size !== size) {
    if (Date.now() > deadline) throw new Error(`${path} did not reach ${size} bytes within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function cachedManifests(upstream: RunningRegistry, mirror: MirrorProcess, peer: RunningRegistry, nginx: RunningNginx, image: BuiltImage): Promise<void> {
  log('cached manifests: warming');
  const headers = { Accept: OCI_MANIFEST };
  const urls = {
    tag: { ocimirror: `${mirror.url}/v2/bench/blob/manifests/1`, peer: `${peer.url}/v2/bench/blob/manifests/1` },
    digest: {
      ocimirror: `${mirror.url}/v2/bench/blob/manifests/${image.manifestDigest}`,
      peer: `${peer.url}/v2/bench/blob/manifests/${image.manifestDigest}`,
    },
  };
  const staticUrl = `${nginx.url}${nginxPath(image.manifestDigest)}`;
  for (const url of [urls.tag.ocimirror, urls.tag.peer, urls.digest.ocimirror, urls.digest.peer, staticUrl]) {
    for (let i = 0; i < 2; i++) {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
      const body = await res.arrayBuffer();
      if (res.status !== 200 || body.byteLength !== image.manifestSize) throw new Error(`warming ${url}: status ${res.status}, ${body.byteLength} bytes`);
    }
  }
  const wrk = async (url: string, withHeaders: Record<string, string> = headers): Promise<WrkResult> => {
    await runWrk(url, { connections: WRK_CONNECTIONS, seconds: 1, headers: withHeaders }); // warm-up (JIT, connections)
    const result = await runWrk(url, { connections: WRK_CONNECTIONS, seconds: WRK_SECONDS, headers: withHeaders });
    if (result.errors > 0) throw new Error(`${url}: ${result.errors} of ${result.requests} requests failed under wrk`);
    return result;
  };
  const nginxResult = await wrk(staticUrl);
  // RSS under this load: sampled while wrk runs (VmHWM would include the throughput phase before).
  const rssBefore = (await memoryOf(mirror.process.pid!)).current;
  const rss = sampleRss(mirror.process.pid!);
  for (const kind of ['tag', 'digest'] as const) {
    const ocimirror = await wrk(urls[kind].ocimirror);
    const peerResult = await wrk(urls[kind].peer);
    log(`manifest by ${kind}: ocimirror ${ocimirror.requestsPerSecond.toFixed(0)}/s, peer ${peerResult.requestsPerSecond.toFixed(0)}/s`);
    const factor = kind === 'tag' ? 20 : 5;
    rows.push({
      name: `Cached manifest by ${kind}, ${WRK_CONNECTIONS} connections`,
      unit: 'requests/s',
      ocimirror: ocimirror.requestsPerSecond,
      peer: peerResult.requestsPerSecond,
      nginx: nginxResult.requestsPerSecond,
      target: `>= ${factor}x peer`,
      met: ocimirror.requestsPerSecond >= factor * peerResult.requestsPerSecond,
      gap:
        kind === 'tag'
          ? 'Against nginx (a ceiling, not a target): nginx answers a static file from C with a worker per core; ocimirror replays a cached tag\'s answer ' +
            'ahead of hono (src/routes/hot-manifests.ts) but still pays node:http\'s parser and response objects, one JSON access line and the counters, on one thread.'
          : 'Replayed ahead of hono like a tag (src/routes/hot-manifests.ts), checked per request against the manifest LRU and the hosted guard ' +
            '(a manifest\'s metadata record first: in memory with the embedded store). Through hono this row read 7-9k requests/s.',
    });
    details.push(
      `Manifest by ${kind} (wrk -t2 -c${WRK_CONNECTIONS} -d${WRK_SECONDS}s, Accept: ${OCI_MANIFEST}, after a 1 s warm-up): ` +
        `ocimirror ${ocimirror.requests} requests, avg latency ${ocimirror.latencyAvg}; peer ${peerResult.requests} requests, avg latency ${peerResult.latencyAvg}.`,
      '',
    );
  }
  const rssPeak = await rss.stop();
  rows.push({
    name: `Peak RSS under the cached manifest load (by tag, then by digest, ${WRK_CONNECTIONS} connections)`,
    unit: 'MB, lower is better',
    ocimirror: rssPeak / MB,
    target: '< 150',
    met: rssPeak < 150 * MB,
    gap:
      'The process begins this load at ~115 MB (see Details), after the blob rows. What the load used to add, found with memory traces ' +
      '(V8 heap spaces, external memory, RssAnon every 0.5 s) and removed: the by-digest phase went through hono and grew the old space to ' +
      '~74 MB before a full collection (now replayed like tags: 136-212 MB between runs before); prom-client\'s GC-duration observer made ' +
      'each of the hundreds of young collections a second a performance entry that outlived the next one (~1.5 MB/s of old space; ' +
      'nodejs_gc_duration_seconds is no longer exported, src/observability/process-metrics.ts); the access log\'s per-turn Buffer.from was ' +
      'cut from Node\'s 8 KiB pool slabs, which reached the old generation (+16 MB of dead slabs; src/observability/line-sink.ts now ' +
      'encodes into one kept buffer); and glibc kept the memory V8\'s compiler threads freed in arenas of their own (~15 MB at the start ' +
      'of the load; bin/ocimirror.js sets MALLOC_ARENA_MAX=1). A plain node:http server answering the same bytes grows no old space under ' +
      'this load. The last steady growth (~0.7 MB/s of old space between full collections) was the access line\'s request-id block: one ' +
      '6144-character hex string per 512 requests, which lived through two young collections and was promoted each time (--trace-gc-nvp: ' +
      '6160 bytes promoted every few scavenges; a heap snapshot named the string); src/http/request-ids.ts now draws blocks of 32 ids, ' +
      'used up within a millisecond under load, and a scavenge under this load promotes nothing. Tried earlier and not kept: --no-allocation-site-' +
      'pretenuring (~25% fewer requests/s through hono), --heap-growing-percent=20 (every cold pull ~0.13 s slower), --optimize-for-size ' +
      '(~15% fewer requests/s), a larger young generation (--max-semi-space-size=8: this load +13 MB instead of +30, but ~25 MB more at start-up).',
  });
  details.push(
    `RSS under the manifest load: VmRSS of the mirror process sampled every 200 ms during the wrk runs of the two manifest rows (the process that served the throughput rows before; ${(rssBefore / MB).toFixed(0)} MB when the load began).`,
    '',
  );
  await authenticatedManifests(upstream, mirror, image, wrk);
  details.push(
    `nginx column of the manifest rows: the same manifest bytes as a static file (${nginxResult.requests} requests in ${WRK_SECONDS} s, avg latency ${nginxResult.latencyAvg}); a ceiling, not a target.`,
    '',
  );
}

/**
 * Cached manifest by tag with client authentication on, every request carrying a valid Bearer token
 * (from the mirror's own token endpoint, for an htpasswd user), against the same mirror build without
 * authentication, alternating A/B/A/B in one run.
 */
async function authenticatedManifests(upstream: RunningRegistry, plain: MirrorProcess, image: BuiltImage, wrk: (url: string, headers?: Record<string, string>) => Promise<WrkResult>): Promise<void> {
  log('cached manifest by tag with auth on: starting a mirror with client authentication');
  const dir = await makeTempDir('bench-auth');
  cleanups.push(() => removeTempDir(dir));
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(htpasswd, `${await htpasswdLine('bench', 'bench-password')}\n`);
  const authed = await freshMirror(upstream, undefined, { auth: { htpasswd, rules: [{ repos: ['**'], users: ['bench'], actions: ['pull'] }] } });
  cleanups.push(() => authed.dispose());
  const basic = `Basic ${Buffer.from('bench:bench-password').toString('base64')}`;
  const tokenRes = await fetch(`${authed.process.url}/auth/token?service=ocimirror&scope=repository:bench/blob:pull`, { headers: { authorization: basic } });
  const { token } = (await tokenRes.json()) as { token: string };
  const headers = { Accept: OCI_MANIFEST, Authorization: `Bearer ${token}` };
  const url = `${authed.process.url}/v2/bench/blob/manifests/1`;
  for (let i = 0; i < 2; i++) {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
    if (res.status !== 200 || (await res.arrayBuffer()).byteLength !== image.manifestSize) throw new Error(`warming ${url}: status ${res.status}`);
  }
  const plainRuns: number[] = [];
  const authRuns: number[] = [];
  // Three alternations, medians compared: single 5 s runs on two shared cores differ by up to ~30%.
  for (let rep = 0; rep < 3; rep++) {
    plainRuns.push((await wrk(`${plain.url}/v2/bench/blob/manifests/1`)).requestsPerSecond);
    authRuns.push((await wrk(url, headers)).requestsPerSecond);
  }
  const plainMedian = median(plainRuns);
  const authMedian = median(authRuns);
  log(`manifest by tag with auth: ${authMedian.toFixed(0)}/s, without ${plainMedian.toFixed(0)}/s`);
  rows.push({
    name: `Cached manifest by tag with client authentication on (a valid Bearer token on every request), ${WRK_CONNECTIONS} connections; "direct" column: the same build without authentication`,
    unit: 'requests/s',
    ocimirror: authMedian,
    direct: plainMedian,
    target: '>= 0.9x without authentication',
    met: authMedian >= 0.9 * plainMedian,
  });
  details.push(
    `Auth row: a second ocimirror process with \`auth: { htpasswd, rules: [{ repos: ['**'], users: [bench], actions: [pull] }] }\`, a Bearer token from its /auth/token (Basic bench:…) sent on every wrk request; alternating with the mirror without authentication, 3 runs each of ${WRK_SECONDS} s, medians compared (requests/s with auth ${authRuns.map((r) => r.toFixed(0)).join(', ')}; without ${plainRuns.map((r) => r.toFixed(0)).join(', ')}).`,
    '',
  );
}

function sizeOf(image: BuiltImage): number {
  return image.layers.reduce((sum, l) => sum + l.size, 0);
}

/**
 * Cold pulls through a new ocimirror / peer process each, and directly. With `link`, every path
 * (direct included) reaches the upstream through that throttling proxy instead of straight over loopback.
 */
async function coldPulls(upstream: RunningRegistry, image: BuiltImage, work: string, link?: { throttle: RunningNginx; bytesPerSec: number }): Promise<void> {
  const source = link ? { url: link.throttle.url, host: link.throttle.host } : { url: upstream.url, host: upstream.host };
  const bytes = sizeOf(image);
  const upstreamPid = upstream.pid();
  const samples: Record<PullKind, number[]> = { direct: [], ocimirror: [], peer: [] };
  const cpu: Record<PullKind, PullCpu[]> = { direct: [], ocimirror: [], peer: [] };
  // `server`: the mirror or the peer in between, if any.
  const pull = async (host: string, reference = 'bench/layers:1', server?: number): Promise<{ seconds: number; cpu: PullCpu }> => {
    const dest = join(work, `pull-${Math.random().toString(36).slice(2)}`);
    const before = await pullCpu(upstreamPid, server, link?.throttle.workers);
    const begin = performance.now();
    await skopeoCopy(`docker://${host}/${reference}`, `oci:${dest}:1`, { timeoutMs: 120_000 });
    const seconds = (performance.now() - begin) / 1000;
    const after = await pullCpu(upstreamPid, server, link?.throttle.workers);
    await removeTempDir(dest);
    return { seconds, cpu: { skopeo: after.skopeo - before.skopeo, upstream: after.upstream - before.upstream, server: after.server - before.server, link: after.link - before.link } };
  };
  const record = (kind: PullKind, result: { seconds: number; cpu: PullCpu }) => {
    samples[kind].push(result.seconds);
    cpu[kind].push(result.cpu);
  };
  // A cache is cold; a process is not: before the timed pull, each new ocimirror / peer process pulls an
  // unrelated small image, so the timing measures the empty cache and not a fresh runtime's warm-up
  // (JIT, first connections), which a long-running mirror pays once.
  if (!link) {
    const warmup = await buildImage(join(work, 'warmup-layout'), { tag: '1', layers: [{ randomBytes: 1024 * 1024, seed: 'bench-warmup' }, { files: { w: '1' } }] });
    await pushImage(warmup, upstream, 'bench/warmup:1');
  }
  const kinds = ['direct', 'ocimirror', 'peer'] as const;
  for (let rep = 0; rep < COLD_PULL_REPS; rep++) {
    for (let i = 0; i < kinds.length; i++) {
      const kind = kinds[(rep + i) % kinds.length]!;
      if (kind === 'direct') {
        record(kind, await pull(source.host));
      } else if (kind === 'ocimirror') {
        const mirror = await freshMirror(source);
        try {
          await pull(mirror.process.host, 'bench/warmup:1');
          record(kind, await pull(mirror.process.host, undefined, mirror.process.process.pid!));
        } finally {
          await mirror.dispose();
        }
      } else {
        const peer = await startRegistry({ proxy: { remoteUrl: source.url } });
        try {
          await pull(peer.host, 'bench/warmup:1');
          record(kind, await pull(peer.host, undefined, peer.pid()));
        } finally {
          await peer.dispose();
        }
      }
    }
  }
  const [direct, ocimirror, peer] = [median(samples.direct), median(samples.ocimirror), median(samples.peer)];
  const informationOnly = link !== undefined && link.bytesPerSec !== LINK_BYTES_PER_SEC;
  const linkText = link ? `, upstream behind a link of ${(link.bytesPerSec / MB).toFixed(0)} MB/s per connection${informationOnly ? ' (information only)' : ''}` : '';
  const limit = link ? 1.05 : 1.5;
  const accounting = cpuAccounting(cpu, direct, ocimirror, link !== undefined);
  log(`cold pull${linkText}: direct ${direct.toFixed(2)} s, ocimirror ${ocimirror.toFixed(2)} s, peer ${peer.toFixed(2)} s; ${accounting}`);
  rows.push({
    name: `Cold pull, ${PULL_LAYERS} layers / ${(bytes / MB).toFixed(0)} MB, skopeo copy to oci:${linkText}`,
    unit: 's, lower is better',
    ocimirror,
    peer,
    direct,
    ...(informationOnly ? { target: '—' } : { target: `ocimirror/direct <= ${limit}`, met: ocimirror <= limit * direct }),
    gap: `This run: ${accounting} ${coldPullGap(link?.bytesPerSec)}`,
  });
  details.push(
    `Cold pull${linkText} wall times (s; median of ${COLD_PULL_REPS}; a new ocimirror / peer process with an empty data dir for each pull, warmed by pulling an unrelated 1 MB image first` +
      (link ? `; every path, direct included, goes through nginx (bench/nginx.ts: proxy_pass with limit_rate) passing each response on at ${(link.bytesPerSec / MB).toFixed(0)} MB/s per connection at most, as a WAN link or a CDN's per-connection rate would` : '') +
      '): ' +
      kinds.map((k) => `${k} [${samples[k].map((v) => v.toFixed(2)).join(', ')}]`).join('; ') +
      '. CPU seconds of each pull (user + system, from /proc: skopeo/the upstream registry/the mirror or peer in between' +
      (link ? '/the throttling nginx\'s workers' : '') +
      '): ' +
      kinds.map((k) => `${k} [${cpu[k].map((c) => [c.skopeo, c.upstream, c.server, ...(link ? [c.link] : [])].map((v) => v.toFixed(2)).join('/')).join(', ')}]`).join('; '),
    '',
  );
}

type PullKind = 'direct' | 'ocimirror' | 'peer';

/** CPU seconds one pull took, per process on its path. */
interface PullCpu {
  readonly skopeo: number;
  readonly upstream: number;
  /** The mirror or peer between skopeo and the upstream (0 for direct). */
  readonly server: number;
  /** The throttling nginx's workers (0 without a link). */
  readonly link: number;
}

async function pullCpu(upstreamPid: number, server: number | undefined, linkWorkers: readonly number[] = []): Promise<PullCpu> {
  let link = 0;
  for (const pid of linkWorkers) link += await cpuSecondsOf(pid);
  return {
    // skopeo has exited and been waited for when the pull's promise resolves: it is in this process's reaped children.
    skopeo: await cpuSecondsOf('self', { reapedChildren: true }),
    upstream: await cpuSecondsOf(upstreamPid),
    server: server === undefined ? 0 : await cpuSecondsOf(server),
    link,
  };
}

/**
 * The CPU the machine spent per pull, and what it implies: on N cores a pull whose processes need C CPU
 * seconds cannot take less than C / N, whatever the mirror does with its own time.
 */
function cpuAccounting(cpu: Record<PullKind, PullCpu[]>, direct: number, ocimirror: number, link: boolean): string {
  const cores = availableParallelism();
  const part = (kind: PullKind, field: keyof PullCpu) => median(cpu[kind].map((c) => c[field]));
  const total = (kind: PullKind) => median(cpu[kind].map((c) => c.skopeo + c.upstream + c.server + c.link));
  const parts = (kind: PullKind) =>
    `skopeo ${part(kind, 'skopeo').toFixed(2)}, upstream ${part(kind, 'upstream').toFixed(2)}` +
    (kind === 'direct' ? '' : `, ${kind} ${part(kind, 'server').toFixed(2)}`) +
    (link ? `, the throttling nginx ${part(kind, 'link').toFixed(2)}` : '');
  const [directCpu, mirrorCpu] = [total('direct'), total('ocimirror')];
  const floor = mirrorCpu / cores;
  return (
    `median CPU seconds per pull: direct ${directCpu.toFixed(2)} (${parts('direct')}), through ocimirror ${mirrorCpu.toFixed(2)} ` +
    `(${parts('ocimirror')}), through the peer ${total('peer').toFixed(2)} (${parts('peer')}). On ${cores} cores a pull through ocimirror cannot ` +
    `take less than ${mirrorCpu.toFixed(2)} / ${cores} = ${floor.toFixed(2)} s, ${(floor / direct).toFixed(2)}x direct's wall time ` +
    `(measured: ${(ocimirror / direct).toFixed(2)}x); direct itself kept ${(directCpu / direct).toFixed(2)} of the ${cores} cores busy, ` +
    `the pull through ocimirror ${(mirrorCpu / ocimirror).toFixed(2)}.`
  );
}

/** Where a cold pull's time over direct goes (profiled with --cpu-prof, and the slower link beside the faster one). */
function coldPullGap(linkBytesPerSec: number | undefined): string {
  if (linkBytesPerSec === undefined) {
    return (
      'CPU on one thread. Every byte the mirror passes on is received from the upstream, hashed (SHA-256, ~0.7 ms/MB here), copied into ' +
      'the upload\'s write buffer and written to the file (thread pool), and sent to skopeo (loopback socket writes, ~0.6 ms/MB); a ' +
      '--cpu-prof of the mirror over one such pull: socket writes ~100 ms, SHA-256 ~70 ms, socket reads ~17 ms, buffer copies ~20 ms for the ' +
      '105 MB, the thread busy through the whole pull; GC pauses ~12 ms (--trace-gc: a handful of 1-2 ms scavenges). skopeo hashes and writes the same bytes and the registry reads and sends them, all on 2 cores, so the mirror\'s CPU ' +
      'adds to the wall time, and the 5 layers are served unevenly (in one pull two finished after 0.21 s, three after 0.40 s). The fixed ' +
      'part is small: the manifest miss ~8 ms, a cold blob\'s lease, temp file, rename and metadata write ~6 ms; prefetch starts every ' +
      'layer as soon as the manifest is fetched, before skopeo asks. The bound is the machine\'s CPU, not the mirror\'s thread, as the ' +
      'accounting above shows: the 1.5x target lies a little above the floor that the processes\' CPU sets on 2 cores. Hashing in a worker thread (chunks transferred to it) measured slower, 0.41-0.43 s ' +
      'against 0.36-0.40 s, as it moves work instead of removing it; with the hash left out altogether (a measurement only) the ratio read ' +
      '1.37-1.41.'
    );
  }
  if (linkBytesPerSec === LINK_BYTES_PER_SEC) {
    return (
      `The same CPU, not the link: at 5 x ${linkBytesPerSec / MB} MB/s, skopeo, the registry, the throttling nginx and the mirror move ` +
      `${(5 * linkBytesPerSec) / MB} MB/s at once, and the pull through the mirror keeps more of the 2 cores busy than direct does (above): the ` +
      'mirror\'s own CPU (receiving, hashing, writing and sending every byte) no longer fits beside skopeo\'s in the time the link takes. ' +
      'The row below, at half the rate, has the same bytes and the same mirror and is within a few per cent of direct: no per-request ' +
      'latency is left to cut, prefetch has every layer under way before skopeo asks for it. Until the bench throttled with nginx, the link ' +
      'was a node proxy (test/support/fault-proxy.ts\'s drip) that itself used 0.42-0.56 CPU seconds per pull on the same 2 cores (nginx: ' +
      '~0.07) and fell behind its own rate under that load (5 layers of 21 MB at once: 0.46-0.49 s each through it, 0.41 through nginx, ' +
      '0.42 due); this row then read 1.03-1.33x.'
    );
  }
  return 'At this rate the machine is not saturated: what remains is the manifest fetch (~8 ms) and the held-back last byte until the digest is verified and the file renamed.';
}

async function coldConcurrentClients(upstream: RunningRegistry, layer: { digest: string; size: number }): Promise<void> {
  const measure = async (name: string, url: string) => {
    const bookmark = accessLogFrom(upstream);
    const begin = performance.now();
    const results = await Promise.all(Array.from({ length: COLD_CLIENTS }, () => hashedDownload(url, 300_000)));
    const seconds = (performance.now() - begin) / 1000;
    const correct = results.filter((r) => r.status === 200 && r.bytes === layer.size && r.sha256 === layer.digest).length;
    const upstreamGets = blobGets(await bookmark.since(), layer.digest);
    const failures = [...new Set(results.filter((r) => r.error !== undefined || r.status !== 200).map((r) => r.error ?? `status ${r.status}`))];
    log(`${COLD_CLIENTS} cold clients, ${name}: ${seconds.toFixed(1)} s, ${correct} correct, upstream GETs ${upstreamGets.count}, ${upstreamGets.bytes} bytes`);
    return { seconds, correct, upstreamGets, failures };
  };
  const mirror = await freshMirror(upstream);
  const ours = await measure('ocimirror', `${mirror.process.url}/v2/bench/blob/blobs/${layer.digest}`).finally(() => mirror.dispose());
  const peer = await startRegistry({ proxy: { remoteUrl: upstream.url } });
  const theirs = await measure('peer', `${peer.url}/v2/bench/blob/blobs/${layer.digest}`).finally(() => peer.dispose());

  const title = `${COLD_CLIENTS} clients on one cold ${(layer.size / MB).toFixed(0)} MB blob`;
  rows.push(
    {
      name: `${title}: upstream blob GETs`,
      unit: 'count',
      ocimirror: ours.upstreamGets.count,
      peer: theirs.upstreamGets.count,
      target: 'exactly 1',
      met: ours.upstreamGets.count === 1,
    },
    {
      name: `${title}: upstream bytes`,
      unit: 'MB',
      ocimirror: ours.upstreamGets.bytes / MB,
      peer: theirs.upstreamGets.bytes / MB,
      target: `= blob size (${(layer.size / MB).toFixed(2)})`,
      met: ours.upstreamGets.bytes === layer.size,
    },
    { name: `${title}: wall time until all are done`, unit: 's, lower is better', ocimirror: ours.seconds, peer: theirs.seconds, target: '—' },
    {
      name: `${title}: clients with the right sha256`,
      unit: `of ${COLD_CLIENTS}`,
      ocimirror: ours.correct,
      peer: theirs.correct,
      target: `${COLD_CLIENTS}`,
      met: ours.correct === COLD_CLIENTS,
    },
  );
  details.push(
    `${title}: upstream bytes are the size fields of the upstream registry's access log lines for GETs of that blob ` +
      `(ocimirror ${ours.upstreamGets.bytes} bytes, peer ${theirs.upstreamGets.bytes} bytes; blob ${layer.size} bytes). ` +
      `Failures: ocimirror ${ours.failures.join('; ') || 'none'}; peer ${theirs.failures.join('; ') || 'none'}.`,
    '',
  );
}

async function peakMemory(upstream: RunningRegistry, layer: { digest: string; size: number }): Promise<void> {
  const load = async (url: string): Promise<number> => {
    const begin = performance.now();
    const results = await Promise.all(Array.from({ length: RSS_CLIENTS }, () => curlDownloads(url, 1, 300_000)));
    const bad = results.flat().filter((t) => t.status !== 200 || t.bytes !== layer.size);
    if (bad.length > 0) throw new Error(`${url}: ${bad.length} of ${RSS_CLIENTS} downloads were incomplete`);
    return (performance.now() - begin) / 1000;
  };
  const path = `/v2/bench/big/blobs/${layer.digest}`;

  // ocimirror: a fresh process for each phase; the cached phase reuses the data dir the cold one filled.
  const dataDir = await makeTempDir('bench-ocimirror-rss');
  const memory: Record<'ocimirror' | 'peer', { cold: number; cached: number; idle: number; seconds: number[] }> = {
    ocimirror: { cold: 0, cached: 0, idle: 0, seconds: [] },
    peer: { cold: 0, cached: 0, idle: 0, seconds: [] },
  };
  try {
    for (const phase of ['cold', 'cached'] as const) {
      const mirror = await freshMirror(upstream, dataDir);
      try {
        const pid = mirror.process.process.pid!;
        memory.ocimirror.idle = (await memoryOf(pid)).peak;
        memory.ocimirror.seconds.push(await load(`${mirror.process.url}${path}`));
        memory.ocimirror[phase] = (await memoryOf(pid)).peak;
      } finally {
        await mirror.dispose();
      }
      log(`peak RSS ocimirror ${phase}: ${(memory.ocimirror[phase] / MB).toFixed(0)} MB`);
    }
  } finally {
    await removeTempDir(dataDir);
  }

  // The peer: stop() and start() relaunch it on the same data dir, so the cached phase is a fresh process too.
  const peer = await startRegistry({ proxy: { remoteUrl: upstream.url } });
  try {
    for (const phase of ['cold', 'cached'] as const) {
      if (phase === 'cached') {
        await peer.stop();
        await peer.start();
      }
      const pid = peer.pid();
      memory.peer.idle = (await memoryOf(pid)).peak;
      memory.peer.seconds.push(await load(`${peer.url}${path}`));
      memory.peer[phase] = (await memoryOf(pid)).peak;
      log(`peak RSS peer ${phase}: ${(memory.peer[phase] / MB).toFixed(0)} MB`);
    }
  } finally {
    await peer.dispose();
  }

  rows.push({
    name: 'RSS right after start-up (VmHWM of a new process once /healthz answers; embedded store, disk storage)',
    unit: 'MB, lower is better',
    ocimirror: memory.ocimirror.idle / MB,
    peer: memory.peer.idle / MB,
    target: '<= 60',
    met: memory.ocimirror.idle <= 60 * MB,
    gap:
      'The runtime, before any of ocimirror\'s code: node 24 idling is ~43 MB (34 MB of it the node binary\'s own pages) and ~47 MB with an ' +
      'HTTP server listening, measured on this machine. A program that is an ES module pays ~4 MB for the ES module loader (one listener: ' +
      '~50 MB) and ~10 MB for node\'s own bundled copy of undici, which holds the web Request/Response classes and node:http\'s WebSocket ' +
      'export: @hono/node-server reads the Request/Response globals as it loads, and an ES module import of node:http evaluates all of its ' +
      'exports, so that copy is in memory before any of ocimirror\'s code runs (one listener, imported: ~60 MB). Loaded alone on top of that, zod and undici each add ~13 MB, yaml and ' +
      'prom-client ~8, hono 4, pino 1-2 (not additive: they share the loader\'s cost). Not loaded at start: the S3 client (only with storage.s3), ioredis ' +
      '(only with redis). Tried and measured no gain: lazy-loading jose (auth off); loading the npm undici (the upstream client) only at the ' +
      'first upstream request (88-90 MB, ~1 MB less); bundling the whole program into one minified file with ' +
      'esbuild (ESM 99 MB, CommonJS 90 MB: the libraries\' code is still compiled and kept). A V8 start-up snapshot (node --build-snapshot) ' +
      'cannot hold the program: node:http\'s parser binding is not serializable. A compile cache (NODE_COMPILE_CACHE) read 3 MB more. ' +
      'Of the node binary\'s pages, ~7.5 MB are V8\'s optimizing compilers (Maglev, TurboFan), paged in once start-up code (zod\'s schemas, ' +
      'the YAML parser) runs hot: with --no-opt --no-maglev one such library loads ~9 MB lighter, but the request path would then never be ' +
      'optimized. So 60 MB is what node 24 needs for an ES module program that loads @hono/node-server, before ocimirror\'s own code and ' +
      'its other libraries: reaching it would mean dropping those libraries.',
  });
  for (const phase of ['cold', 'cached'] as const) {
    rows.push({
      name: `Peak RSS (VmHWM), ${RSS_CLIENTS} concurrent downloads of a ${(layer.size / MB).toFixed(0)} MB blob, ${phase}`,
      unit: 'MB, lower is better',
      ocimirror: memory.ocimirror[phase] / MB,
      peer: memory.peer[phase] / MB,
      target: '< 150',
      met: memory.ocimirror[phase] < 150 * MB,
      gap:
        `Over the start-up figure: one 512 KiB send buffer per client (${RSS_CLIENTS} x 512 KiB = ${((RSS_CLIENTS * DRAIN_CHUNK) / MiB).toFixed(0)} MiB, the size that ` +
        'made cached throughput exceed nginx\'s), the sockets, and the V8 heap (flat at ~25 MiB during the cold load)' +
        (phase === 'cold'
          ? '; cold adds the upload\'s two 1 MiB write buffers and the upstream socket\'s reads, each its own 64 KiB ArrayBuffer, freed as soon as ' +
            'the upload copied it (src/store/release-bytes.ts): left to V8, whose external-memory limit lets tens of MB of them wait, ' +
            '~35 MB gathered at the start of this load and it peaked at 153-157 MB. Smaller send buffers for followers of a download ' +
            '(128 KiB) were tried, before that release, and measured no lower, and so was a pool of send buffers shared per write: the 50 followers wake at the ' +
            'same upstream chunk and all write at once. Before an earlier fix, every wait of a follower raced the client\'s close promise, ' +
            'leaving a reaction on it per wait: the heap grew with the bytes sent (161-362 MB between runs). One glibc arena ' +
            '(MALLOC_ARENA_MAX=1, bin/ocimirror.js) took this row from 145 to 129 MB in runs of the same build.'
          : '.'),
    });
  }
  details.push(
    `Peak RSS: VmHWM from /proc/<pid>/status of a process started for that phase (the cached phase restarts it on the data dir the cold phase filled); ` +
      `clients are ${RSS_CLIENTS} curl processes writing to /dev/null. Wall times (s): ocimirror cold ${memory.ocimirror.seconds[0]?.toFixed(1)}, cached ${memory.ocimirror.seconds[1]?.toFixed(1)}; ` +
      `peer cold ${memory.peer.seconds[0]?.toFixed(1)}, cached ${memory.peer.seconds[1]?.toFixed(1)}. ` +
      `VmHWM right after start-up: ocimirror ${(memory.ocimirror.idle / MB).toFixed(0)} MB, peer ${(memory.peer.idle / MB).toFixed(0)} MB ` +
      `(running src/cli/main.ts through type stripping instead of dist/ adds about 30 MB to ocimirror's).`,
    '',
  );
}

/** A server receiving pushes: a fresh ocimirror (hosted namespace `lab`) or a fresh docker-registry in plain registry mode. */
interface PushTarget {
  readonly host: string;
  readonly pid: number;
  /** Blob uploads into `repository` the server has completed so far (PUT /v2/<repository>/blobs/uploads/<id> answered 201). */
  completedUploads(repository: string): Promise<number>;
  dispose(): Promise<void>;
}

type PushServer = 'ocimirror' | 'peer';

async function pushTarget(kind: PushServer, upstream: RunningRegistry): Promise<PushTarget> {
  const isUploadPut = (repository: string, method: unknown, path: unknown, status: unknown) =>
    method === 'PUT' && String(path).startsWith(`/v2/${repository}/blobs/uploads/`) && Number(status) === 201;
  if (kind === 'ocimirror') {
    const mirror = await freshMirror(upstream, undefined, { hosted: { namespaces: ['lab'] } });
    return {
      host: mirror.process.host,
      pid: mirror.process.process.pid!,
      completedUploads: async (repository) => mirror.process.logs().filter((l) => l.msg === 'request' && isUploadPut(repository, l.method, l.path, l.status)).length,
      dispose: () => mirror.dispose(),
    };
  }
  const registry = await startRegistry();
  try {
    const pid = registry.pid();
    return {
      host: registry.host,
      pid,
      completedUploads: async (repository) => {
        await registry.settle();
        return registry.requests().filter((r) => isUploadPut(repository, r.method, r.path, r.status)).length;
      },
      dispose: () => registry.dispose(),
    };
  } catch (err) {
    await registry.dispose();
    throw err;
  }
}

/**
 * skopeo copy of a built image to `target` as `reference`, timed; then checks that every blob was
 * really uploaded (none skipped as already present) and that the tag names the image's manifest.
 */
async function timedPush(target: PushTarget, image: BuiltImage, reference: string): Promise<number> {
  const repository = reference.split(':')[0]!;
  const uploadsBefore = await target.completedUploads(repository);
  const begin = performance.now();
  await skopeoCopy(image.ociRef, `docker://${target.host}/${reference}`, { preserveDigests: true, timeoutMs: 300_000 });
  const seconds = (performance.now() - begin) / 1000;
  await expectPushed(target, image, reference);
  const uploaded = (await target.completedUploads(repository)) - uploadsBefore;
  if (uploaded !== image.layers.length + 1) throw new Error(`pushing ${reference} to ${target.host} completed ${uploaded} blob uploads, expected ${image.layers.length + 1}`);
  return seconds;
}

async function expectPushed(target: PushTarget, image: BuiltImage, reference: string): Promise<void> {
  const [repository, tag] = reference.split(':');
  const res = await fetch(`http://${target.host}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { Accept: OCI_MANIFEST }, signal: AbortSignal.timeout(10_000) });
  const digest = res.headers.get('docker-content-digest');
  if (res.status !== 200 || digest !== image.manifestDigest) throw new Error(`HEAD ${reference} on ${target.host}: status ${res.status}, digest ${digest}, expected ${image.manifestDigest}`);
}

/** Pushes of a locally built 1 GiB image with skopeo: ocimirror's hosted repositories against docker-registry. */
async function pushes(upstream: RunningRegistry, work: string): Promise<void> {
  log(`push: building ${PUSH_CONCURRENT} images of ${PUSH_LAYERS} x ${PUSH_LAYER_MIB} MiB`);
  const images: BuiltImage[] = [];
  for (let i = 0; i < PUSH_CONCURRENT; i++) {
    const layers = Array.from({ length: PUSH_LAYERS }, (_, j) => ({ randomBytes: PUSH_LAYER_MIB * MiB, seed: `bench-push-${i}-${j}` }));
    images.push(await buildImage(join(work, `push-layout-${i}`), { tag: '1', layers }));
  }
  const warmup = await buildImage(join(work, 'push-warmup'), { tag: '1', layers: [{ randomBytes: MiB, seed: 'bench-push-warmup' }, { files: { w: '1' } }] });
  log('push: images built');
  const image = images[0]!;
  const bytes = sizeOf(image);
  // Like the cold pulls: every server is a new process with an empty data dir, so no blob exists on it
  // and every byte is uploaded (checked); before the timed push it takes an unrelated 1 MiB push, so the
  // timing does not include a fresh runtime's warm-up.
  const fresh = async (kind: PushServer): Promise<PushTarget> => {
    const target = await pushTarget(kind, upstream);
    try {
      await timedPush(target, warmup, 'lab/warmup:1');
      return target;
    } catch (err) {
      await target.dispose();
      throw err;
    }
  };

  const samples: Record<PushServer, number[]> = { ocimirror: [], peer: [] };
  /** VmHWM of each server process after its one timed push (information only). */
  const singlePeaks: Record<PushServer, number[]> = { ocimirror: [], peer: [] };
  for (let rep = 0; rep < PUSH_REPS; rep++) {
    const order: PushServer[] = rep % 2 === 0 ? ['ocimirror', 'peer'] : ['peer', 'ocimirror'];
    for (const kind of order) {
      const target = await fresh(kind);
      try {
        samples[kind].push(await timedPush(target, image, `lab/big-${rep}:1`));
        singlePeaks[kind].push((await memoryOf(target.pid)).peak);
      } finally {
        await target.dispose();
      }
    }
  }
  const ocimirror = median(samples.ocimirror);
  const peer = median(samples.peer);
  const pairedRatio = median(samples.ocimirror.map((s, i) => s / samples.peer[i]!));
  log(`push of ${(bytes / MB).toFixed(0)} MB: ocimirror ${ocimirror.toFixed(2)} s, docker-registry ${peer.toFixed(2)} s (time ratio ${pairedRatio.toFixed(2)})`);
  rows.push({
    name: `Push of a ${(bytes / MB).toFixed(0)} MB image (${PUSH_LAYERS} layers) with \`skopeo copy oci: docker://\`, a new server process with an empty data dir for each push; peer: docker-registry in plain registry mode`,
    unit: 's, lower is better',
    ocimirror,
    peer,
    ratios: { peer: pairedRatio },
    target: 'ocimirror/peer <= 1.0 (throughput >= peer)',
    met: pairedRatio <= 1.0,
    gap:
      'Both servers do the same work per byte (read the request body, hash it, write it to a file) and the row sits at about 1.0: full runs ' +
      'on this machine read 0.95 and 1.03, with the repetitions of the two servers overlapping (Details). Not profiled further.',
  });
  details.push(
    `Push of a ${bytes} byte image (${PUSH_LAYERS} layers of ${PUSH_LAYER_MIB} MiB incompressible bytes, gzip level 0) from an OCI layout with ` +
      `\`skopeo copy --dest-tls-verify=false --preserve-digests oci:<layout>:1 docker://127.0.0.1:PORT/lab/big-<rep>:1\`; ` +
      `ocimirror with \`hosted: { namespaces: [lab] }\`, the peer docker-registry without \`proxy:\`. Each push goes to a new server process with an empty data dir ` +
      `(after an unrelated 1 MiB warm-up push), so nothing is skipped as existing: every push is checked to have completed ${image.layers.length + 1} blob uploads and to serve the tag with the image's manifest digest. ` +
      `${PUSH_REPS} repetitions, alternating which server goes first; wall times (s): ocimirror [${samples.ocimirror.map((v) => v.toFixed(2)).join(', ')}], ` +
      `peer [${samples.peer.map((v) => v.toFixed(2)).join(', ')}]; throughput of the medians: ocimirror ${(bytes / ocimirror / MB).toFixed(0)} MB/s, peer ${(bytes / peer / MB).toFixed(0)} MB/s. ` +
      `The ratio in the table is the median of the per-repetition time ratios (ratio of medians: ${(ocimirror / peer).toFixed(2)}). ` +
      `VmHWM of each server process after its push (MB, information only): ocimirror [${singlePeaks.ocimirror.map((v) => (v / MB).toFixed(0)).join(', ')}], peer [${singlePeaks.peer.map((v) => (v / MB).toFixed(0)).join(', ')}].`,
    '',
  );

  // Peak memory while PUSH_CONCURRENT different images are pushed at once to different repositories
  // (ocimirror only: the peer's single-push VmHWM above is the comparison, at no extra run time).
  const target = await fresh('ocimirror');
  let memory: { idle: number; peak: number; seconds: number };
  try {
    const idle = (await memoryOf(target.pid)).peak;
    const begin = performance.now();
    await Promise.all(images.map((im, i) => timedPush(target, im, `lab/concurrent-${i}:1`)));
    const seconds = (performance.now() - begin) / 1000;
    memory = { idle, peak: (await memoryOf(target.pid)).peak, seconds };
  } finally {
    await target.dispose();
  }
  log(`peak RSS during ${PUSH_CONCURRENT} concurrent pushes, ocimirror: ${(memory.peak / MB).toFixed(0)} MB (${memory.seconds.toFixed(1)} s)`);
  rows.push({
    name: `Peak RSS (VmHWM) during ${PUSH_CONCURRENT} concurrent pushes of different ${(bytes / MB).toFixed(0)} MB images to ${PUSH_CONCURRENT} repositories (skopeo)`,
    unit: 'MB, lower is better',
    ocimirror: memory.peak / MB,
    target: '< 150',
    met: memory.peak < 150 * MB,
    gap:
      `${((memory.peak - memory.idle) / MB / PUSH_CONCURRENT).toFixed(0)} MB per upload above the ${(memory.idle / MB).toFixed(0)} MB after the warm-up push. ` +
      'Each upload (skopeo sends an image\'s layers side by side) holds two 1 MiB write buffers, and its socket\'s reads. node\'s parser hands ' +
      'each body read over as a buffer of its own; each is freed as soon as the upload copied it (src/http/request-body.ts, src/store/release-bytes.ts). ' +
      'Before, they waited for V8 to collect them, although a minor GC was forced every 8 MiB of each body: 154-178 MB in this row. With one ' +
      'glibc arena for all threads (MALLOC_ARENA_MAX=1, bin/ocimirror.js) instead of one per thread: 118 MB against 148 in runs of the same build.',
  });
  details.push(
    `Concurrent pushes: ${PUSH_CONCURRENT} skopeo processes at once, each pushing its own differently seeded ${bytes} byte image (no blob in common, so every byte is uploaded; checked per push as above) ` +
      `to lab/concurrent-<i>:1 of a new ocimirror process (after the 1 MiB warm-up push). VmHWM from /proc/<pid>/status after all pushes finished; ` +
      `${(memory.idle / MB).toFixed(0)} MB after the warm-up push. Wall time for all ${PUSH_CONCURRENT}: ${memory.seconds.toFixed(1)} s (${((PUSH_CONCURRENT * bytes) / memory.seconds / MB).toFixed(0)} MB/s).`,
    '',
  );
  for (const im of [...images, warmup]) await removeTempDir(im.layoutDir);
}
