// One log line and one metrics sample per request, written when the body was fully sent (or broken off).
import type { ServerResponse } from 'node:http';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { AppEnv } from './env.ts';
import { OciError } from '../oci/errors.ts';
import { RequestIds } from './request-ids.ts';

export function accessLog(options: { logger: Logger; metrics: Metrics }): MiddlewareHandler<AppEnv> {
  const ids = new RequestIds();
  return async function accessLog(c, next) {
    const started = performance.now();
    const reqId = ids.next();
    c.set('log', options.logger.child({ reqId }));
    c.set('bytes', 0);
    const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    const written = outgoing ? countBodyBytes(outgoing) : undefined;
    await next();
    const write = () => {
      const status = outgoing?.headersSent ? outgoing.statusCode : c.res.status;
      const route = c.get('route') ?? 'other';
      const durationS = (performance.now() - started) / 1000;
      options.metrics.httpRequests.inc({ route, method: c.req.method, code: String(status) });
      options.metrics.httpDuration.observe({ route, method: c.req.method }, durationS);
      const err = describeError(c.get('error'));
      const sent = c.req.method === 'HEAD' ? 0 : (written?.() ?? (c.get('bytes') || Number(c.res.headers.get('content-length') ?? 0)));
      // A replica following another's download asks many times a second (routes/peer-uploads.ts): debug.
      c.get('log')[status >= 500 ? 'error' : route === 'peer_upload' ? 'debug' : 'info'](
        {
          method: c.req.method,
          path: c.req.path,
          ns: c.req.query('ns')?.slice(0, 255),
          route,
          status,
          duration_ms: Math.round(durationS * 1000),
          size_bytes: sent,
          complete: outgoing ? outgoing.writableFinished : true,
          cache: c.get('cache'),
          upstream: c.get('upstream'),
          repo: c.get('repo'),
          user: c.get('user'),
          userAgent: c.req.header('user-agent'),
          ...err,
        },
        'request',
      );
    };
    if (outgoing && !outgoing.writableFinished && !outgoing.destroyed) outgoing.once('close', write);
    else write();
  };
}

/**
 * The body bytes node writes for one response, whatever wrote them: JSON and error answers (whose
 * length @hono/node-server often passes to node without a header), streamed blobs, anything. Node keeps
 * no such count, so this response's write() and end() count what they are given.
 */
function countBodyBytes(outgoing: ServerResponse): () => number {
  let count = 0;
  const size = (chunk: unknown) => (typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk instanceof Uint8Array ? chunk.byteLength : 0);
  const { write, end } = outgoing;
  outgoing.write = function countedWrite(this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    count += size(chunk);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof write;
  outgoing.end = function countedEnd(this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    count += size(chunk);
    return (end as (...args: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as typeof end;
  return () => count;
}

/** Client errors are logged by code; only unexpected ones carry a stack. */
function describeError(err: unknown): Record<string, unknown> {
  if (err === undefined) return {};
  if (err instanceof OciError && err.status < 500) return { error: { code: err.code, message: err.message } };
  return { err };
}
