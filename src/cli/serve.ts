// `ocimirror serve`: run the mirror until SIGTERM/SIGINT, then drain gracefully and exit 0.
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { startAdmin } from '../admin/app.ts';
import { createApp } from '../app.ts';
import type { ConfigInput } from '../config/schema.ts';
import { ConfigError, loadConfig } from '../config/load.ts';
import { createRuntime } from '../deps.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import { listen } from '../server.ts';
import { packageVersion } from './version.ts';

export const SERVE_USAGE = `Usage: ocimirror serve [options]

Options:
  -c, --config FILE     YAML config file (default: $OCIMIRROR_CONFIG, else built-in defaults)
  -l, --listen ADDR     listen address host:port (repeatable; default 127.0.0.1:5000)
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

  const logger = createLogger(config.log.level);
  const metrics = createMetrics(packageVersion());
  const runtime = await createRuntime(config, logger, metrics);
  const app = createApp(runtime.registry, { readiness: runtime.readiness });
  let server;
  try {
    server = await listen(app, config.listen, config.tls);
  } catch (err) {
    // An address in use, or no TLS certificate yet: say so in one line, not with a stack.
    console.error(`ocimirror: ${(err as Error).message}`);
    await runtime.close();
    return 1;
  }
  const admin = await startAdmin(runtime.registry, logger);
  logger.info(
    {
      version: packageVersion(),
      listen: server.addresses.map(formatAddress),
      listenTls: server.tlsAddresses.map(formatAddress),
      admin: admin?.addresses.map(formatAddress) ?? [],
      dataDir: config.dataDir,
      metadata: config.redis ? 'redis' : 'embedded',
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
      await Promise.race([Promise.all([server.close(config.shutdownGraceMs), admin?.close(config.shutdownGraceMs), runtime.idle()]), deadline]);
      await runtime.close();
      logger.info('stopped');
      resolve(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
}

function formatAddress(a: AddressInfo): string {
  return `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}
