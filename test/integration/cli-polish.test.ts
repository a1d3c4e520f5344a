// The command line as a new operator meets it, every program real and on loopback: start-up mistakes
// are one line and exit code 2 (never a stack trace); ls, inspect, rm, gc and warm find the mirror
// through the config file serve reads (--config, $OCIMIRROR_CONFIG); `npm start` stops on SIGTERM.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.ts';
import { REPO_ROOT, type CliResult } from '../support/cli.ts';
import { NODE, runOcimirrorWith } from '../support/cli-env.ts';
import { buildImage, pushImage } from '../support/images.ts';
import { startMirrorProcess } from '../support/mirror-process.ts';
import { freePort } from '../support/ports.ts';
import { httpStatus, tcpAccepts } from '../support/probes.ts';
import { startProcess, type ManagedProcess } from '../support/process.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const MAIN = join(REPO_ROOT, 'src/cli/main.ts');
/** A user that owns nothing here (Debian's nobody). */
const NOBODY = 65534;

let work: string;
let registry: RunningRegistry;

beforeAll(async () => {
  work = await makeTempDir('cli-polish');
  registry = await startRegistry();
  const image = await buildImage(join(work, 'alpine'), { tag: '3.8', layers: [{ randomBytes: 32 * 1024, seed: 'cli-polish' }, { files: { 'etc/os-release': 'ID=test\n' } }] });
  await pushImage(image, registry, 'library/alpine:3.8');
}, 300_000);

afterAll(async () => {
  await registry?.dispose();
  if (work) await removeTempDir(work);
});

function upstreams(url = registry.url): ConfigInput['upstreams'] {
  return [{ name: 'docker.io', url, aliases: ['docker.io'], default: true }];
}

async function configFile(name: string, config: ConfigInput): Promise<string> {
  const file = join(work, `${name}.yaml`);
  await writeFile(file, stringify(config));
  return file;
}

/** Exit code 2 and exactly one line on stderr, with no stack trace in it. */
function expectOneLineMistake(result: CliResult, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1);
  expect(result.stderr).toMatch(pattern);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

/** `ocimirror serve` with a free listen port and no admin API unless given. */
function serve(args: string[], options: { uid?: number } = {}): Promise<CliResult> {
  return runOcimirrorWith(['serve', '--listen', '127.0.0.1:0', '--admin-listen', '', ...args], { ...options, timeoutMs: 30_000 });
}

describe('start-up mistakes: one line, exit code 2', () => {
  it('a data dir that is a file', async () => {
    const file = join(work, 'a-file');
    await writeFile(file, 'x');
    expectOneLineMistake(await serve(['--data-dir', file]), /data dir .*a-file is a file, not a directory/);
    expectOneLineMistake(await serve(['--data-dir', join(file, 'data')]), /cannot create data dir .*a part of the path is a file \(ENOTDIR\)/);
  });

  it('a data dir this user may not write or create', async () => {
    // Reachable by everyone (mkdtemp makes 0700 dirs), writable by root only.
    const open = await makeTempDir('cli-polish-open');
    try {
      const dir = join(open, 'roots-only');
      await chmod(open, 0o755);
      await mkdir(dir, { mode: 0o755 });
      expectOneLineMistake(await serve(['--data-dir', dir], { uid: NOBODY }), new RegExp(`data dir ${dir} is not writable by this user \\(uid ${NOBODY}\\): permission denied \\(EACCES\\)`));
      expectOneLineMistake(await serve(['--data-dir', join(dir, 'sub')], { uid: NOBODY }), /cannot create data dir .*permission denied \(EACCES\)/);
    } finally {
      await removeTempDir(open);
    }
  });

  it('a data dir another ocimirror holds: says which process and how to check', async () => {
    const dataDir = join(work, 'held');
    const holder = await startMirrorProcess({ dataDir, upstreams: upstreams() });
    try {
      const pid = holder.process.pid!;
      expectOneLineMistake(await serve(['--data-dir', dataDir]), new RegExp(`data dir ${dataDir} is held by another process: pid ${pid} holds ${dataDir}/metadata.lock\\. Check with \`ps -p ${pid} -o pid,args\``));
    } finally {
      await holder.terminate();
    }
  }, 60_000);

  it('an admin port in use stops the start instead of serving without the admin API', async () => {
    const adminPort = await freePort();
    const first = await startMirrorProcess({ dataDir: join(work, 'admin-first'), admin: { listen: `127.0.0.1:${adminPort}` }, upstreams: upstreams() });
    try {
      const port = await freePort();
      const second = await runOcimirrorWith(['serve', '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`, '--data-dir', join(work, 'admin-second')], { timeoutMs: 30_000 });
      expectOneLineMistake(second, new RegExp(`admin API: cannot listen on 127\\.0\\.0\\.1:${adminPort}: the address is in use .*\\(EADDRINUSE\\); give admin\\.listen`));
      expect(await tcpAccepts(port)).toBe(false);
    } finally {
      await first.terminate();
    }
  }, 60_000);

  it('a bare port, on the command line or in the config file, is refused with the forms that work', async () => {
    expectOneLineMistake(await serve(['--listen', '5000', '--data-dir', join(work, 'bare')]), /--listen "5000" is a bare port: write 127\.0\.0\.1:5000 \(this machine only\) or :5000 \(every interface\)/);
    const file = await configFile('bare-port', { listen: '5000', admin: false, dataDir: join(work, 'bare') });
    const result = await runOcimirrorWith(['serve', '--config', file], { timeoutMs: 30_000 });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('listen: "5000" is a bare port');
  });

  it('an https:// URL for a plain-HTTP upstream is named at start, with the fix', async () => {
    const mirror = await startMirrorProcess({ dataDir: join(work, 'https-plain'), upstreams: upstreams(registry.url.replace('http://', 'https://')) });
    try {
      let line: Record<string, unknown> | undefined;
      for (let i = 0; i < 50 && !line; i++) {
        await sleep(100);
        line = mirror.logs().find((l) => typeof l.msg === 'string' && l.msg.includes('answers plain HTTP'));
      }
      expect(line?.msg).toBe(`upstream "docker.io" answers plain HTTP at ${registry.host}, not HTTPS: write http://${registry.host} as its url`);
      expect(line?.level).toBe(50);
    } finally {
      await mirror.terminate();
    }
  }, 60_000);
});

describe('ls, inspect, rm, gc and warm read the config file serve reads', () => {
  let file: string;
  let mirror: ManagedProcess;

  beforeAll(async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    file = await configFile('served', { listen: `127.0.0.1:${port}`, admin: { listen: `127.0.0.1:${adminPort}` }, dataDir: join(work, 'served-data'), upstreams: upstreams() });
    mirror = startProcess({ command: NODE, args: [MAIN, 'serve', '--config', file], name: 'ocimirror serve', env: { PATH: process.env.PATH } });
    await mirror.waitReady({ http: { url: `http://127.0.0.1:${port}/healthz` } });
  }, 60_000);

  afterAll(async () => {
    await mirror?.stop(10_000);
  });

  it('with --config FILE', async () => {
    const warm = await runOcimirrorWith(['warm', '--config', file, 'alpine:3.8']);
    expect(warm.code, warm.stderr).toBe(0);
    const ls = await runOcimirrorWith(['ls', '--config', file]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^library\/alpine\s+docker\.io\s+1$/m);
    const inspect = await runOcimirrorWith(['inspect', '--config', file, '--image-config', 'alpine:3.8']);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(JSON.parse(inspect.stdout)).toMatchObject({ rootfs: { type: 'layers' } });
    const gc = await runOcimirrorWith(['gc', '--dry-run'], { env: { OCIMIRROR_CONFIG: file } });
    expect(gc.code, gc.stderr).toBe(0);
    const rm = await runOcimirrorWith(['rm', '--config', file, '--dry-run', 'alpine:3.8']);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toMatch(/docker\.io\/library\/alpine:3\.8: would free 4 blobs/);
  }, 120_000);

  it('with $OCIMIRROR_CONFIG, and flags still win', async () => {
    const env = { OCIMIRROR_CONFIG: file };
    const ls = await runOcimirrorWith(['ls', 'library/alpine'], { env });
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^3\.8\s+sha256:/m);
    const warm = await runOcimirrorWith(['warm', 'alpine:3.8'], { env });
    expect(warm.code, warm.stderr).toBe(0);
    const wrong = `http://127.0.0.1:${await freePort()}`;
    const flagged = await runOcimirrorWith(['ls', '--admin', wrong], { env });
    expect(flagged.code).toBe(1);
    expect(flagged.stderr).toContain(`cannot reach the mirror's admin API at ${wrong}`);
  }, 60_000);

  it('a config whose admin API is off, or that cannot be read, is one line and exit code 2', async () => {
    const off = await configFile('admin-off', { admin: false, upstreams: upstreams() });
    expectOneLineMistake(await runOcimirrorWith(['ls', '--config', off]), /turns the admin API off \(admin: false\); turn it on there, or give --admin URL/);
    expectOneLineMistake(await runOcimirrorWith(['gc'], { env: { OCIMIRROR_CONFIG: off } }), /turns the admin API off/);
    expectOneLineMistake(await runOcimirrorWith(['rm', '--config', join(work, 'missing.yaml'), 'alpine:3.8']), /cannot read config file/);
  });

  it('inspect says where the image config went when --config is given no image', async () => {
    const result = await runOcimirrorWith(['inspect', '--config', 'alpine:3.8']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("the image's config document is --image-config");
  });
});

describe('npm start', () => {
  /** The processes under `pid` (children, grandchildren), from /proc. */
  async function descendants(pid: number): Promise<number[]> {
    const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    const children = text.split(' ').filter(Boolean).map(Number);
    return [...children, ...(await Promise.all(children.map(descendants))).flat()];
  }

  it('stops the server on SIGTERM (npm passes the signal to the server itself)', async () => {
    const port = await freePort();
    const file = await configFile('npm-start', { listen: `127.0.0.1:${port}`, admin: false, dataDir: join(work, 'npm-start-data'), upstreams: upstreams() });
    const home = join(work, 'npm-home');
    await mkdir(home, { recursive: true });
    const npm = startProcess({
      command: 'npm',
      args: ['start', '--', '--config', file],
      name: 'npm start',
      cwd: REPO_ROOT,
      env: { PATH: `${join(REPO_ROOT, 'node_modules/.bin')}:${process.env.PATH}`, HOME: home, npm_config_update_notifier: 'false' },
    });
    let left: number[] = [];
    try {
      await npm.waitReady({ http: { url: `http://127.0.0.1:${port}/healthz` } }, 60_000);
      left = await descendants(npm.pid!);
      expect(left.length).toBeGreaterThan(0);
      process.kill(npm.pid!, 'SIGTERM');
      const exit = await npm.exited;
      expect(exit.code).toBe(0);
      let status = await httpStatus(`http://127.0.0.1:${port}/healthz`);
      for (let i = 0; i < 50 && status !== undefined; i++) {
        await sleep(100);
        status = await httpStatus(`http://127.0.0.1:${port}/healthz`);
      }
      expect(status).toBeUndefined();
      left = left.filter((pid) => alive(pid));
      expect(left).toEqual([]);
    } finally {
      // A server npm left behind is this test's to stop.
      for (const pid of left) if (alive(pid)) process.kill(pid, 'SIGKILL');
      await npm.stop();
    }
  }, 120_000);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
