// Configures a running private engine (docker-engine.ts) the way an operator does, and makes sure a
// pull that fails on the mirror can only fall back to loopback:
// - `registry-mirrors` and `features.buildkit` go into the engine's daemon.json, then SIGHUP;
// - Docker Hub's names resolve to 127.0.0.1 in the engine's own mount namespace (a bind mount over
//   its /etc/hosts), so when a pull through the mirror fails, dockerd's retry against
//   registry-1.docker.io hits 127.0.0.1:443 instead of the internet. The host's /etc/hosts is
//   untouched.
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireBinary } from './binaries.ts';
import { runCommand } from './command.ts';
import type { DockerEngine } from './docker-engine.ts';

/** Where Docker Hub pulls go: the official index endpoint and the CDN its blobs redirect to. */
const DOCKER_HUB_NAMES = ['registry-1.docker.io', 'index.docker.io', 'docker.io', 'auth.docker.io', 'production.cloudflare.docker.com'];

export interface EngineProcess {
  /** dockerd's PID in this (the host's) PID namespace. */
  readonly pid: number;
  /** Runs a program in dockerd's mount namespace (it sees the engine's /etc/hosts, /run, /etc/docker). */
  inMountNamespace(command: string, args: string[]): Promise<string>;
}

/** Finds the dockerd serving `engine` by its `-H unix://<socket>` argument. */
export function engineProcess(engine: DockerEngine): EngineProcess {
  const matches: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    // unshare and the setup shell carry the same arguments; only dockerd itself has it as argv[0].
    if (argv[0]?.endsWith('/dockerd') && argv.includes(engine.host)) matches.push(Number(entry));
  }
  if (matches.length !== 1) throw new Error(`expected one dockerd for ${engine.host}, found ${matches.length}`);
  const pid = matches[0]!;
  const nsenter = requireBinary('nsenter', 'util-linux');
  return {
    pid,
    async inMountNamespace(command, args) {
      return (await runCommand(nsenter, [`--target=${pid}`, '--mount', '--', command, ...args])).stdout;
    },
  };
}

export interface EngineSettings {
  /** `registry-mirrors`: where the engine sends Docker Hub pulls first. */
  readonly registryMirror: string;
  /** `features.buildkit`: `docker build` uses BuildKit (the 20.10 CLI asks the daemon which builder to use). */
  readonly buildkit: boolean;
}

/**
 * Writes `settings` into the engine's daemon.json, reloads it (SIGHUP; both are reloadable) and
 * resolves Docker Hub's names to 127.0.0.1 for dockerd. Resolves once `docker info` lists the mirror
 * and the engine's resolver has had time to see the new hosts file (Go re-reads /etc/hosts at most
 * every 5 s).
 */
export async function configureEngine(engine: DockerEngine, settings: EngineSettings): Promise<void> {
  const dockerd = engineProcess(engine);
  const argv = readFileSync(`/proc/${dockerd.pid}/cmdline`, 'utf8').split('\0');
  const at = argv.indexOf('--config-file');
  const configFile = at < 0 ? undefined : argv[at + 1];
  if (!configFile) throw new Error(`dockerd ${dockerd.pid} has no --config-file`);
  const daemonJson = { 'registry-mirrors': [settings.registryMirror], features: { buildkit: settings.buildkit } };
  await writeFile(configFile, `${JSON.stringify(daemonJson, null, 2)}\n`);

  // The host's entries stay (build steps on the host network read this file too); Docker Hub's go to loopback.
  const hosts = join(dirname(configFile), 'engine-hosts');
  await writeFile(hosts, `${readFileSync('/etc/hosts', 'utf8').trimEnd()}\n127.0.0.1 ${DOCKER_HUB_NAMES.join(' ')}\n`);
  await dockerd.inMountNamespace('mount', ['--bind', hosts, '/etc/hosts']);
  process.kill(dockerd.pid, 'SIGHUP');

  const expected = new URL(settings.registryMirror).href;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { stdout } = await engine.docker(['info', '--format', '{{json .RegistryConfig.Mirrors}}']);
    if ((JSON.parse(stdout) as string[] | null)?.includes(expected)) break;
    if (Date.now() > deadline) throw new Error(`dockerd did not reload ${configFile}: mirrors ${stdout.trim()}`);
    await sleep(200);
  }
  // Go's resolver caches /etc/hosts for 5 s; dockerd may have read the old file just before.
  await sleep(5_500);
}
