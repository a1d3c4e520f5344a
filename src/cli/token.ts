// `ocimirror token create|ls|rm|rotate-key`: scoped, expiring access tokens, written to the data dir of
// the config it is given; a running `serve` (and every replica on that data dir) sees them at once.
import { parseArgs } from 'node:util';
import { ScopedTokens, TokenNameError } from '../auth/scoped-tokens.ts';
import { TokenService } from '../auth/token-service.ts';
import type { AuthAction, Config } from '../config/config.ts';
import { ConfigError, loadConfig } from '../config/load.ts';
import { parseDurationMs } from '../config/units.ts';
import { createLogger } from '../observability/logger.ts';
import { formatTime, table } from './format.ts';

export const TOKEN_USAGE = `Usage: ocimirror token <create|ls|rm|rotate-key> --config FILE [options]

  create --name NAME --repos GLOBS --actions pull[,push][,delete] --expires 30d [--quiet]
         Prints the token's secret once (only its hash is stored). Log in with the token's name as user
         name and the secret as password (docker/podman login, skopeo --creds NAME:SECRET, curl -u).
         GLOBS: comma-separated repository globs (lab/app,lab/tools/*; ** crosses path components).
  ls     Name, repositories, actions, expiry and last use of every token.
  rm NAME
         Revokes the token at once.
  rotate-key
         Adds a new token signing key; tokens signed by the old one stay valid until they expire.

Options:
  -c, --config FILE   the mirror's config file (default: $OCIMIRROR_CONFIG)
  -q, --quiet         create: print only the secret`;

export async function tokenCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string', short: 'c' },
      name: { type: 'string' },
      repos: { type: 'string' },
      actions: { type: 'string' },
      expires: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || verb === '--help' || verb === '-h') {
    console.log(TOKEN_USAGE);
    return 0;
  }
  const usage = (message: string) => {
    console.error(`ocimirror token: ${message}\n\n${TOKEN_USAGE}`);
    return 2;
  };
  let config: Config;
  try {
    config = loadConfig({ ...(values.config ? { file: values.config } : {}), skipCredentials: true });
  } catch (err) {
    if (err instanceof ConfigError) return usage(err.message);
    throw err;
  }
  const audit = createLogger('info', process.stderr);
  const tokens = new ScopedTokens(config.dataDir);
  switch (verb) {
    case 'create': {
      if (!values.name || !values.repos || !values.actions || !values.expires) return usage('create needs --name, --repos, --actions and --expires');
      const actions = values.actions.split(',').map((a) => a.trim());
      const bad = actions.filter((a) => !['pull', 'push', 'delete'].includes(a));
      if (bad.length) return usage(`unknown action ${bad.join(', ')} (use pull, push, delete)`);
      const expiresMs = parseDurationMs(values.expires);
      if (!expiresMs) return usage(`--expires "${values.expires}" is not a duration (e.g. 30d, 12h)`);
      const repos = values.repos.split(',').map((r) => r.trim()).filter(Boolean);
      try {
        const secret = await tokens.create({ name: values.name, repos, actions: actions as AuthAction[], expiresAt: Date.now() + expiresMs });
        audit.info({ token: values.name, repos, actions, expires_at: new Date(Date.now() + expiresMs).toISOString() }, 'token created');
        if (values.quiet) console.log(secret);
        else console.log(`token "${values.name}" created; its secret (shown only now):\n${secret}`);
        return 0;
      } catch (err) {
        if (err instanceof TokenNameError) return usage(err.message);
        throw err;
      }
    }
    case 'ls': {
      const list = await tokens.list();
      const now = Date.now();
      console.log(
        table(
          ['NAME', 'REPOSITORIES', 'ACTIONS', 'EXPIRES', 'LAST USED'],
          list.map((t) => [t.name, t.repos.join(','), t.actions.join(','), `${formatTime(t.expiresAt)}${t.expiresAt <= now ? ' (expired)' : ''}`, t.lastUsedAt ? formatTime(t.lastUsedAt) : 'never']),
        ),
      );
      return 0;
    }
    case 'rm': {
      const name = positionals[0] ?? values.name;
      if (!name) return usage('rm needs the token name');
      try {
        if (!(await tokens.remove(name))) {
          console.error(`ocimirror token: no token named "${name}"`);
          return 1;
        }
      } catch (err) {
        if (err instanceof TokenNameError) return usage(err.message);
        throw err;
      }
      audit.info({ token: name }, 'token revoked');
      console.log(`token "${name}" revoked`);
      return 0;
    }
    case 'rotate-key': {
      const service = await TokenService.open({ dataDir: config.dataDir, service: config.auth?.service ?? 'ocimirror', ttlMs: config.auth?.tokenTtlMs ?? 300_000 });
      const kid = await service.rotate();
      audit.info({ kid }, 'token signing key rotated');
      console.log(`new signing key ${kid}; tokens signed by the previous key stay valid until they expire`);
      return 0;
    }
    default:
      return usage(verb ? `unknown subcommand "${verb}"` : 'give a subcommand');
  }
}
