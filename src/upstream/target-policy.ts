// Where an upstream may send the mirror besides its own origin: blob redirects (a CDN) and token realms.
// A registry that answers `Location: http://169.254.169.254/...` or a realm on 127.0.0.1 would otherwise
// make the mirror fetch the cloud metadata service or its own admin API for it (server-side request
// forgery). Such addresses are allowed only when the upstream itself lives in the same kind of network
// (a lab registry on 10.0.0.5 redirecting to a store on 10.0.0.6), or when the operator says so for the
// upstream (`allowPrivateRedirects`). Host names are checked when they are resolved, at connect time,
// so a name that resolves to a private address is caught as well as a literal one. Through an outbound
// proxy the proxy resolves them: then check() resolves them here first (see `proxied`).
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { UpstreamConfig } from '../config/config.ts';
import { UpstreamUnavailableError } from './errors.ts';

export type AddressClass = 'loopback' | 'link-local' | 'private' | 'unspecified' | 'public';

/** What kind of network an IP address belongs to (IPv4-mapped IPv6 addresses as their IPv4 address). */
export function addressClass(ip: string): AddressClass {
  const address = ip.replace(/^\[|\]$/g, '').toLowerCase();
  const mapped = /^(?:0*:)*:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (mapped) return addressClass(mapped[1]!);
  if (isIP(address) === 4) {
    const [a, b] = address.split('.').map(Number) as [number, number];
    if (a === 0) return 'unspecified';
    if (a === 127) return 'loopback';
    if (a === 169 && b === 254) return 'link-local';
    // RFC 1918, shared address space (RFC 6598), multicast and reserved: nothing a CDN lives on.
    if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || a >= 224) return 'private';
    return 'public';
  }
  if (isIP(address) === 6) {
    const words = expandV6(address);
    if (words.every((w) => w === 0)) return 'unspecified';
    if (words.slice(0, 7).every((w) => w === 0) && words[7] === 1) return 'loopback';
    if ((words[0]! & 0xffc0) === 0xfe80) return 'link-local';
    if ((words[0]! & 0xfe00) === 0xfc00 || (words[0]! & 0xff00) === 0xff00) return 'private';
    return 'public';
  }
  throw new TypeError(`not an IP address: ${ip}`);
}

function expandV6(address: string): number[] {
  const [head = '', tail] = address.split('::');
  const part = (text: string) => (text ? text.split(':').map((w) => parseInt(w, 16)) : []);
  const left = part(head);
  const right = tail === undefined ? [] : part(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** Thrown (and given to connect as a lookup error) for a target the policy refuses. */
export const REFUSED_TARGET = 'ERR_OCIMIRROR_REFUSED_TARGET';

type Resolve = (host: string) => Promise<readonly string[]>;

const resolveAll: Resolve = (host) =>
  new Promise((resolve, reject) => dnsLookup(host, { all: true }, (err, addresses: LookupAddress[]) => (err ? reject(err) : resolve(addresses.map((a) => a.address)))));

export class TargetPolicy {
  readonly #upstream: Pick<UpstreamConfig, 'name' | 'url' | 'address' | 'allowPrivateRedirects'>;
  readonly #resolve: Resolve;
  readonly #proxied: boolean;
  #home: Promise<ReadonlySet<AddressClass>> | undefined;

  /**
   * `home`: where the upstream lives, when known better than its address or URL say (tests, whose
   * upstreams all run on loopback; an upstream reached through a local tunnel).
   */
  /**
   * `proxied`: connections may go through an outbound proxy, which resolves host names itself, out of
   * reach of `lookup`.
   */
  constructor(upstream: Pick<UpstreamConfig, 'name' | 'url' | 'address' | 'allowPrivateRedirects'>, options: { resolve?: Resolve; home?: readonly AddressClass[]; proxied?: boolean } = {}) {
    this.#upstream = upstream;
    this.#resolve = options.resolve ?? resolveAll;
    this.#proxied = options.proxied ?? false;
    if (options.home) this.#home = Promise.resolve(new Set<AddressClass>(['public', ...options.home]));
  }

  /**
   * The kinds of network the upstream lives in: its `address`, else its URL's host (an IP, localhost,
   * or what the name resolves to). Public is always allowed.
   */
  home(): Promise<ReadonlySet<AddressClass>> {
    this.#home ??= (async () => {
      const host = this.#upstream.address?.host ?? new URL(this.#upstream.url).hostname.replace(/^\[|\]$/g, '');
      const addresses = isIP(host) ? [host] : host.toLowerCase() === 'localhost' ? ['127.0.0.1'] : await this.#resolve(host).catch(() => []);
      return new Set<AddressClass>(['public', ...addresses.map(addressClass)]);
    })();
    return this.#home;
  }

  /** Whether the mirror may connect to `ip` for this upstream (redirect targets, token realms). */
  async allows(ip: string): Promise<boolean> {
    if (this.#upstream.allowPrivateRedirects) return true;
    return (await this.home()).has(addressClass(ip));
  }

  /**
   * Refuses a URL that is not http(s), or whose host is an IP address the policy refuses; when proxied,
   * also a host name that resolves here to refused addresses only (one that does not resolve here is
   * left to the proxy: sites behind one often cannot resolve outside names).
   */
  async check(url: URL, what: string): Promise<void> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw this.#refused(`${what} is a ${url.protocol} URL`);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) {
      if (!(await this.allows(host))) throw this.#refused(`${what} is ${addressClass(host)} address ${host}`);
      return;
    }
    if (!this.#proxied || this.#upstream.allowPrivateRedirects) return;
    const addresses = host.toLowerCase() === 'localhost' ? ['127.0.0.1'] : await this.#resolve(host).catch(() => []);
    const allowed = await Promise.all(addresses.map((a) => this.allows(a)));
    if (addresses.length > 0 && !allowed.some(Boolean)) throw this.#refused(`${what} is ${host}, which resolves to ${addresses.map((a) => `${addressClass(a)} address ${a}`).join(', ')}`);
  }

  /** A connect-time lookup that resolves a name and keeps only the addresses the policy allows. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.#resolve(hostname).then(
      async (addresses) => {
        const allowed: string[] = [];
        for (const address of addresses) if (await this.allows(address)) allowed.push(address);
        const family = options.family === 4 || options.family === 6 ? options.family : 0;
        const usable = allowed.filter((a) => family === 0 || isIP(a) === family);
        if (usable.length === 0) {
          const refused = addresses.map((a) => `${addressClass(a)} address ${a}`).join(', ') || 'no address';
          callback(Object.assign(new Error(`${hostname} resolves to ${refused}: ${this.#advice()}`), { code: REFUSED_TARGET }), '', 0);
        } else if (options.all) {
          callback(null, usable.map((address) => ({ address, family: isIP(address) })));
        } else {
          callback(null, usable[0]!, isIP(usable[0]!));
        }
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };

  #refused(what: string): UpstreamUnavailableError {
    return new UpstreamUnavailableError(this.#upstream.name, 'refused', `upstream ${this.#upstream.name} sent the mirror elsewhere: ${what}; ${this.#advice()}`);
  }

  #advice(): string {
    return `the mirror follows redirects and token realms to loopback, link-local and private addresses only when the upstream lives in such a network itself, or with allowPrivateRedirects: true on upstream ${this.#upstream.name}`;
  }
}
