// A real Prometheus scrapes the mirror: after a pull, its HTTP API shows cache misses, then hits and
// served bytes going up; `promtool check metrics` accepts the exposition.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireBinary } from '../support/binaries.ts';
import { buildImage, pushImage, skopeoCopy } from '../support/images.ts';
import { startMirror, type RunningMirror } from '../support/mirror.ts';
import { freePort } from '../support/ports.ts';
import { startProcess, type ManagedProcess } from '../support/process.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { spawn } from 'node:child_process';

describe('metrics scraped by a real Prometheus', () => {
  let work: string;
  let registry: RunningRegistry;
  let mirror: RunningMirror;
  let prometheus: ManagedProcess;
  let prometheusUrl: string;

  beforeAll(async () => {
    work = await makeTempDir('prometheus-test');
    registry = await startRegistry();
    await pushImage(await buildImage(join(work, 'img'), { tag: 'v1', layers: [{ randomBytes: 100_000, seed: 'prom' }] }), registry, 'library/app:v1');
    mirror = await startMirror({ upstreams: [{ name: 'docker.io', url: registry.url, aliases: ['docker.io'], default: true }] });
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    const config = join(work, 'prometheus.yml');
    await writeFile(config, `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ocimirror\n    static_configs:\n      - targets: ['${mirror.host}']\n`);
    prometheus = startProcess({
      command: requireBinary('prometheus', 'prometheus'),
      args: [`--config.file=${config}`, `--storage.tsdb.path=${join(work, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`],
      env: { PATH: process.env.PATH, HOME: work },
    });
    await prometheus.waitReady({ http: { url: `${prometheusUrl}/-/ready`, status: (s) => s === 200 } }, 60_000);
  }, 120_000);

  afterAll(async () => {
    await prometheus?.stop();
    await mirror?.dispose();
    await registry?.dispose();
    if (work) await removeTempDir(work);
  });

  /** The value Prometheus has for an instant query (0 when it has no sample yet). */
  async function query(expr: string): Promise<number> {
    const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
    return body.data.result.reduce((sum, r) => sum + Number(r.value[1]), 0);
  }

  /** Waits (bounded) until Prometheus has scraped a value satisfying `ok`. */
  async function eventually(expr: string, ok: (v: number) => boolean): Promise<number> {
    let value = await query(expr);
    for (let i = 0; i < 100 && !ok(value); i++) {
      await sleep(200);
      value = await query(expr);
    }
    return value;
  }

  it('shows misses, then hits and served bytes going up after pulls', async () => {
    await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'one')}:x`);
    const misses = await eventually('sum(ocimirror_cache_lookups_total{result="miss"})', (v) => v > 0);
    expect(misses).toBeGreaterThan(0);
    const bytesBefore = await eventually('sum(ocimirror_served_bytes_total)', (v) => v >= 100_000);
    expect(bytesBefore).toBeGreaterThanOrEqual(100_000);

    await skopeoCopy(`docker://${mirror.host}/library/app:v1`, `oci:${join(work, 'two')}:x`);
    expect(await eventually('sum(ocimirror_cache_lookups_total{kind="blob",result="hit"})', (v) => v > 0)).toBeGreaterThan(0);
    expect(await eventually('sum(ocimirror_served_bytes_total{source="cache"})', (v) => v >= 100_000)).toBeGreaterThanOrEqual(100_000);
    expect(await eventually('sum(ocimirror_served_bytes_total)', (v) => v > bytesBefore)).toBeGreaterThan(bytesBefore);
    expect(await query('up{job="ocimirror"}')).toBe(1);
  }, 60_000);

  it('scrapes the process and Node.js metrics too, without the per-collection GC histogram', async () => {
    for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'process_open_fds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_version_info']) {
      expect(await eventually(`count(${name}{job="ocimirror"})`, (v) => v > 0), name).toBeGreaterThan(0);
    }
    const exposition = await (await fetch(`${mirror.url}/metrics`)).text();
    expect(exposition).not.toContain('nodejs_gc_duration_seconds');
  }, 60_000);

  it('passes promtool check metrics', async () => {
    const exposition = await (await fetch(`${mirror.url}/metrics`)).text();
    const promtool = requireBinary('promtool', 'prometheus');
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(promtool, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.on('close', (code) => resolve({ code, output }));
      child.stdin.end(exposition);
    });
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });
});
