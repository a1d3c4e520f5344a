// A cached manifest answered straight from node:http, in front of hono: the hottest requests a mirror
// gets (every node of a cluster asking what `app:latest` is, then fetching that digest) cost one map
// lookup, the same check the full path makes, and one write, instead of hono's Request/Response objects,
// routing and a pino child logger. Only an answer the full path gave for exactly this request (Host, URL,
// Accept) is replayed, and only while the full path would give it again: the manifest is still in the
// hot-manifest LRU, and for a tag, its record still names the same digest and is within its upstream's
// tag TTL; for a digest, the mirror may still serve it (mirror/hosted-guard.ts: a digest a push brought
// and the mirror never fetched is asked upstream).
// With client authentication on, every replay first passes the gate's own pull check (auth/hot-pull.ts);
// off for overridable upstreams (a push may answer instead) and for requests that came through other
// mirrors (Via: loop detection).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LRUCache } from 'lru-cache';
import { pino } from 'pino';
import type { HotPullCheck } from '../auth/hot-pull.ts';
import type { CachedManifest, ProxyDeps } from '../mirror/deps.ts';
import { servableByMirror } from '../mirror/hosted-guard.ts';
import type { Target } from '../namespaces/resolve.ts';
import type { TagKey } from '../store/metadata-store.ts';
import { RequestIds } from '../http/request-ids.ts';

/** What, besides the manifest staying in the LRU, keeps an answer replayable. */
export type HotReference =
  /** A tag: its record names the same manifest and was fetched less than `ttlMs` ago. */
  | { readonly kind: 'tag'; readonly tag: TagKey; readonly ttlMs: number }
  /** A digest: the mirror may serve it (not only pushed). */
  | { readonly kind: 'digest' };

/** What the full path answered, to be replayed. */
export interface HotAnswer {
  readonly reference: HotReference;
  readonly manifest: CachedManifest;
  /** Response headers of a cache hit, as the full path sends them. */
  readonly headers: Readonly<Record<string, string>>;
  readonly upstream: string;
  readonly repo: string;
  /** Where the request was routed (what the pull check authorizes). */
  readonly target: Target;
}

interface Entry extends HotAnswer {
  /** upstream and repo as JSON strings, for the access line. */
  readonly quoted: { readonly upstream: string; readonly repo: string };
}

export type HotManifestDeps = Pick<ProxyDeps, 'meta' | 'pins' | 'manifests' | 'metrics' | 'logger' | 'now'>;

/** Distinct (Host, URL, Accept) answers kept. */
const MAX_ENTRIES = 4096;
/** Bytes of manifests they may hold (an entry keeps its manifest even once the manifest LRU let it go). */
const MAX_BYTES = 64 * 1024 * 1024;

export class HotManifests {
  readonly #deps: HotManifestDeps;
  readonly #answers = new LRUCache<string, Entry>({ max: MAX_ENTRIES, maxSize: MAX_BYTES, sizeCalculation: (entry) => entry.manifest.body.byteLength + 1024 });
  readonly #ids = new RequestIds();
  readonly #out: { write(line: string): unknown };

  readonly #allowed: HotPullCheck | undefined;

  /** `allowed`: with client authentication on, the pull check every replay must pass. */
  constructor(deps: HotManifestDeps, allowed?: HotPullCheck) {
    this.#deps = deps;
    this.#allowed = allowed;
    this.#out = (deps.logger as unknown as Record<symbol, { write(line: string): unknown }>)[pino.symbols.streamSym]!;
  }

  /** The full path answered `req` with a hit or a fresh fetch of this manifest: the same request may be replayed. */
  remember(req: IncomingMessage, answer: HotAnswer): void {
    const key = keyOf(req);
    if (key !== undefined) this.#answers.set(key, { ...answer, quoted: { upstream: JSON.stringify(answer.upstream), repo: JSON.stringify(answer.repo) } });
  }

  /**
   * Answers the request if it is a replayable one; false (nothing sent) when the full path must answer.
   * The caller passes it on to hono then.
   */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const key = keyOf(req);
    const hot = key === undefined ? undefined : this.#answers.get(key);
    if (!hot) return false;
    const started = performance.now();
    let user: string | undefined;
    if (this.#allowed) {
      const allowed = await this.#allowed(req.headers.authorization, hot.target).catch(() => false as const);
      if (!allowed) return false;
      user = allowed.user;
    }
    if (!(await this.#stillAnswers(hot))) {
      this.#answers.delete(key!);
      return false;
    }
    const { manifest, reference } = hot;
    const head = req.method === 'HEAD';
    const { metrics } = this.#deps;
    metrics.cacheLookups.inc({ kind: reference.kind === 'tag' ? 'tag' : 'manifest', result: 'hit' });
    res.writeHead(200, hot.headers);
    if (head) res.end();
    else {
      metrics.servedBytes.inc({ source: 'cache' }, manifest.body.byteLength);
      res.end(manifest.body);
    }
    res.once('close', () => this.#log(req, res, hot, started, head ? 0 : manifest.body.byteLength, user));
    return true;
  }

  /** Whether the full path would give this answer again (the checks of mirror/pull-manifest.ts). */
  async #stillAnswers({ manifest, reference }: Entry): Promise<boolean> {
    const deps = this.#deps;
    if (deps.manifests.get(manifest.digest) !== manifest) return false;
    if (reference.kind === 'digest') return servableByMirror(deps, manifest.digest, 'manifest').catch(() => false);
    const record = await deps.meta.getTag(reference.tag).catch(() => undefined);
    return record !== undefined && record.digest === manifest.digest && deps.now() - record.fetchedAt < reference.ttlMs;
  }

  /** The access line and metrics of the full path (http/access-log.ts), built by hand: same fields, same order. */
  #log(req: IncomingMessage, res: ServerResponse, hot: Entry, started: number, size: number, user: string | undefined): void {
    const { metrics, logger } = this.#deps;
    const method = req.method!;
    const durationS = (performance.now() - started) / 1000;
    metrics.httpRequests.inc({ route: 'manifest', method, code: '200' });
    metrics.httpDuration.observe({ route: 'manifest', method }, durationS);
    if (!logger.isLevelEnabled('info')) return;
    const url = req.url!;
    const query = url.indexOf('?');
    const ns = query < 0 ? undefined : new URLSearchParams(url.slice(query + 1)).get('ns')?.slice(0, 255);
    const userAgent = req.headers['user-agent'];
    // What pino writes for the full path's line (http/access-log.ts), field for field; strings quoted by JSON.stringify.
    this.#out.write(
      `{"level":30,"time":"${new Date().toISOString()}","pid":${process.pid},"name":"ocimirror","reqId":"${this.#ids.next()}","method":${JSON.stringify(method)},` +
        `"path":${JSON.stringify(query < 0 ? url : url.slice(0, query))},${ns === undefined ? '' : `"ns":${JSON.stringify(ns)},`}"route":"manifest","status":200,` +
        `"duration_ms":${Math.round(durationS * 1000)},"size_bytes":${size},"complete":${res.writableFinished},"cache":"hit","upstream":${hot.quoted.upstream},"repo":${hot.quoted.repo},` +
        `${user === undefined ? '' : `"user":${JSON.stringify(user)},`}${userAgent === undefined ? '' : `"userAgent":${JSON.stringify(userAgent)},`}"msg":"request"}\n`,
    );
  }
}

/**
 * What the full path's answer depends on, for a request the fast path may take: a GET or HEAD of
 * /v2/<name>/manifests/<tag or digest>, without percent-escapes (the router would decode them) or Via.
 */
function keyOf(req: IncomingMessage): string | undefined {
  const url = req.url;
  if ((req.method !== 'GET' && req.method !== 'HEAD') || !url || !url.startsWith('/v2/') || url.includes('%') || req.headers.via !== undefined) return undefined;
  if (!url.includes('/manifests/')) return undefined;
  return `${req.headers.host ?? ''}\n${req.headers.accept ?? ''}\n${url}`;
}
