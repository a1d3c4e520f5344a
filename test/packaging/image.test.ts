// The container image and the compose stack, built and run on Debian's Docker engine (a private
// dockerd, docker-engine.ts) as a user would, with nothing pulled from outside: the Dockerfile's node
// base and compose's Redis image are stand-ins built here from a debootstrapped Debian rootfs
// (image-build.ts) and tagged with the names the files use, so both files run as they are. Containers
// share the host's network (the engine has no bridge) and listen on free 127.0.0.1 ports; the
// upstream is a loopback docker-registry. The image is built with BuildKit (the engine's
// features.buildkit); the Dockerfile also builds with the classic builder, only slower on vfs.
//
// Docker Hub fallback: `docker pull hello:1` asks the engine's registry mirror (the containerised
// ocimirror) first and, if that fails, registry-1.docker.io. The engine resolves Docker Hub's names to
// 127.0.0.1 in its own mount namespace (image-build-engine.ts), so the fallback can only reach
// loopback; the pull test also asserts that dockerd never tried another endpoint, and the last test
// shows where a failed mirror sends it.
import { readFileSync } from 'node:fs';
import { chown, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { requireBinary } from '../support/binaries.ts';
import { runCommand, type CommandResult } from '../support/command.ts';
import { startDockerEngine, type DockerEngine } from '../support/docker-engine.ts';
import { configureEngine, engineProcess } from '../support/image-build-engine.ts';
import { buildBaseImages, dockerBuild, dockerfileBaseImage, REPO_ROOT } from '../support/image-build.ts';
import { buildImage, pushImage, skopeoCopy, skopeoInspect, type BuiltImage } from '../support/images.ts';
import { portOutsideEphemeralRange } from '../support/ports.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const IMAGE = 'ocimirror:dev';
const COMPOSE_FILE = join(REPO_ROOT, 'deploy', 'compose.yaml');
const compose = parse(readFileSync(COMPOSE_FILE, 'utf8')) as {
  services: Record<string, { image: string; command?: string[] }>;
};
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let work: string;
let upstream: RunningRegistry;
let hello: BuiltImage;
let engine: DockerEngine;
/** The port of the mirror run from the image; the engine's registry-mirrors points at it. */
let mirrorPort: number;

beforeAll(async () => {
  work = await makeTempDir('packaging-test');
  upstream = await startRegistry();
  hello = await buildImage(join(work, 'hello'), {
    tag: '1',
    layers: [{ files: { 'hello.txt': 'pulled through the containerised ocimirror\n' } }, { randomBytes: 256 * 1024, seed: 'packaging' }],
  });
  await pushImage(hello, upstream, 'library/hello:1');
  mirrorPort = await portOutsideEphemeralRange();
  engine = await startDockerEngine();
  await configureEngine(engine, { registryMirror: `http://127.0.0.1:${mirrorPort}`, buildkit: true });
  await buildBaseImages(engine, { node: dockerfileBaseImage(), redis: compose.services.redis!.image });
  await dockerBuild(engine, { context: REPO_ROOT, dockerfile: join(REPO_ROOT, 'deploy', 'Dockerfile'), tag: IMAGE });
}, 600_000);

afterAll(async () => {
  await engine?.dispose();
  await upstream?.dispose();
  if (work) await removeTempDir(work);
}, 120_000);

/** A mirror config as an operator writes it: the loopback registry stands in for Docker Hub. */
function mirrorConfig(extra: Record<string, unknown> = {}): string {
  return stringify({
    listen: '0.0.0.0:5000', // moved by OCIMIRROR_LISTEN below, as the image's health check expects
    dataDir: '/var/lib/ocimirror',
    admin: false,
    hosted: { namespaces: ['lab'] },
    upstreams: [{ name: 'docker.io', url: upstream.url, aliases: ['docker.io', 'registry-1.docker.io'], default: true }],
    ...extra,
  });
}

async function inspect(container: string, format: string): Promise<string> {
  return (await engine.docker(['inspect', '--format', format, container])).stdout.trim();
}

/** Waits for the image's HEALTHCHECK to report healthy; the error carries the probe log and the container's output. */
async function waitHealthy(container: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await inspect(container, '{{.State.Health.Status}}');
    if (status === 'healthy') return;
    if (Date.now() > deadline || (await inspect(container, '{{.State.Running}}')) !== 'true') {
      const probes = await inspect(container, '{{json .State.Health}}');
      const logs = await engine.docker(['logs', '--tail', '30', container]).catch((e: Error) => ({ stdout: '', stderr: e.message }));
      throw new Error(`${container} is ${status}, not healthy: ${probes}\n${logs.stdout}${logs.stderr}`);
    }
    await sleep(500);
  }
}

/** The mirror's access-log lines (pino JSON on stdout) for requests whose path contains `part`. */
async function accessLog(container: string, part: string): Promise<Array<{ method: string; path: string; status: number }>> {
  const { stdout } = await engine.docker(['logs', container]);
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string; method: string; path: string; status: number })
    .filter((line) => line.msg === 'request' && line.path.includes(part));
}

describe('the image (deploy/Dockerfile)', () => {
  const container = 'ocimirror-image';

  beforeAll(async () => {
    const config = join(work, 'image-config.yaml');
    await writeFile(config, mirrorConfig());
    // --health-interval: the image's 30 s interval would make the first probe wait 30 s; the probe
    // itself (the HEALTHCHECK command) is the image's.
    await engine.docker([
      'run', '--detach', '--name', container, '--network', 'host',
      '--env', `OCIMIRROR_LISTEN=127.0.0.1:${mirrorPort}`,
      '--volume', `${config}:/etc/ocimirror/config.yaml:ro`,
      '--health-interval', '1s',
      IMAGE,
    ]);
  }, 60_000);

  it('turns healthy, runs as UID 10001 and has ocimirror on PATH', async () => {
    await waitHealthy(container);
    expect(await inspect(container, '{{.Config.User}}')).toBe('10001:10001');
    expect((await engine.docker(['exec', container, 'id', '-u'])).stdout.trim()).toBe('10001');
    expect((await engine.docker(['exec', container, 'ocimirror', 'version'])).stdout.trim()).toBe(VERSION);
    expect((await engine.docker(['exec', container, 'sh', '-c', 'command -v ocimirror'])).stdout.trim()).toBe('/usr/local/bin/ocimirror');
    // The data volume the image declares, owned by its user.
    expect((await engine.docker(['exec', container, 'stat', '-c', '%u:%g', '/var/lib/ocimirror'])).stdout.trim()).toBe('10001:10001');
  }, 120_000);

  it('serves a pull to skopeo', async () => {
    const ref = `docker://127.0.0.1:${mirrorPort}/library/hello:1`;
    expect((await skopeoInspect(ref)).Digest).toBe(hello.manifestDigest);
    // skopeo checks every blob's digest on the way into the layout.
    await skopeoCopy(ref, `oci:${join(work, 'pulled')}:1`);
    expect(await accessLog(container, '/library/hello/manifests/1')).toContainEqual(expect.objectContaining({ method: 'GET', status: 200 }));
  }, 60_000);

  it('serves `docker pull` of a Docker Hub name through registry-mirrors, without falling back', async () => {
    const before = engine.output().length;
    const pulled = await engine.docker(['pull', 'hello:1']);
    expect(pulled.stdout).toContain(`Digest: ${hello.manifestDigest}`);
    // dockerd logs "Attempting next endpoint for pull after error" before trying registry-1.docker.io.
    expect(engine.output().slice(before)).not.toContain('Attempting next endpoint');
    const blobs = (await accessLog(container, '/library/hello/blobs/')).filter((r) => r.method === 'GET' && r.status === 200);
    expect(blobs.length).toBeGreaterThanOrEqual(hello.layers.length);
    // The layers arrived whole: a container made from the pulled image has the file.
    await engine.docker(['create', '--name', 'hello-check', 'hello:1', '/nothing']);
    expect((await engine.docker(['cp', 'hello-check:/hello.txt', '-'])).stdout).toContain('pulled through the containerised ocimirror');
    await engine.docker(['rm', 'hello-check']);
  }, 60_000);

  it('makes the DNS-spoof certificate the chart README shows (`tls init` with the image\'s default config)', async () => {
    const dir = join(work, 'ocimirror-tls');
    await mkdir(dir);
    await chown(dir, 4242, 4242); // what `--user "$(id -u)"` gives a user's own directory
    await engine.docker([
      'run', '--rm', '--network', 'none', '--user', '4242', '--volume', `${dir}:/var/lib/ocimirror`,
      IMAGE, 'tls', 'init', '--name', 'ocimirror.registry-mirror.svc', '--ip', '10.96.0.50',
    ]);
    const openssl = requireBinary('openssl', 'openssl');
    const { stdout } = await runCommand(openssl, ['x509', '-in', join(dir, 'tls', 'server.crt'), '-noout', '-ext', 'subjectAltName']);
    for (const name of ['DNS:registry-1.docker.io', 'DNS:ghcr.io', 'DNS:ocimirror.registry-mirror.svc', 'IP Address:10.96.0.50']) expect(stdout).toContain(name);
    expect((await stat(join(dir, 'tls', 'server.key'))).uid).toBe(4242);
  }, 60_000);

  it('with the mirror stopped, docker pull falls back to registry-1.docker.io, which the engine resolves to loopback', async () => {
    const resolved = await engineProcess(engine).inMountNamespace('getent', ['hosts', 'registry-1.docker.io']);
    expect(resolved.split(/\s+/)[0]).toBe('127.0.0.1');
    await engine.docker(['stop', '--time', '30', container]);
    expect(await inspect(container, '{{.State.ExitCode}}')).toBe('0'); // SIGTERM drained and exited cleanly
    const failed = await engine.docker(['pull', 'hello:2']).then(
      () => undefined,
      (error: Error) => error.message,
    );
    expect(failed).toMatch(/127\.0\.0\.1:443/);
    await engine.docker(['rm', '--volumes', container]);
  }, 90_000);
});

describe('compose (deploy/compose.yaml with docker-compose 1.29)', () => {
  const project = 'ocimirror-packaging';
  /** The file `up` runs: compose.yaml merged with the test's override by `docker-compose config`. */
  let stack: string;
  let port: number;
  let redisPort: number;

  const dockerCompose = (files: string[], args: string[]): Promise<CommandResult> =>
    runCommand(requireBinary('docker-compose', 'docker-compose'), ['--project-name', project, ...files.flatMap((f) => ['--file', f]), ...args], {
      timeoutMs: 180_000,
      env: { PATH: process.env.PATH, HOME: work, DOCKER_HOST: engine.host },
    });
  const inStack = (args: string[]) => dockerCompose([stack], args);

  beforeAll(async () => {
    port = await portOutsideEphemeralRange();
    do redisPort = await portOutsideEphemeralRange();
    while (redisPort === port);
    const config = join(work, 'compose-config.yaml');
    await writeFile(config, mirrorConfig({ redis: { url: `redis://127.0.0.1:${redisPort}/0`, keyPrefix: 'ocimirror:' } }));
    // What the test changes, in a second file as users override: the host's network (the engine has
    // no bridge), free ports, the loopback upstream's config, 1 s health probes. Everything else
    // (image names, volumes, depends_on, the health checks' commands, hardening) is the file's.
    // JSON, which is YAML too: compose's YAML 1.1 parser would read a bare `yes` as a boolean.
    const override = join(work, 'compose.test.yaml');
    const overrides = {
      services: {
        ocimirror: {
          network_mode: 'host',
          environment: { OCIMIRROR_LISTEN: `127.0.0.1:${port}` },
          volumes: [`${config}:/etc/ocimirror/config.yaml:ro`],
          healthcheck: { interval: '1s' },
        },
        redis: {
          network_mode: 'host',
          command: [...compose.services.redis!.command!, '--port', String(redisPort), '--bind', '127.0.0.1'],
          healthcheck: { test: ['CMD', 'redis-cli', '-p', String(redisPort), 'ping'], interval: '1s' },
        },
      },
    };
    await writeFile(override, JSON.stringify(overrides, null, 2));
    // An override can add to `ports` but not remove them, and docker-py refuses published ports on
    // the host network: drop them from the merged file (they mean nothing there).
    const merged = parse((await dockerCompose([COMPOSE_FILE, override], ['config'])).stdout) as { services: Record<string, { ports?: unknown }> };
    delete merged.services.ocimirror!.ports;
    stack = join(work, 'compose.merged.yaml');
    await writeFile(stack, JSON.stringify(merged, null, 2));
    // The image compose would build (the same Dockerfile and context) is already here.
    await engine.docker(['tag', IMAGE, compose.services.ocimirror!.image]);
  });

  afterAll(async () => {
    if (stack) await inStack(['down', '--volumes', '--timeout', '30']).catch(() => undefined);
  }, 120_000);

  it('`docker-compose config` accepts the file', async () => {
    const { stdout } = await dockerCompose([COMPOSE_FILE], ['config']);
    const resolved = parse(stdout) as { services: Record<string, unknown> };
    expect(Object.keys(resolved.services).sort()).toEqual(['grafana', 'ocimirror', 'prometheus', 'redis']);
  });

  it('`up` starts Redis and the mirror, serves a pull from Redis-backed metadata, `down` removes it all', async () => {
    await inStack(['up', '--detach', '--no-build']);
    const mirror = (await inStack(['ps', '--quiet', 'ocimirror'])).stdout.trim();
    const redis = (await inStack(['ps', '--quiet', 'redis'])).stdout.trim();
    await waitHealthy(mirror);
    expect(await inspect(redis, '{{.State.Health.Status}}')).toBe('healthy');
    // The hardening the file asks for is in force.
    expect(await inspect(mirror, '{{.HostConfig.ReadonlyRootfs}} {{json .HostConfig.CapDrop}} {{json .HostConfig.SecurityOpt}}')).toBe(
      'true ["ALL"] ["no-new-privileges:true"]',
    );

    const ref = `docker://127.0.0.1:${port}/library/hello:1`;
    await skopeoCopy(ref, `oci:${join(work, 'compose-pulled')}:1`);
    expect((await skopeoInspect(ref)).Digest).toBe(hello.manifestDigest);
    // The tag and manifest records went to the compose Redis.
    const redisCli = requireBinary('redis-cli', 'redis-tools');
    const keys = (await runCommand(redisCli, ['-p', String(redisPort), '--scan', '--pattern', 'ocimirror:*'])).stdout.trim().split('\n');
    expect(keys.filter(Boolean).length).toBeGreaterThan(0);

    await inStack(['down', '--volumes', '--timeout', '30']);
    const label = `label=com.docker.compose.project=${project}`;
    expect((await engine.docker(['ps', '--all', '--quiet', '--filter', label])).stdout.trim()).toBe('');
    expect((await engine.docker(['volume', 'ls', '--quiet', '--filter', label])).stdout.trim()).toBe('');
  }, 180_000);
});
