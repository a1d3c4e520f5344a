// The root logger's stdout writer (observability/line-sink.ts), in a child process whose stdout is a
// real pipe: a reader that falls behind loses no line and gets them in order (the writer waits for it,
// keeping at most a bounded backlog in memory); lines written just before process.exit() arrive; a
// reader that went away does not crash the writer.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';

const SINK = fileURLToPath(new URL('../../src/observability/line-sink.ts', import.meta.url));

/** Runs `body` in a new node with `sink` (a LineSink on fd 1) in scope. */
function child(body: string) {
  const script = `import { LineSink } from ${JSON.stringify(SINK)}; const sink = new LineSink(1); ${body}`;
  return spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function collect(proc: ReturnType<typeof child>, { pauseMs = 0 } = {}): Promise<{ out: string; err: string; code: number | null; rssKb: number }> {
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
  const closed = new Promise((resolve) => proc.stdout!.once('close', resolve));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  // Decoded as a stream: a read may end inside a multi-byte character.
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => (out += d));
  // A reader that does not read at first: the pipe fills and the writer must wait.
  if (pauseMs > 0) {
    proc.stdout!.pause();
    await sleep(pauseMs);
    proc.stdout!.resume();
  }
  const [code] = await Promise.all([exited, closed]);
  const rss = /RSS (\d+)/.exec(err);
  return { out, err, code, rssKb: rss ? Number(rss[1]) : 0 };
}

describe('LineSink', () => {
  it('gets every line to a reader that falls behind, in order, without keeping them all in memory', async () => {
    // 200k lines of ~300 bytes (60 MB) written in bursts while the reader sleeps at first.
    const proc = child(`
      const pad = 'x'.repeat(280);
      let i = 0;
      let maxRss = 0;
      const burst = () => {
        for (let n = 0; n < 5000 && i < 200000; n++, i++) sink.write('{"n":' + i + ',"pad":"' + pad + '"}\\n');
        maxRss = Math.max(maxRss, process.memoryUsage().rss);
        if (i < 200000) setImmediate(burst);
        else setImmediate(() => { process.stderr.write('RSS ' + Math.round(maxRss / 1024) + '\\n'); });
      };
      burst();
    `);
    const { out, code, err, rssKb } = await collect(proc, { pauseMs: 1_000 });
    expect(code, err).toBe(0);
    const lines = out.split('\n').filter(Boolean);
    expect(lines).toHaveLength(200_000);
    lines.forEach((line, n) => {
      if ((JSON.parse(line) as { n: number }).n !== n) throw new Error(`line ${n} is ${line.slice(0, 40)}`);
    });
    // 60 MB went through; the writer never held more than a small part of it (pino's default
    // asynchronous writer, sonic-boom, peaked at ~290 MB of RSS in this script; this one at ~100).
    expect(rssKb).toBeGreaterThan(0);
    expect(rssKb).toBeLessThan(170 * 1024);
  }, 60_000);

  it('gets lines with multi-byte characters byte for byte, in small turns and in turns larger than its buffer', async () => {
    // Turns of 1 line, 100 lines (~30 KB: the sink's kept buffer) and 1000 lines (~300 KB: a buffer of
    // their own), to a reader that falls behind at first, so writes end part-way through a character.
    const proc = child(`
      const text = 'é漢字🙂'.repeat(20);
      let i = 0;
      const sizes = [1, 100, 1000];
      const turn = () => {
        const n = sizes[i % sizes.length];
        for (let k = 0; k < n; k++) sink.write(JSON.stringify({ i, k, text }) + '\\n');
        if (++i < 60) setImmediate(turn);
      };
      turn();
    `);
    const { out, code, err } = await collect(proc, { pauseMs: 500 });
    expect(code, err).toBe(0);
    const lines = out.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { i: number; k: number; text: string });
    expect(lines).toHaveLength(20 * (1 + 100 + 1000));
    expect(lines.every((line) => line.text === 'é漢字🙂'.repeat(20))).toBe(true);
    expect(lines.map((line) => `${line.i}.${line.k}`)).toEqual(Array.from({ length: 60 }, (_, i) => Array.from({ length: [1, 100, 1000][i % 3]! }, (_, k) => `${i}.${k}`)).flat());
  }, 60_000);

  it('writes the lines of the current turn when the process exits at once', async () => {
    const { out, code } = await collect(child(`for (let i = 0; i < 3; i++) sink.write('line ' + i + '\\n'); process.exit(0);`));
    expect(code).toBe(0);
    expect(out).toBe('line 0\nline 1\nline 2\n');
  });

  it('keeps running, writing nothing, once the reader is gone', async () => {
    const proc = child(`
      process.stdout.on?.('error', () => {});
      const tick = () => { for (let n = 0; n < 1000; n++) sink.write('x'.repeat(100) + '\\n'); };
      let rounds = 0;
      const timer = setInterval(() => { tick(); if (++rounds === 40) { clearInterval(timer); process.stderr.write('still running\\n'); } }, 10);
    `);
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    proc.stdout!.destroy(); // the reader goes away before the writer starts
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    expect(err).toContain('still running');
    expect(code).toBe(0);
  });
});
