// Where an upstream may send the mirror (upstream/target-policy.ts), the config that refuses credentials
// in an upstream URL, and the Via bound on proxy chains (issue 14, items 3 and 7).
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { UpstreamUnavailableError } from '../../src/upstream/errors.ts';
import { RegistryClient } from '../../src/upstream/registry-client.ts';
import { addressClass, REFUSED_TARGET, TargetPolicy } from '../../src/upstream/target-policy.ts';

describe('addressClass', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd00::5', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['172.32.0.1', 'public'],
    ['8.8.8.8', 'public'],
    ['2001:db8::1', 'public'],
  ])('%s is %s', (ip, kind) => {
    expect(addressClass(ip)).toBe(kind);
  });
});

describe('TargetPolicy', () => {
  const upstream = (url: string, extra: { address?: { host: string }; allowPrivateRedirects?: boolean } = {}) => ({ name: 'u', url, allowPrivateRedirects: false, ...extra });
  const noDns = async () => {
    throw new Error('no DNS in unit tests');
  };

  it('allows public addresses, and private ones only of the kind the upstream lives in', async () => {
    const publicUpstream = new TargetPolicy(upstream('https://203.0.113.7'), { resolve: noDns });
    expect(await publicUpstream.allows('198.51.100.1')).toBe(true);
    for (const ip of ['127.0.0.1', '169.254.169.254', '10.0.0.6', '::1', '0.0.0.0']) expect(await publicUpstream.allows(ip)).toBe(false);
    const lab = new TargetPolicy(upstream('http://10.0.0.5:5000'), { resolve: noDns });
    expect(await lab.allows('10.0.0.6')).toBe(true);
    expect(await lab.allows('169.254.169.254')).toBe(false);
    const local = new TargetPolicy(upstream('http://localhost:5000'), { resolve: noDns });
    expect(await local.allows('127.0.0.2')).toBe(true);
    expect(await local.allows('192.168.0.1')).toBe(false);
  });

  it('takes where the upstream lives from its address, else from what its name resolves to', async () => {
    const pinned = new TargetPolicy(upstream('https://registry.example', { address: { host: '192.168.7.7' } }), { resolve: noDns });
    expect(await pinned.allows('192.168.7.8')).toBe(true);
    const resolved = new TargetPolicy(upstream('https://registry.example'), { resolve: async () => ['10.9.9.9'] });
    expect(await resolved.allows('10.1.1.1')).toBe(true);
    expect(await resolved.allows('127.0.0.1')).toBe(false);
  });

  it('allows everything with allowPrivateRedirects', async () => {
    const open = new TargetPolicy(upstream('https://203.0.113.7', { allowPrivateRedirects: true }), { resolve: noDns });
    expect(await open.allows('169.254.169.254')).toBe(true);
  });

  it('refuses file: and other schemes, and literal addresses it does not allow', async () => {
    const policy = new TargetPolicy(upstream('https://203.0.113.7'), { resolve: noDns });
    await expect(policy.check(new URL('file:///etc/passwd'), 'a redirect')).rejects.toThrow(/file: URL/);
    await expect(policy.check(new URL('http://169.254.169.254/latest/meta-data/'), 'a redirect')).rejects.toSatisfy(
      (err: unknown) => err instanceof UpstreamUnavailableError && err.reason === 'refused' && /allowPrivateRedirects/.test(err.message),
    );
    await expect(policy.check(new URL('https://[::1]:8443/token'), 'its token realm')).rejects.toThrow(/loopback address ::1/);
    await expect(policy.check(new URL('https://cdn.example/blob'), 'a redirect')).resolves.toBeUndefined();
  });

  it('through an outbound proxy (which resolves names itself), checks names before sending: refused only when every address is', async () => {
    const names: Record<string, string[]> = { 'cdn.example': ['198.51.100.9', '10.0.0.1'], 'metadata.example': ['169.254.169.254'] };
    const resolve = async (host: string) => {
      if (!names[host]) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      return names[host];
    };
    const proxied = new TargetPolicy(upstream('https://203.0.113.7'), { resolve, proxied: true });
    await expect(proxied.check(new URL('https://metadata.example/latest'), 'a redirect')).rejects.toThrow(/metadata\.example, which resolves to link-local address 169\.254\.169\.254/);
    await expect(proxied.check(new URL('https://localhost:5001/'), 'a redirect')).rejects.toThrow(/loopback address 127\.0\.0\.1/);
    await expect(proxied.check(new URL('https://cdn.example/blob'), 'a redirect')).resolves.toBeUndefined();
    // Names this machine cannot resolve are the proxy's to resolve (sites behind a proxy often have no outside DNS).
    await expect(proxied.check(new URL('https://elsewhere.example/blob'), 'a redirect')).resolves.toBeUndefined();
    const direct = new TargetPolicy(upstream('https://203.0.113.7'), { resolve });
    await expect(direct.check(new URL('https://metadata.example/latest'), 'a redirect')).resolves.toBeUndefined();
  });

  it('resolves names at connect time and keeps only allowed addresses', async () => {
    const names: Record<string, string[]> = { 'cdn.example': ['198.51.100.9', '10.0.0.1'], 'metadata.example': ['169.254.169.254'] };
    const policy = new TargetPolicy(upstream('https://203.0.113.7'), { resolve: async (host) => names[host] ?? [] });
    const lookup = (host: string, all: boolean) =>
      new Promise<{ err: NodeJS.ErrnoException | null; address: unknown }>((resolve) => policy.lookup(host, { all }, (err, address) => resolve({ err, address })));
    expect(await lookup('cdn.example', false)).toEqual({ err: null, address: '198.51.100.9' });
    expect((await lookup('cdn.example', true)).address).toEqual([{ address: '198.51.100.9', family: 4 }]);
    const refused = await lookup('metadata.example', false);
    expect(refused.err?.code).toBe(REFUSED_TARGET);
    expect(refused.err?.message).toMatch(/link-local address 169\.254\.169\.254/);
  });
});

describe('an upstream URL with credentials in it', () => {
  it('is refused at config load, naming credentials:', () => {
    const load = () => parseConfig({ upstreams: [{ name: 'lab', url: 'https://puller:secret@registry.example' }] }, { env: {} });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/upstreams\.0\.url: must not carry a user name or password: give them under credentials:/);
  });
});

describe('a request that already passed many proxies', () => {
  it('is refused before anything is sent upstream', async () => {
    const config = parseConfig({ upstreams: [{ name: 'lab', url: 'http://127.0.0.1:9' }] }, { env: {} });
    const client = new RegistryClient(config.upstreams[0]!, { timeouts: { connectMs: 1_000, responseMs: 1_000, idleMs: 1_000 }, retries: 0 });
    const via = Array.from({ length: 20 }, (_, i) => `1.1 mirror-${i}`).join(', ');
    try {
      await expect(client.request({ method: 'GET', path: '/v2/', repo: 'x', via })).rejects.toSatisfy(
        (err: unknown) => err instanceof UpstreamUnavailableError && err.reason === 'refused' && /passed 20 proxies/.test(err.message),
      );
    } finally {
      client.close();
    }
  });
});
