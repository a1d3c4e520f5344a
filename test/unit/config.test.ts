import { writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.ts';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.ts';
import { parseDurationMs, parseSizeBytes } from '../../src/config/units.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const MINIMAL_YAML = `
listen: 0.0.0.0:5000
dataDir: /var/lib/ocimirror
redis:
  url: redis://127.0.0.1:6379
upstreams:
  - name: docker.io
    url: https://registry-1.docker.io
    aliases: [docker.io, index.docker.io, registry-1.docker.io]
    default: true
    tagTtl: 10m
  - name: lab
    url: http://127.0.0.1:5001
    aliases: [lab.example:5001]
`;

/** A config object with one plain upstream plus whatever the test adds to it. */
function upstream(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'lab', url: 'https://lab.example', ...extra };
}

/** The ConfigError thrown by `fn`; fails the test when something else (or nothing) is thrown. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}

let dir: string;

beforeAll(async () => {
  dir = await makeTempDir('config-test');
});

afterAll(async () => {
  await removeTempDir(dir);
});

async function writeConfig(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('loadConfig with the minimal YAML shape', () => {
  let config: Config;

  beforeAll(async () => {
    config = loadConfig({ file: await writeConfig('minimal.yaml', MINIMAL_YAML), env: {}, cwd: dir });
  });

  it('reads listen, dataDir and redis.url', () => {
    expect(config.listen).toEqual(['0.0.0.0:5000']);
    expect(config.dataDir).toBe('/var/lib/ocimirror');
    expect(config.redis?.url).toBe('redis://127.0.0.1:6379');
  });

  it('reads each upstream with its name, url, aliases and default flag', () => {
    expect(config.upstreams.map((u) => u.name)).toEqual(['docker.io', 'lab']);
    const [hub, lab] = config.upstreams;
    expect(hub).toMatchObject({
      name: 'docker.io',
      url: 'https://registry-1.docker.io',
      aliases: ['docker.io', 'index.docker.io', 'registry-1.docker.io'],
      isDefault: true,
    });
    expect(lab).toMatchObject({ name: 'lab', aliases: ['lab.example:5001'], isDefault: false });
  });

  it('converts tagTtl "10m" to 600000 ms', () => {
    expect(config.upstreams[0]!.tagTtlMs).toBe(600_000);
  });

  it('keeps an http:// upstream url as plain http', () => {
    expect(config.upstreams[1]!.url).toBe('http://127.0.0.1:5001');
  });

  it('maps official images (library/) for docker.io only', () => {
    expect(config.upstreams.map((u) => [u.name, u.officialImages])).toEqual([
      ['docker.io', true],
      ['lab', false],
    ]);
  });
});

describe('loadConfig without a file', () => {
  let config: Config;

  beforeAll(() => {
    config = loadConfig({ env: {}, cwd: dir });
  });

  it('listens on 127.0.0.1:5000 and keeps data in ./data (as an absolute path)', () => {
    expect(config.listen).toEqual(['127.0.0.1:5000']);
    expect(isAbsolute(config.dataDir)).toBe(true);
    expect(config.dataDir).toBe(join(dir, 'data'));
  });

  it('has no redis', () => {
    expect(config.redis).toBeUndefined();
  });

  it('mirrors the five public registries, with docker.io the default', () => {
    expect(config.upstreams.map((u) => u.name)).toEqual(['docker.io', 'registry.k8s.io', 'ghcr.io', 'quay.io', 'gcr.io']);
    expect(config.upstreams.filter((u) => u.isDefault).map((u) => u.name)).toEqual(['docker.io']);
    const byName = new Map(config.upstreams.map((u) => [u.name, u]));
    expect(byName.get('docker.io')!.aliases).toEqual(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
    expect(byName.get('registry.k8s.io')!.aliases).toContain('k8s.gcr.io');
    for (const u of config.upstreams) expect(u.url).toMatch(/^https:\/\//);
  });

  it('maps official images for docker.io only', () => {
    expect(config.upstreams.filter((u) => u.officialImages).map((u) => u.name)).toEqual(['docker.io']);
  });
});

describe('environment overrides', () => {
  it('OCIMIRROR_LISTEN, OCIMIRROR_DATA_DIR and OCIMIRROR_REDIS_URL win over the file', async () => {
    const file = await writeConfig('env.yaml', MINIMAL_YAML);
    const config = loadConfig({
      file,
      cwd: dir,
      env: {
        OCIMIRROR_LISTEN: '127.0.0.1:6000, [::1]:6000',
        OCIMIRROR_DATA_DIR: 'cache',
        OCIMIRROR_REDIS_URL: 'redis://127.0.0.1:6380/2',
      },
    });
    expect(config.listen).toEqual(['127.0.0.1:6000', '[::1]:6000']);
    expect(config.dataDir).toBe(join(dir, 'cache'));
    expect(config.redis?.url).toBe('redis://127.0.0.1:6380/2');
  });

  it('OCIMIRROR_REDIS_URL turns on redis when the config has none', () => {
    const config = loadConfig({ cwd: dir, env: { OCIMIRROR_REDIS_URL: 'redis://127.0.0.1:6379' } });
    expect(config.redis).toMatchObject({ url: 'redis://127.0.0.1:6379' });
    expect(config.redis!.keyPrefix.length).toBeGreaterThan(0);
  });

  it('OCIMIRROR_CONFIG names the file to read', async () => {
    const file = await writeConfig('from-env.yaml', MINIMAL_YAML);
    const config = loadConfig({ cwd: dir, env: { OCIMIRROR_CONFIG: file } });
    expect(config.upstreams.map((u) => u.name)).toEqual(['docker.io', 'lab']);
  });

  it('an explicit file wins over OCIMIRROR_CONFIG', async () => {
    const file = await writeConfig('explicit.yaml', 'upstreams:\n  - name: only\n    url: https://only.example\n');
    const other = await writeConfig('ignored.yaml', MINIMAL_YAML);
    const config = loadConfig({ file, cwd: dir, env: { OCIMIRROR_CONFIG: other } });
    expect(config.upstreams.map((u) => u.name)).toEqual(['only']);
  });

  it('a bad value from the environment is a ConfigError naming the field', () => {
    const err = configError(() => loadConfig({ cwd: dir, env: { OCIMIRROR_REDIS_URL: 'http://127.0.0.1:6379' } }));
    expect(err.message).toContain('redis.url');
  });
});

describe('invalid configs are ConfigErrors that name the field', () => {
  it('a bad duration', () => {
    const err = configError(() => parseConfig({ upstreams: [upstream({ tagTtl: '10 minutes please' })] }, { env: {} }));
    expect(err.message).toContain('upstreams.0.tagTtl');
  });

  it('a bad top-level duration', () => {
    const err = configError(() => parseConfig({ shutdownGrace: '-5s' }, { env: {} }));
    expect(err.message).toContain('shutdownGrace');
  });

  it('an upstream url with a scheme other than http(s)', () => {
    const err = configError(() => parseConfig({ upstreams: [upstream({ url: 'ftp://lab.example' })] }, { env: {} }));
    expect(err.message).toContain('upstreams.0.url');
  });

  it('an upstream url with a path', () => {
    const err = configError(() => parseConfig({ upstreams: [upstream({ url: 'https://lab.example/v2/' })] }, { env: {} }));
    expect(err.message).toContain('upstreams.0.url');
  });

  // BUG: zod 4 keeps running the later .refine() after .url() failed, and that refine calls new URL(u),
  // which throws a bare TypeError("Invalid URL") out of parseConfig (src/config/schema.ts, upstream.url).
  // Reached by the commonest slip of all, a url without its scheme.
  it('an upstream url that is not a URL at all (e.g. no scheme)', () => {
    for (const url of ['registry.example.com', 'not a url']) {
      const err = configError(() => parseConfig({ upstreams: [upstream({ url })] }, { env: {} }));
      expect(err.message).toContain('upstreams.0.url');
    }
  });

  it('a redis url that is not redis://', () => {
    const err = configError(() => parseConfig({ redis: { url: 'http://127.0.0.1:6379' } }, { env: {} }));
    expect(err.message).toContain('redis.url');
  });

  it('an unknown top-level key', () => {
    const err = configError(() => parseConfig({ upstream: [] }, { env: {} }));
    expect(err.message).toContain('"upstream"');
  });

  it('an unknown key in an upstream', () => {
    const err = configError(() => parseConfig({ upstreams: [upstream({ tagTTL: '10m' })] }, { env: {} }));
    expect(err.message).toContain('upstreams.0');
    expect(err.message).toContain('tagTTL');
  });

  it('two default upstreams', () => {
    const err = configError(() =>
      parseConfig(
        { upstreams: [upstream({ name: 'a', url: 'https://a.example', default: true }), upstream({ name: 'b', url: 'https://b.example', default: true })] },
        { env: {} },
      ),
    );
    expect(err.message).toContain('upstreams');
    expect(err.message).toContain('default');
  });

  it('one alias on two upstreams (compared case-insensitively)', () => {
    const err = configError(() =>
      parseConfig(
        {
          upstreams: [
            upstream({ name: 'a', url: 'https://a.example', aliases: ['mirror.example'] }),
            upstream({ name: 'b', url: 'https://b.example', aliases: ['Mirror.Example'] }),
          ],
        },
        { env: {} },
      ),
    );
    expect(err.message).toContain('upstreams');
    expect(err.message).toContain('mirror.example');
  });

  it('one name on two upstreams', () => {
    const err = configError(() => parseConfig({ upstreams: [upstream({ url: 'https://a.example' }), upstream({ url: 'https://b.example' })] }, { env: {} }));
    expect(err.message).toContain('upstreams');
    expect(err.message).toContain('"lab"');
  });

  it('an empty OCIMIRROR_LISTEN', () => {
    const err = configError(() => loadConfig({ cwd: dir, env: { OCIMIRROR_LISTEN: ' , ' } }));
    expect(err.message).toContain('listen');
  });

  it('an alias that is not a host name', () => {
    const err = configError(() => parseConfig({ upstreams: [upstream({ aliases: ['https://lab.example'] })] }, { env: {} }));
    expect(err.message).toContain('upstreams.0.aliases');
  });

  it('a password without a username', () => {
    const err = configError(() => parseConfig({ upstreams: [upstream({ credentials: { password: 'pw' } })] }, { env: {} }));
    expect(err.message).toContain('upstreams.0.credentials');
    expect(err.message).toContain('username');
  });

  it('passwordEnv naming an unset variable', () => {
    const err = configError(() =>
      parseConfig({ upstreams: [upstream({ credentials: { username: 'u', passwordEnv: 'LAB_PASSWORD' } })] }, { env: {} }),
    );
    expect(err.message).toContain('upstreams.0.credentials');
    expect(err.message).toContain('LAB_PASSWORD');
  });

  it('passwordFile naming a missing file', () => {
    const err = configError(() =>
      parseConfig({ upstreams: [upstream({ credentials: { username: 'u', passwordFile: 'no-such-file' } })] }, { env: {}, cwd: dir }),
    );
    expect(err.message).toContain('upstreams.0.credentials');
    expect(err.message).toContain('no-such-file');
  });

  it('a YAML file that is not a mapping', async () => {
    const file = await writeConfig('list.yaml', '- listen\n- dataDir\n');
    const err = configError(() => loadConfig({ file, env: {}, cwd: dir }));
    expect(err.message).toContain(file);
    expect(err.message).toContain('mapping');
  });

  it('a file that is not valid YAML', async () => {
    const file = await writeConfig('broken.yaml', 'upstreams: [\n  - name: "unterminated\n');
    const err = configError(() => loadConfig({ file, env: {}, cwd: dir }));
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/YAML/);
  });

  it('a config file that does not exist', () => {
    const err = configError(() => loadConfig({ file: 'missing.yaml', env: {}, cwd: dir }));
    expect(err.message).toContain(join(dir, 'missing.yaml'));
  });

  it('reports every problem at once', () => {
    const err = configError(() => parseConfig({ dataDir: '', upstreams: [upstream({ tagTtl: 'soon' })] }, { env: {} }));
    expect(err.message).toContain('dataDir');
    expect(err.message).toContain('upstreams.0.tagTtl');
  });
});

describe('credentials', () => {
  const SECRET = 's3cr3t-Pa55word-value';

  it('resolve a password from passwordEnv', () => {
    const config = parseConfig(
      { upstreams: [upstream({ credentials: { username: 'robot', passwordEnv: 'LAB_PASSWORD' } })] },
      { env: { LAB_PASSWORD: SECRET } },
    );
    const creds = config.upstreams[0]!.credentials;
    expect(creds?.kind).toBe('basic');
    if (creds?.kind !== 'basic') return;
    expect(creds.username).toBe('robot');
    expect(creds.password.reveal()).toBe(SECRET);
  });

  it('resolve a password from passwordFile (relative to cwd, trailing newline dropped)', async () => {
    await writeFile(join(dir, 'password.txt'), `${SECRET}\n`);
    const config = parseConfig(
      { upstreams: [upstream({ credentials: { username: 'robot', passwordFile: 'password.txt' } })] },
      { env: {}, cwd: dir },
    );
    const creds = config.upstreams[0]!.credentials;
    expect(creds?.kind === 'basic' && creds.password.reveal()).toBe(SECRET);
  });

  it('resolve a token from tokenFile', async () => {
    await writeFile(join(dir, 'token.txt'), `${SECRET}\n`);
    const config = parseConfig({ upstreams: [upstream({ credentials: { tokenFile: join(dir, 'token.txt') } })] }, { env: {} });
    const creds = config.upstreams[0]!.credentials;
    expect(creds?.kind === 'token' && creds.token.reveal()).toBe(SECRET);
  });

  it('resolve a token from tokenEnv', () => {
    const config = parseConfig({ upstreams: [upstream({ credentials: { tokenEnv: 'LAB_TOKEN' } })] }, { env: { LAB_TOKEN: SECRET } });
    const creds = config.upstreams[0]!.credentials;
    expect(creds?.kind === 'token' && creds.token.reveal()).toBe(SECRET);
  });

  it('an upstream without credentials has none', () => {
    const config = parseConfig({ upstreams: [upstream()] }, { env: {} });
    expect(config.upstreams[0]!.credentials).toBeUndefined();
  });

  it('never appear in JSON.stringify or util.inspect of the config', async () => {
    await writeFile(join(dir, 'token-2.txt'), `${SECRET}-token\n`);
    const config = parseConfig(
      {
        upstreams: [
          upstream({ name: 'a', url: 'https://a.example', default: true, credentials: { username: 'robot', password: `${SECRET}-inline` } }),
          upstream({ name: 'b', url: 'https://b.example', credentials: { username: 'robot', passwordEnv: 'B_PASSWORD' } }),
          upstream({ name: 'c', url: 'https://c.example', credentials: { tokenFile: 'token-2.txt' } }),
        ],
      },
      { env: { B_PASSWORD: `${SECRET}-env` }, cwd: dir },
    );
    expect(config.upstreams.map((u) => u.credentials?.kind)).toEqual(['basic', 'basic', 'token']);
    for (const text of [JSON.stringify(config), inspect(config, { depth: 10 }), inspect(config, { depth: 10, showHidden: true })]) {
      expect(text).not.toContain(SECRET);
    }
  });
});

describe('the config object', () => {
  it('is deeply frozen', () => {
    const config = loadConfig({ env: {}, cwd: dir });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.upstreams)).toBe(true);
    expect(Object.isFrozen(config.upstreams[0])).toBe(true);
    expect(Object.isFrozen(config.upstreams[0]!.aliases)).toBe(true);
    expect(Object.isFrozen(config.listen)).toBe(true);
    expect(() => {
      (config as { dataDir: string }).dataDir = '/elsewhere';
    }).toThrow(TypeError);
    expect(() => {
      (config.upstreams[0]!.aliases as string[]).push('evil.example');
    }).toThrow(TypeError);
    expect(config.dataDir).toBe(join(dir, 'data'));
  });

  it('a single upstream is the default even without default: true', () => {
    const config = parseConfig({ upstreams: [upstream()] }, { env: {} });
    expect(config.upstreams[0]!.isDefault).toBe(true);
  });

  it('aliases default to the name and the url host, lower-cased', () => {
    const config = parseConfig({ upstreams: [upstream({ name: 'Lab', url: 'https://Registry.Lab.Example:8443' })] }, { env: {} });
    expect(config.upstreams[0]!.aliases).toEqual(['lab', 'registry.lab.example:8443']);
  });

  it('officialImages can be turned on for another upstream', () => {
    const config = parseConfig({ upstreams: [upstream({ officialImages: true })] }, { env: {} });
    expect(config.upstreams[0]!.officialImages).toBe(true);
  });
});

describe('units', () => {
  it.each([
    ['10m', 600_000],
    ['30s', 30_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['1.5h', 5_400_000],
    ['2d', 172_800_000],
    [' 10M ', 600_000],
    ['90', 90_000],
    [90, 90_000],
    [0, 0],
  ] as const)('duration %j is %d ms', (input, ms) => {
    expect(parseDurationMs(input)).toBe(ms);
  });

  it.each(['', '10x', 'm', '-5s', '10m5', '10 m', 'soon', -1, Number.NaN, Number.POSITIVE_INFINITY])('duration %j is rejected', (input) => {
    expect(parseDurationMs(input)).toBeUndefined();
  });

  it.each([
    ['50GiB', 50 * 1024 ** 3],
    ['512MB', 512e6],
    ['512MiB', 512 * 1024 ** 2],
    ['1.5KiB', 1536],
    ['100', 100],
    [4096, 4096],
  ] as const)('size %j is %d bytes', (input, bytes) => {
    expect(parseSizeBytes(input)).toBe(bytes);
  });

  it.each(['', 'lots', '10XB', '-1GiB', -1])('size %j is rejected', (input) => {
    expect(parseSizeBytes(input)).toBeUndefined();
  });

  it('cache.maxSize in the config is converted to bytes', () => {
    expect(parseConfig({ cache: { maxSize: '2GiB' } }, { env: {} }).cache.maxSizeBytes).toBe(2 * 1024 ** 3);
  });
});

describe('TLS listen override', () => {
  it('takes OCIMIRROR_TLS_LISTEN as a comma-separated list', async () => {
    const { loadConfig } = await import('../../src/config/load.ts');
    const config = loadConfig({ env: { OCIMIRROR_TLS_LISTEN: '127.0.0.1:8443, 127.0.0.1:9443' } });
    expect(config.tls.listen).toEqual(['127.0.0.1:8443', '127.0.0.1:9443']);
  });
});
