// The outbound proxy and CA settings of an upstream (config/proxy.ts, config/load.ts): what the
// environment and `proxy:` / `ca:` resolve to, and the mistakes refused at load.
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const upstreamOf = (upstream: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
  parseConfig({ upstreams: [{ name: 'hub', url: 'https://registry.example', ...upstream }] } as ConfigInput, { env }).upstreams[0]!;

describe('an upstream\'s outbound proxy', () => {
  it('comes from HTTPS_PROXY / HTTP_PROXY / NO_PROXY, the lower-case forms winning, credentials taken out of the URL', () => {
    const u = upstreamOf({}, { HTTPS_PROXY: 'http://upper.example:1', https_proxy: 'http://user:p%40ss@lower.example:3128', HTTP_PROXY: 'plain.example:8080', NO_PROXY: 'a.example', no_proxy: '.internal,10.0.0.0' });
    expect(u.proxy?.https?.url).toBe('http://lower.example:3128');
    expect(u.proxy?.https?.credentials?.username).toBe('user');
    expect(u.proxy?.https?.credentials?.password.reveal()).toBe('p@ss');
    expect(u.proxy?.http).toEqual({ url: 'http://plain.example:8080' });
    expect(u.proxy?.noProxy).toBe('.internal,10.0.0.0');
    expect(JSON.stringify(u)).not.toContain('p@ss');
    expect(JSON.stringify(u)).not.toContain('p%40ss');
  });

  it('is none without those variables, with proxy: false, and for an upstream pinned to an address', () => {
    const env = { HTTPS_PROXY: 'http://proxy.example:3128' };
    expect(upstreamOf({}).proxy).toBeUndefined();
    expect(upstreamOf({ proxy: false }, env).proxy).toBeUndefined();
    expect(upstreamOf({ address: '192.0.2.7' }, env).proxy).toBeUndefined();
  });

  it('given per upstream, carries every scheme and wins over the environment; its password comes from the env or a file', async () => {
    const dir = await makeTempDir('proxy-config');
    try {
      writeFileSync(join(dir, 'pw'), 'from-file\n');
      const u = upstreamOf({ proxy: 'http://proxy.lab:3128' }, { HTTPS_PROXY: 'http://other.example:1', NO_PROXY: 'registry.example' });
      expect(u.proxy).toEqual({ http: { url: 'http://proxy.lab:3128' }, https: { url: 'http://proxy.lab:3128' }, noProxy: '' });
      const fromEnv = upstreamOf({ proxy: { url: 'http://proxy.lab:3128', credentials: { username: 'm', passwordEnv: 'PROXY_PW' } } }, { PROXY_PW: 'from-env' });
      expect(fromEnv.proxy?.https?.credentials?.password.reveal()).toBe('from-env');
      const fromFile = upstreamOf({ proxy: { url: 'http://proxy.lab:3128', credentials: { username: 'm', passwordFile: join(dir, 'pw') } } });
      expect(fromFile.proxy?.http?.credentials?.password.reveal()).toBe('from-file');
    } finally {
      await removeTempDir(dir);
    }
  });

  it.each([
    [{ proxy: 'http://u:p@proxy.lab:3128' }, {}, /upstreams\.0\.proxy: must not carry a user name or password/],
    [{ proxy: 'socks5://proxy.lab:1080' }, {}, /upstreams\.0\.proxy/],
    [{ proxy: { url: 'http://proxy.lab:3128', credentials: { token: 't' } } }, {}, /a proxy takes a username and password, not a token/],
    [{ proxy: { url: 'http://proxy.lab:3128', credentials: { username: 'm', passwordEnv: 'UNSET' } } }, {}, /environment variable UNSET is not set/],
    [{ proxy: 'http://proxy.lab:3128', address: '192.0.2.7' }, {}, /address \(connect here directly\) and proxy exclude each other/],
    [{}, { HTTPS_PROXY: 'socks5://proxy.lab:1080' }, /HTTPS_PROXY.*not an http:\/\/ or https:\/\/ proxy URL/],
  ])('refuses %j (env %j)', (upstream, env, message) => {
    expect(() => upstreamOf(upstream, env)).toThrow(ConfigError);
    expect(() => upstreamOf(upstream, env)).toThrow(message);
  });
});

describe('an upstream\'s ca', () => {
  it('is read from its PEM file at load; an unreadable or non-PEM file is refused', async () => {
    const dir = await makeTempDir('ca-config');
    try {
      const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
      writeFileSync(join(dir, 'ca.crt'), pem);
      writeFileSync(join(dir, 'junk'), 'not a certificate');
      expect(upstreamOf({ ca: join(dir, 'ca.crt') }).ca).toBe(pem);
      expect(() => upstreamOf({ ca: join(dir, 'missing.crt') })).toThrow(/upstreams\.0\.ca: cannot read/);
      expect(() => upstreamOf({ ca: join(dir, 'junk') })).toThrow(/upstreams\.0\.ca: .* holds no PEM certificate/);
    } finally {
      await removeTempDir(dir);
    }
  });
});
