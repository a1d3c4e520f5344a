// The start-up half of the loop guard (the run-time half, Via, is upstream/loop.ts): an upstream that is
// one of the mirror's own listen addresses would make every pull proxy to itself.
import { isIP } from 'node:net';
import type { UpstreamConfig } from './config.ts';
import { parseListen } from './listen.ts';

/**
 * Upstreams that are the mirror itself: their address (or URL host, when it is an IP or localhost)
 * and port equal a listen address, or a wildcard listen address on one of this machine's IPs.
 * A host name other than localhost is not resolved here; the Via guard catches those at run time.
 */
export function selfReferences(
  listen: readonly string[],
  upstreams: readonly Pick<UpstreamConfig, 'name' | 'url' | 'address'>[],
  localAddresses: readonly string[],
): string[] {
  const listeners = listen.flatMap((text) => {
    try {
      return [parseListen(text)];
    } catch {
      return []; // reported when the server listens
    }
  });
  const problems: string[] = [];
  for (const u of upstreams) {
    const url = new URL(u.url);
    const host = (u.address?.host ?? url.hostname.replace(/^\[|\]$/g, '')).toLowerCase();
    const port = u.address?.port ?? (url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80);
    const self = listeners.find((l) => l.port === port && sameMachineAddress(l.host.toLowerCase(), host, localAddresses));
    if (self) {
      problems.push(`upstreams: "${u.name}" (${u.address ? `address ${host}:${port}` : u.url}) is this mirror's own listen address ${self.host}:${self.port}`);
    }
  }
  return problems;
}

const WILDCARDS = new Set(['', '0.0.0.0', '::']);

function sameMachineAddress(listenHost: string, target: string, localAddresses: readonly string[]): boolean {
  if (listenHost === target) return true;
  if (WILDCARDS.has(listenHost)) return target === 'localhost' || target === '::1' || (isIP(target) === 4 && target.startsWith('127.')) || localAddresses.includes(target);
  // localhost is served on, and reached through, the usual loopback addresses.
  const localhost = new Set(['localhost', '127.0.0.1', '::1']);
  return (listenHost === 'localhost' || target === 'localhost') && localhost.has(listenHost) && localhost.has(target);
}
