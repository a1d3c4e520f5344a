// An image over 800 MB pushed into a hosted repository and pulled back, with the installed command
// (as production runs it) holding its peak resident memory under 150 MB: upload bodies stream to disk
// in bounded batches, whatever their size. skopeo sends each layer as one streamed PATCH; a client
// that uploads in Content-Range chunks (as docker's and containerd's resumable pushers can) is driven
// here with fetch, 32 MiB at a time, for one more large blob.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, skopeoCopy, skopeoInspect, type BuiltImage } from '../support/images.ts';
import { INSTALLED_BIN, startMirrorProcess, type MirrorProcess } from '../support/mirror-process.ts';
import { seededBytes } from '../support/seeded-bytes.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const MiB = 1024 * 1024;
const RSS_LIMIT = 150 * MiB;

let work: string;
let mirror: MirrorProcess;
let image: BuiltImage;

beforeAll(async () => {
  work = await makeTempDir('hosted-big-push');
  image = await buildImage(join(work, 'big'), {
    tag: '1',
    layers: [
      { randomBytes: 420 * MiB, seed: 'big-push-1' },
      { randomBytes: 400 * MiB, seed: 'big-push-2' },
    ],
  });
  mirror = await startMirrorProcess({ dataDir: join(work, 'data'), hosted: { namespaces: ['lab'] }, log: { level: 'warn' } }, { executable: INSTALLED_BIN });
}, 300_000);

afterAll(async () => {
  await mirror?.terminate(5_000);
  if (work) await removeTempDir(work);
});

/** The process's peak resident set so far (VmHWM), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)![1]) * 1024;
}

describe('a push of more than 800 MB', () => {
  it('is taken and pulled back with the same digests, the mirror staying under 150 MB of RSS', async () => {
    const total = image.layers.reduce((n, l) => n + l.size, 0);
    expect(total).toBeGreaterThan(800 * MiB);
    await skopeoCopy(image.ociRef, `docker://${mirror.host}/lab/big:1`, { timeoutMs: 240_000 });
    const out = join(work, 'out');
    await skopeoCopy(`docker://${mirror.host}/lab/big:1`, `oci:${out}:1`, { timeoutMs: 240_000, preserveDigests: true });
    const back = await skopeoInspect(`oci:${out}:1`);
    expect(back.Digest).toBe(image.manifestDigest);
    expect(back.Layers).toEqual(image.layers.map((l) => l.digest));
    const peak = await peakRss(mirror.process.pid!);
    expect(peak, `peak RSS ${Math.round(peak / MiB)} MiB`).toBeLessThan(RSS_LIMIT);
  }, 600_000);

  it('takes a 256 MiB blob in 32 MiB Content-Range chunks, under the same bound', async () => {
    const size = 256 * MiB;
    const chunk = 32 * MiB;
    const hash = createHash('sha256');
    let location = (await fetch(`${mirror.url}/v2/lab/chunked/blobs/uploads/`, { method: 'POST' })).headers.get('location')!;
    let offset = 0;
    let pending = Buffer.alloc(0);
    for await (const bytes of seededBytes('chunked-push', size)) {
      hash.update(bytes);
      pending = Buffer.concat([pending, bytes]);
      while (pending.length >= chunk || (offset + pending.length === size && pending.length > 0)) {
        const part = pending.subarray(0, Math.min(chunk, pending.length));
        const res = await fetch(`${mirror.url}${location}`, { method: 'PATCH', headers: { 'content-range': `${offset}-${offset + part.length - 1}` }, body: part });
        expect(res.status).toBe(202);
        location = res.headers.get('location')!;
        offset += part.length;
        pending = Buffer.from(pending.subarray(part.length));
      }
    }
    const digest = `sha256:${hash.digest('hex')}`;
    const done = await fetch(`${mirror.url}${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' });
    expect(done.status).toBe(201);
    const head = await fetch(`${mirror.url}/v2/lab/chunked/blobs/${digest}`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(size));
    const peak = await peakRss(mirror.process.pid!);
    expect(peak, `peak RSS ${Math.round(peak / MiB)} MiB`).toBeLessThan(RSS_LIMIT);
  }, 300_000);
});
