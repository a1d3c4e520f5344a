// Loop detection (Via marker, self-referencing upstreams) and the config keys of DNS-spoof mode.
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import type { AppEnv } from '../../src/http/env.ts';
import { errorResponse } from '../../src/http/error-response.ts';
import { loopGuard } from '../../src/http/loop-guard.ts';
import { selfReferences } from '../../src/config/self-reference.ts';
import { carriesOwnVia, viaHeader } from '../../src/upstream/loop.ts';

describe('the Via marker', () => {
  it('is found among other hops and nowhere else', () => {
    expect(viaHeader('abc123')).toBe('1.1 ocimirror-abc123');
    expect(carriesOwnVia('1.1 ocimirror-abc123', 'abc123')).toBe(true);
    expect(carriesOwnVia('1.0 fred, 1.1 ocimirror-abc123 (ocimirror)', 'abc123')).toBe(true);
    expect(carriesOwnVia('1.1 ocimirror-other', 'abc123')).toBe(false);
    expect(carriesOwnVia('1.1 ocimirror-abc1234', 'abc123')).toBe(false);
    expect(carriesOwnVia(undefined, 'abc123')).toBe(false);
  });

  it('makes the app answer 508 with an OCI error instead of proxying', async () => {
    const app = new Hono<AppEnv>();
    app.use('/v2/*', loopGuard({ instanceId: 'abc123' }));
    app.get('/v2/*', (c) => c.text('proxied'));
    app.onError((err, c) => errorResponse(c, err));
    const looped = await app.request('/v2/library/alpine/manifests/3.8', { headers: { via: '1.1 ocimirror-abc123' } });
    expect(looped.status).toBe(508);
    expect(((await looped.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('UNAVAILABLE');
    const other = await app.request('/v2/library/alpine/manifests/3.8', { headers: { via: '1.1 ocimirror-another-mirror' } });
    expect(await other.text()).toBe('proxied');
  });
});

describe('selfReferences', () => {
  const upstream = (url: string, address?: { host: string; port?: number }) => ({ name: 'u', url, ...(address ? { address } : {}) });
  const LOCAL = ['10.1.2.3', '127.0.0.1', '::1'];

  it.each([
    ['the same address and port', ['127.0.0.1:5000'], upstream('http://127.0.0.1:5000')],
    ['localhost for a loopback listener', ['127.0.0.1:5000'], upstream('http://localhost:5000')],
    ['an IP of this machine under a wildcard listener', ['0.0.0.0:5000'], upstream('http://10.1.2.3:5000')],
    ['any loopback address under a wildcard listener', [':443'], upstream('https://127.0.0.9')],
    ['an address pinning the registry name to the mirror', ['0.0.0.0:443'], upstream('https://registry-1.docker.io', { host: '10.1.2.3' })],
    ['an address with the TLS port', ['192.0.2.1:8443'], upstream('https://registry.example', { host: '192.0.2.1', port: 8443 })],
    ['IPv6 loopback', ['[::1]:5000'], upstream('http://[::1]:5000')],
  ])('finds %s', (_, listen, u) => {
    expect(selfReferences(listen, [u], LOCAL)).toHaveLength(1);
  });

  it.each([
    ['another port', ['127.0.0.1:5000'], upstream('http://127.0.0.1:5001')],
    ['another machine', ['0.0.0.0:443'], upstream('https://192.0.2.7')],
    ['a host name (left to the Via check)', ['0.0.0.0:443'], upstream('https://registry-1.docker.io')],
    ['an address elsewhere', ['0.0.0.0:443'], upstream('https://registry-1.docker.io', { host: '192.0.2.7' })],
    ['another loopback address of a specific listener', ['127.0.0.1:5000'], upstream('http://127.0.0.2:5000')],
  ])('ignores %s', (_, listen, u) => {
    expect(selfReferences(listen, [u], LOCAL)).toEqual([]);
  });

  it('stops start-up through the config loader, TLS listeners included', () => {
    expect(() => parseConfig({ listen: '127.0.0.1:5000', upstreams: [{ name: 'me', url: 'http://127.0.0.1:5000' }] }, { env: {} })).toThrow(/own listen address/);
    expect(() => parseConfig({ tls: { listen: ['127.0.0.1:8443'] }, upstreams: [{ name: 'me', url: 'https://127.0.0.1:8443' }] }, { env: {} })).toThrow(ConfigError);
  });
});

describe('config for DNS-spoof mode', () => {
  const withAddress = (address: unknown, url = 'https://registry-1.docker.io') => parseConfig({ upstreams: [{ name: 'docker.io', url, address }] }, { env: {} }).upstreams[0]!;

  it('parses an upstream address with or without port', () => {
    expect(withAddress('192.0.2.7').address).toEqual({ host: '192.0.2.7' });
    expect(withAddress('192.0.2.7:8443').address).toEqual({ host: '192.0.2.7', port: 8443 });
    expect(withAddress('2001:db8::7').address).toEqual({ host: '2001:db8::7' });
    expect(withAddress('[2001:db8::7]:443').address).toEqual({ host: '2001:db8::7', port: 443 });
  });

  it.each(['registry.example', '192.0.2.7:0', '192.0.2.7:70000', '[registry]:443', '1.2.3'])('refuses the address %s', (address) => {
    expect(() => withAddress(address)).toThrow(/upstreams\.0\.address/);
  });

  it('refuses an address for a URL that already is one', () => {
    expect(() => withAddress('192.0.2.7', 'https://192.0.2.8')).toThrow(/already an address/);
  });

  it('has no TLS listener by default, and the certificate under the data dir', () => {
    const config = parseConfig({ dataDir: '/var/lib/ocimirror' }, { env: {} });
    expect(config.tls).toEqual({ listen: [], certFile: '/var/lib/ocimirror/tls/server.crt', keyFile: '/var/lib/ocimirror/tls/server.key' });
    expect(parseConfig({ tls: { listen: ':443' } }, { env: {} }).tls.listen).toEqual([':443']);
  });
});
