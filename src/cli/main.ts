#!/usr/bin/env node
// The `ocimirror` command: dispatches to one file per subcommand.
import { packageVersion } from './version.ts';

const USAGE = `Usage: ocimirror <command> [options]

Commands:
  serve        run the mirror (see: ocimirror serve --help)
  warm         pull images through the running mirror into its cache
  ls           list cached repositories, or a repository's cached tags
  inspect      show a cached image's manifest and config
  rm           drop cached tags, digests or repositories and free the blobs only they used
  gc           free blobs and manifests nothing references (online)
  token        create, list and revoke scoped access tokens (client authentication)
  config       print client configuration for this mirror (containerd, crio, podman, docker, hosts)
  tls init     create the CA and server certificate of the TLS listener (DNS-spoof mode)
  version      print the version

Run 'ocimirror <command> --help' for a command's options.`;

// Each command's module is loaded when it runs: `ocimirror ls` should not pay for loading the server.
const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  serve: async (argv) => (await import('./serve.ts')).serveCommand(argv),
  warm: async (argv) => (await import('./warm.ts')).warmCommand(argv),
  ls: async (argv) => (await import('./ls.ts')).lsCommand(argv),
  inspect: async (argv) => (await import('./inspect.ts')).inspectCommand(argv),
  rm: async (argv) => (await import('./rm.ts')).rmCommand(argv),
  gc: async (argv) => (await import('./gc.ts')).gcCommand(argv),
  token: async (argv) => (await import('./token.ts')).tokenCommand(argv),
  config: async (argv) => (await import('./config.ts')).configCommand(argv),
  tls: async (argv) => (await import('./tls.ts')).tlsCommand(argv),
  version: async () => {
    console.log(packageVersion());
    return 0;
  },
};

/** package.json "engines": older runtimes lack what the dependencies use (undici needs zlib's zstd). */
const MIN_NODE_MAJOR = 24;

async function main(argv: string[]): Promise<number> {
  // Before any command's modules load: on an older node they fail at import with a stack trace.
  if (Number(process.versions.node.split('.')[0]) < MIN_NODE_MAJOR) {
    console.error(`ocimirror: needs Node.js ${MIN_NODE_MAJOR} or newer; ${process.execPath} is ${process.version}`);
    return 1;
  }
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`ocimirror: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (err) {
    // Unknown options, and a config file that cannot be read (by name: main.ts loads no command's modules).
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') || (err as Error).name === 'ConfigError') {
      console.error(`ocimirror ${name}: ${(err as Error).message}`);
      return 2;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
