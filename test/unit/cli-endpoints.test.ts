// Where the operator commands find the running mirror: --admin/--server, --config, $OCIMIRROR_ADMIN /
// $OCIMIRROR_SERVER, $OCIMIRROR_CONFIG, the defaults — in that order — and the listen forms serve accepts.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHostGuard, wildcardListens } from '../../src/admin/app.ts';
import { adminUrl, listenUrl, serverUrl } from '../../src/cli/endpoints.ts';
import { ConfigError } from '../../src/config/load.ts';
import { listenAddressProblem } from '../../src/config/schema.ts';
import { Hono } from 'hono';
import type { AppEnv } from '../../src/http/env.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

let dir: string;
let file: string;
let off: string;

beforeAll(async () => {
  dir = await makeTempDir('cli-endpoints');
  file = join(dir, 'mirror.yaml');
  await writeFile(file, 'listen: [":6000", "127.0.0.1:6001"]\nadmin: { listen: "[::1]:6002" }\n');
  off = join(dir, 'no-admin.yaml');
  await writeFile(off, 'listen: 127.0.0.2:7000\nadmin: false\n');
});

afterAll(async () => {
  if (dir) await removeTempDir(dir);
});

describe('adminUrl and serverUrl', () => {
  it('default to the addresses serve listens on by default', () => {
    expect(adminUrl({}, {})).toBe('http://127.0.0.1:5001');
    expect(serverUrl({}, {})).toBe('http://127.0.0.1:5000');
  });

  it('read --config: admin.listen and the first listen address, a wildcard reached on 127.0.0.1', () => {
    expect(adminUrl({ config: file }, {})).toBe('http://[::1]:6002');
    expect(serverUrl({ config: file }, {})).toBe('http://127.0.0.1:6000');
  });

  it('rank the flag over --config over the variable over $OCIMIRROR_CONFIG', () => {
    const env = { OCIMIRROR_ADMIN: 'http://10.0.0.1:1/', OCIMIRROR_SERVER: 'http://10.0.0.1:2', OCIMIRROR_CONFIG: off };
    expect(adminUrl({ url: 'http://flag:1/', config: file }, env)).toBe('http://flag:1');
    expect(adminUrl({ config: file }, env)).toBe('http://[::1]:6002');
    expect(adminUrl({}, env)).toBe('http://10.0.0.1:1');
    expect(serverUrl({}, env)).toBe('http://10.0.0.1:2');
    expect(serverUrl({}, { OCIMIRROR_CONFIG: off })).toBe('http://127.0.0.2:7000');
  });

  it('apply the OCIMIRROR_* overrides serve applies to the config', () => {
    expect(adminUrl({ config: file }, { OCIMIRROR_ADMIN_LISTEN: '127.0.0.3:6100' })).toBe('http://127.0.0.3:6100');
  });

  it('say so when the config turns the admin API off, or cannot be read', () => {
    expect(() => adminUrl({ config: off }, {})).toThrow(/turns the admin API off/);
    expect(() => adminUrl({}, { OCIMIRROR_CONFIG: off })).toThrow(ConfigError);
    expect(() => adminUrl({ config: join(dir, 'missing.yaml') }, {})).toThrow(/cannot read config file/);
  });

  it('map every wildcard form to loopback', () => {
    expect(listenUrl(':5001')).toBe('http://127.0.0.1:5001');
    expect(listenUrl('0.0.0.0:5001')).toBe('http://127.0.0.1:5001');
    expect(listenUrl('[::]:5001')).toBe('http://127.0.0.1:5001');
    expect(listenUrl('mirror.lab:5001')).toBe('http://mirror.lab:5001');
  });
});

describe('listen addresses', () => {
  it('refuses a bare port, naming both forms it could mean', () => {
    expect(listenAddressProblem('5000')).toBe('"5000" is a bare port: write 127.0.0.1:5000 (this machine only) or :5000 (every interface)');
  });

  it.each(['127.0.0.1:5000', ':5000', '0.0.0.0:80', '[::1]:5000', 'localhost:5000'])('accepts %s', (text) => {
    expect(listenAddressProblem(text)).toBeUndefined();
  });

  it.each(['5000:', 'mirror', '127.0.0.1:99999', ''])('refuses %j', (text) => {
    expect(listenAddressProblem(text)).toMatch(/not a listen address|bare port/);
  });
});

describe('the admin listener', () => {
  it('warns about the listen addresses that bind every interface', () => {
    expect(wildcardListens([':5001', '0.0.0.0:5002', '[::]:5003', '127.0.0.1:5004', '[::1]:5005', 'mirror.lab:5006'])).toEqual([':5001', '0.0.0.0:5002', '[::]:5003']);
  });

  it('answers only Hosts that name it by loopback or by its own address (DNS rebinding)', async () => {
    const app = new Hono<AppEnv>().use(adminHostGuard(['10.1.2.3:5001'])).get('/', (c) => c.text('ok'));
    const status = async (host: string) => (await app.request('/', { headers: { host } })).status;
    for (const host of ['127.0.0.1:5001', 'localhost:5001', 'LOCALHOST', '[::1]:5001', '127.1.2.3', '10.1.2.3:5001']) expect(await status(host), host).toBe(200);
    for (const host of ['evil.example:5001', 'evil.example', '10.1.2.4:5001', '127.0.0.1.evil.example', 'localhost.evil.example']) expect(await status(host), host).toBe(403);
    const refused = await app.request('/', { headers: { host: 'evil.example' } });
    expect(await refused.json()).toMatchObject({ errors: [{ code: 'DENIED', message: expect.stringContaining('DNS rebinding') }] });
  });
});
