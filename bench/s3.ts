// The `s3` part of `npm run bench`: the same mirror build with storage.s3 on a one-node Ceph RADOS Gateway
// on loopback (test/support/ceph.ts), next to the disk store, measured alternately in one run: cached
// blob throughput (bytes read from the bucket through the mirror) and a cold multi-layer pull (bytes
// streamed to skopeo while written to a multipart upload). Information rows: no target yet.
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ConfigInput } from '../src/config/schema.ts';
import { startCeph } from '../test/support/ceph.ts';
import { buildImage, pushImage, skopeoCopy, type BuiltImage } from '../test/support/images.ts';
import type { MirrorProcess } from '../test/support/mirror-process.ts';
import type { RunningRegistry } from '../test/support/registry.ts';
import { removeTempDir } from '../test/support/tmp.ts';
import { parallelThroughput } from './clients.ts';
import { median, type Row } from './report.ts';

const REPS = 3;

export interface S3BenchContext {
  readonly upstream: RunningRegistry;
  /** The 200 MiB blob of the throughput rows, already in the upstream as bench/blob:1. */
  readonly blob: { readonly digest: string; readonly size: number };
  /** The multi-layer image of the cold pull rows, as bench/layers:1. */
  readonly layered: BuiltImage;
  readonly work: string;
  readonly freshMirror: (upstream: { readonly url: string }, dataDir?: string, extra?: Omit<ConfigInput, 'upstreams'>) => Promise<{ readonly process: MirrorProcess; dispose(): Promise<void> }>;
  readonly log: (message: string) => void;
  readonly rows: Row[];
  readonly details: string[];
  readonly cleanups: Array<() => Promise<unknown>>;
}

export async function s3Storage(ctx: S3BenchContext): Promise<void> {
  ctx.log('s3: starting a one-node Ceph with a RADOS Gateway');
  const ceph = await startCeph();
  ctx.cleanups.push(() => ceph.dispose());
  const s3 = (): Omit<ConfigInput, 'upstreams'> => ({
    storage: {
      s3: { endpoint: ceph.endpoint, bucket: ceph.bucket, prefix: `bench-${randomBytes(4).toString('hex')}`, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey },
    },
  });
  await cachedThroughput(ctx, s3);
  await coldPulls(ctx, s3);
}

async function cachedThroughput(ctx: S3BenchContext, s3: () => Omit<ConfigInput, 'upstreams'>): Promise<void> {
  const disk = await ctx.freshMirror(ctx.upstream);
  ctx.cleanups.push(() => disk.dispose());
  const bucket = await ctx.freshMirror(ctx.upstream, undefined, s3());
  ctx.cleanups.push(() => bucket.dispose());
  const urls = {
    disk: `${disk.process.url}/v2/bench/blob/blobs/${ctx.blob.digest}`,
    s3: `${bucket.process.url}/v2/bench/blob/blobs/${ctx.blob.digest}`,
  };
  // Twice each: the first download fills the store, the second reads it (the commit is done by then).
  for (const url of [urls.disk, urls.s3, urls.disk, urls.s3]) await parallelThroughput(url, { streams: 1, times: 1, expectBytes: ctx.blob.size, timeoutMs: 120_000 });
  for (const [streams, times] of [
    [1, 3],
    [8, 2],
  ] as const) {
    const samples = { disk: [] as number[], s3: [] as number[] };
    for (let rep = 0; rep < REPS; rep++) {
      for (const name of rep % 2 ? (['s3', 'disk'] as const) : (['disk', 's3'] as const)) {
        samples[name].push((await parallelThroughput(urls[name], { streams, times, expectBytes: ctx.blob.size, timeoutMs: 180_000 })).mbPerSecond);
      }
    }
    const [onDisk, onS3] = [median(samples.disk), median(samples.s3)];
    ctx.log(`s3: cached blob, ${streams} stream(s): disk ${onDisk.toFixed(0)} MB/s, s3 ${onS3.toFixed(0)} MB/s`);
    ctx.rows.push({ name: `Cached blob throughput, ${streams} stream${streams > 1 ? 's' : ''}, storage.s3 (Ceph RGW on loopback; information only)`, unit: 'MB/s', ocimirror: onS3, target: '—' });
    ctx.details.push(
      `storage.s3, cached blob throughput, ${streams} stream(s) x ${times} downloads of the ${ctx.blob.size}-byte blob, ${REPS} repetitions alternating with the same build on the disk store (MB/s): ` +
        `s3 [${samples.s3.map((v) => v.toFixed(0)).join(', ')}]; disk [${samples.disk.map((v) => v.toFixed(0)).join(', ')}]; s3/disk ${(onS3 / onDisk).toFixed(2)}.`,
      '',
    );
  }
  await disk.dispose();
  await bucket.dispose();
}

async function coldPulls(ctx: S3BenchContext, s3: () => Omit<ConfigInput, 'upstreams'>): Promise<void> {
  const warmup = await buildImage(join(ctx.work, 's3-warmup-layout'), { tag: '1', layers: [{ randomBytes: 1024 * 1024, seed: 'bench-s3-warmup' }, { files: { w: '1' } }] });
  await pushImage(warmup, ctx.upstream, 'bench/s3-warmup:1');
  const pull = async (host: string, reference: string): Promise<number> => {
    const dest = join(ctx.work, `s3-pull-${randomBytes(4).toString('hex')}`);
    const begin = performance.now();
    await skopeoCopy(`docker://${host}/${reference}`, `oci:${dest}:1`, { timeoutMs: 120_000 });
    const seconds = (performance.now() - begin) / 1000;
    await removeTempDir(dest);
    return seconds;
  };
  const samples = { direct: [] as number[], disk: [] as number[], s3: [] as number[] };
  const kinds = ['direct', 'disk', 's3'] as const;
  for (let rep = 0; rep < REPS; rep++) {
    for (let i = 0; i < kinds.length; i++) {
      const kind = kinds[(rep + i) % kinds.length]!;
      if (kind === 'direct') {
        samples.direct.push(await pull(ctx.upstream.host, 'bench/layers:1'));
        continue;
      }
      // A new process and an empty store (a new key prefix) per pull, warmed by an unrelated small image.
      const mirror = await ctx.freshMirror(ctx.upstream, undefined, kind === 's3' ? s3() : {});
      try {
        await pull(mirror.process.host, 'bench/s3-warmup:1');
        samples[kind].push(await pull(mirror.process.host, 'bench/layers:1'));
      } finally {
        await mirror.dispose();
      }
    }
  }
  const [direct, onDisk, onS3] = [median(samples.direct), median(samples.disk), median(samples.s3)];
  const bytes = ctx.layered.layers.reduce((sum, l) => sum + l.size, 0);
  ctx.log(`s3: cold pull: direct ${direct.toFixed(2)} s, disk ${onDisk.toFixed(2)} s, s3 ${onS3.toFixed(2)} s`);
  ctx.rows.push({
    name: `Cold pull, ${ctx.layered.layers.length} layers / ${(bytes / 1e6).toFixed(0)} MB, skopeo copy to oci:, storage.s3 (Ceph RGW on loopback; information only)`,
    unit: 's, lower is better',
    ocimirror: onS3,
    direct,
    target: '—',
  });
  ctx.details.push(
    `storage.s3, cold pull wall times (s; median of ${REPS}; a new ocimirror process with an empty store for each pull, warmed by an unrelated 1 MB image first), alternating: ` +
      `s3 [${samples.s3.map((v) => v.toFixed(2)).join(', ')}]; disk [${samples.disk.map((v) => v.toFixed(2)).join(', ')}]; direct [${samples.direct.map((v) => v.toFixed(2)).join(', ')}]; s3/disk ${(onS3 / onDisk).toFixed(2)}.`,
    '',
  );
}
