// What the web UI keeps in the process: the traffic history behind the dashboard's charts, the upstream
// health board, browser sessions. Driven with a clock of the test's own.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { csrfMatches, UiSessions } from '../../src/ui/session.ts';
import { TrafficHistory } from '../../src/ui/traffic.ts';
import { parseRateLimit, UpstreamHealthBoard } from '../../src/upstream/health.ts';

const MINUTE = 60_000;

describe('TrafficHistory', () => {
  it('tells the hit ratio and bytes per window and per bucket from the metrics’ totals', async () => {
    const metrics = createMetrics('test');
    const start = 100 * 60 * MINUTE;
    let now = start;
    const history = new TrafficHistory(metrics, () => now);
    expect((await history.window(60 * MINUTE)).hitRatio).toBeUndefined();
    await history.sample();
    // Early on: 4 misses and 1 MB from upstream, sampled.
    metrics.cacheLookups.inc({ kind: 'blob', result: 'miss' }, 4);
    metrics.servedBytes.inc({ source: 'upstream' }, 1_000_000);
    now = start + 5 * MINUTE;
    await history.sample();
    // Two hours in: 6 hits and 3 MB from cache, not sampled yet (the dashboard reads the totals now).
    now = start + 120 * MINUTE;
    metrics.cacheLookups.inc({ kind: 'manifest', result: 'hit' }, 6);
    metrics.cacheLookups.inc({ kind: 'tags_list', result: 'miss' }, 50); // not a pull's manifest or blob
    metrics.servedBytes.inc({ source: 'cache' }, 3_000_000);
    const hour = await history.window(60 * MINUTE);
    expect(hour).toEqual({ hits: 6, misses: 0, hitRatio: 1, bytes: { cache: 3_000_000, upstream: 0, hosted: 0 } });
    expect((await history.window(24 * 60 * MINUTE)).hitRatio).toBeCloseTo(0.6);
    const buckets = await history.buckets(120 * MINUTE, 2);
    expect(buckets.map((b) => [b.hitRatio, b.cacheBytes, b.upstreamBytes])).toEqual([
      [0, 0, 1_000_000],
      [1, 3_000_000, 0],
    ]);
  });
});

describe('UpstreamHealthBoard', () => {
  it('keeps the last success, the last error and a moving average latency, and Docker Hub’s rate limit', () => {
    let now = 1_000;
    const board = new UpstreamHealthBoard(() => now);
    expect(board.of('docker.io')).toEqual({});
    board.answered('docker.io', 200, { 'ratelimit-remaining': '97;w=21600' }, 100);
    now = 2_000;
    board.failed('docker.io', 'connect ECONNREFUSED');
    now = 3_000;
    board.answered('docker.io', 503, {}, 200);
    const h = board.of('docker.io');
    expect(h.lastSuccess).toBe(1_000);
    expect(h.lastError).toEqual({ at: 3_000, message: 'answered 503' });
    expect(h.lastLatencyMs).toBe(200);
    expect(h.averageLatencyMs).toBeCloseTo(120);
    expect(h.rateLimit).toEqual({ remaining: 97, windowSeconds: 21600, at: 1_000 });
  });

  it('reads ratelimit-remaining with or without its window, and nothing else', () => {
    expect(parseRateLimit('100;w=21600')).toEqual({ remaining: 100, windowSeconds: 21600 });
    expect(parseRateLimit('7')).toEqual({ remaining: 7 });
    expect(parseRateLimit(['5;w=60', '6'])).toEqual({ remaining: 5, windowSeconds: 60 });
    expect(parseRateLimit('lots')).toBeUndefined();
    expect(parseRateLimit(undefined)).toBeUndefined();
  });
});

describe('UiSessions', () => {
  it('forgets idle sessions and keeps a bounded number', () => {
    let now = 0;
    const sessions = new UiSessions(() => now);
    const alice = sessions.create({ kind: 'user', name: 'alice' });
    expect(sessions.get(alice.id)?.principal).toEqual({ kind: 'user', name: 'alice' });
    expect(sessions.get('guessed')).toBeUndefined();
    expect(csrfMatches(alice, alice.csrf)).toBe(true);
    expect(csrfMatches(alice, `${alice.csrf}x`)).toBe(false);
    expect(csrfMatches(alice, undefined)).toBe(false);
    now += 9 * 60 * MINUTE;
    expect(sessions.get(alice.id)).toBeUndefined();
    const first = sessions.create({ kind: 'anonymous' });
    for (let i = 0; i < 10_000; i++) sessions.create({ kind: 'anonymous' });
    expect(sessions.get(first.id)).toBeUndefined();
  });
});

describe('config ui', () => {
  it('is on by default; false or { enabled: false } turns it off; anything else is refused', () => {
    const ui = (input: Record<string, unknown>) => parseConfig({ dataDir: '/tmp/x', ...input }, { env: {} }).ui;
    expect(ui({})).toEqual({ enabled: true });
    expect(ui({ ui: false })).toEqual({ enabled: false });
    expect(ui({ ui: { enabled: false } })).toEqual({ enabled: false });
    expect(() => ui({ ui: 'off' })).toThrow(/ui/);
  });
});
