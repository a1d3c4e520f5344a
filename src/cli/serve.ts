// `ocimirror serve`: run the mirror until SIGTERM/SIGINT, then drain gracefully and exit 0.
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { startAdmin } from '../admin/app.ts';
import { createApp } from '../app.ts';
import { listenAddressProblem, type ConfigInput } from '../config/schema.ts';
import type { Config } from '../config/config.ts';
import { ConfigError, loadConfig } from '../config/load.ts';
import { createRuntime, type Runtime } from '../deps.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { listen, ListenError, type RunningServer } from '../server.ts';
import { checkUpstreamSchemes, dataDirProblem, runtimeProblem } from './start-up-checks.ts';
import { packageVersion } from './version.ts';

export const SERVE_USAGE = `Usage: ocimirror serve [options]

Options:
  -c, --config FILE     YAML config file (default: $OCIMIRROR_CONFIG, else built-in defaults)
  -l, --listen ADDR     listen address host:port (repeatable; default 127.0.0.1:5000; :5000 is
                        every interface; a bare port is refused)
  -d, --data-dir DIR    blob and metadata directory (default ./data)
      --tls-listen ADDR   HTTPS listen address (repeatable; certificate from 'ocimirror tls init')
      --admin-listen ADDR admin API address for ls/inspect/rm (repeatable; default 127.0.0.1:5001;
                        "" turns it off). Keep it on loopback: it can delete cached images.
      --redis-url URL   keep metadata in Redis instead of the data dir
      --offline         serve only what is cached
      --log-level LEVEL fatal|error|warn|info|debug|trace|silent`;

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      listen: { type: 'string', short: 'l', multiple: true },
      'data-dir': { type: 'string', short: 'd' },
      'admin-listen': { type: 'string', multiple: true },
      'tls-listen': { type: 'string', multiple: true },
      'redis-url': { type: 'string' },
      offline: { type: 'boolean' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(SERVE_USAGE);
    return 0;
  }
  for (const flag of ['listen', 'tls-listen', 'admin-listen'] as const) {
    for (const text of values[flag] ?? []) {
      const problem = text === '' && flag === 'admin-listen' ? undefined : listenAddressProblem(text);
      if (problem) {
        console.error(`ocimirror serve: --${flag} ${problem}`);
        return 2;
      }
    }
  }
  const overrides: Partial<ConfigInput> = {};
  if (values.listen) overrides.listen = values.listen;
  if (values['data-dir']) overrides.dataDir = values['data-dir'];
  if (values['tls-listen']) overrides.tls = { listen: values['tls-listen'] };
  if (values['admin-listen']) overrides.admin = { listen: values['admin-listen'].filter(Boolean) };
  if (values['redis-url']) overrides.redis = { url: values['redis-url'] };
  if (values.offline) overrides.offline = true;
  if (values['log-level']) overrides.log = { level: values['log-level'] as 'info' };

  let config;
  try {
    config = loadConfig({ ...(values.config ? { file: values.config } : {}), overrides });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`ocimirror: ${err.message}`);
      return 2;
    }
    throw err;
  }

  // Start-up mistakes (data dir, addresses, certificate) are one line on stderr and exit code 2.
  const dataDir = await dataDirProblem(config.dataDir);
  if (dataDir) {
    console.error(`ocimirror: ${dataDir}`);
    return 2;
  }
  const logger = createLogger(config.log.level);
  const metrics = createMetrics(packageVersion());
  let runtime: Runtime;
  try {
    runtime = await createRuntime(config, logger, metrics);
  } catch (err) {
    const problem = await runtimeProblem(err, config);
    if (!problem) throw err;
    console.error(`ocimirror: ${problem}`);
    return 2;
  }
  const listeners = await startListeners(runtime, config, logger).catch(async (err: unknown) => {
    if (!(err instanceof ListenError)) throw err;
    console.error(`ocimirror: ${err.message}`);
    await runtime.close();
    return undefined;
  });
  if (!listeners) return 2;
  const { server, admin } = listeners;
  checkUpstreamSchemes(config.upstreams, logger);
  logger.info(
    {
      version: packageVersion(),
      listen: server.addresses.map(formatAddress),
      listenTls: server.tlsAddresses.map(formatAddress),
      admin: admin?.addresses.map(formatAddress) ?? [],
      dataDir: config.dataDir,
      metadata: config.redis ? 'redis' : 'embedded',
      storage: config.storage.s3 ? 's3' : 'disk',
      upstreams: config.upstreams.map((u) => ({ name: u.name, url: u.url, aliases: u.aliases, default: u.isDefault, offline: u.offline })),
    },
    'ocimirror listening',
  );

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, grace_ms: config.shutdownGraceMs }, 'stopping: finishing responses and downloads in progress');
      const deadline = new Promise<void>((r) => setTimeout(r, config.shutdownGraceMs).unref());
      // Downloads only prefetch wanted are not worth the grace period: they end now, nothing of them cached.
      runtime.deps.prefetch.stop();
      await Promise.race([Promise.all([server.close(config.shutdownGraceMs), admin?.close(config.shutdownGraceMs), runtime.idle()]), deadline]);
      await runtime.close();
      logger.info('stopped');
      resolve(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
}

/** The public listeners, then the admin API's; on a ListenError nothing stays open. */
async function startListeners(runtime: Runtime, config: Config, logger: Logger): Promise<{ server: RunningServer; admin: RunningServer | undefined }> {
  const server = await listen(createApp(runtime.registry, { readiness: runtime.readiness }), config.listen, config.tls, runtime.registry.hot);
  try {
    return { server, admin: await startAdmin(runtime.registry, logger) };
  } catch (err) {
    await server.close(0);
    if (!(err instanceof ListenError)) throw err;
    throw new ListenError(`admin API: ${err.message}; give admin.listen (--admin-listen) a free address, or turn it off (admin: false, --admin-listen "")`, { cause: err });
  }
}

function formatAddress(a: AddressInfo): string {
  return `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}
