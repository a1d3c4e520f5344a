// Runs ocimirror for a test: in this process (the same app, runtime and listeners `serve` builds), with
// every log line captured so tests can assert on what was logged.
import { Writable } from 'node:stream';
import type { Hono } from 'hono';
import { createAdminApp } from '../../src/admin/app.ts';
import { createApp } from '../../src/app.ts';
import type { Config } from '../../src/config/config.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { createRuntime, type Runtime } from '../../src/deps.ts';
import type { AppEnv } from '../../src/http/env.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { listen, type RunningServer } from '../../src/server.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface RunningMirror {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** 127.0.0.1:PORT, for docker:// references */
  readonly host: string;
  /** The ports of the TLS listeners (config tls.listen), in order. */
  readonly tlsPorts: readonly number[];
  /** http://127.0.0.1:PORT of the admin API (ls/inspect/rm); undefined when the config turns it off. */
  readonly adminUrl: string | undefined;
  readonly config: Config;
  readonly runtime: Runtime;
  readonly app: Hono<AppEnv>;
  /** Every log line written so far, raw JSON text. */
  logText(): string;
  logs(): Record<string, unknown>[];
  /** Stops listening and closes the stores; the data dir stays (for restarts). */
  stop(): Promise<void>;
  /** stop() and delete the data dir if this helper made it. */
  dispose(): Promise<void>;
}

export async function startMirror(input: ConfigInput & { env?: NodeJS.ProcessEnv }): Promise<RunningMirror> {
  const ownDataDir = input.dataDir === undefined ? await makeTempDir('ocimirror-data') : undefined;
  const { env, ...rest } = input;
  const config = parseConfig({ listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, log: { level: 'debug' }, ...rest, dataDir: input.dataDir ?? ownDataDir }, { env: env ?? {} });
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  const logger = createLogger(config.log.level, sink);
  const runtime = await createRuntime(config, logger, createMetrics('test'));
  const app = createApp(runtime.registry, { readiness: runtime.readiness });
  let server: RunningServer | undefined = await listen(app, config.listen, config.tls, runtime.registry.hot);
  const tlsPorts = server.tlsAddresses.map((a) => a.port);
  // The same admin app `serve` starts, but a failure to listen fails the test instead of being logged.
  let admin = config.admin.listen.length ? await listen(createAdminApp(runtime.registry), config.admin.listen) : undefined;
  const port = server.addresses[0]!.port;
  const stop = async () => {
    if (!server) return;
    const s = server;
    server = undefined;
    await Promise.all([s.close(1_000), admin?.close(1_000)]);
    admin = undefined;
    await runtime.close();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    tlsPorts,
    adminUrl: admin ? `http://127.0.0.1:${admin.addresses[0]!.port}` : undefined,
    config,
    runtime,
    app,
    logText: () => lines.join(''),
    logs: () => lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
    stop,
    dispose: async () => {
      await stop();
      if (ownDataDir) await removeTempDir(ownDataDir);
    },
  };
}
