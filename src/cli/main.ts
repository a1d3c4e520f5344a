#!/usr/bin/env node
// The `ocimirror` command: dispatches to one file per subcommand.
import { serveCommand } from './serve.ts';
import { packageVersion } from './version.ts';

const USAGE = `Usage: ocimirror <command> [options]

Commands:
  serve        run the mirror (see: ocimirror serve --help)
  version      print the version

Run 'ocimirror <command> --help' for a command's options.`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  serve: serveCommand,
  version: async () => {
    console.log(packageVersion());
    return 0;
  },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name ? 0 : 1;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`ocimirror: unknown command "${name}"\n\n${USAGE}`);
    return 1;
  }
  try {
    return await command(rest);
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`ocimirror ${name}: ${(err as Error).message}`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
