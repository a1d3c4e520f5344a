// What the web UI lets its visitor see and do: exactly what the registry API and the admin API would.
// With client authentication on, the authorizer decides (pull to see a repository, delete to delete a
// hosted tag) and admin actions (drop cached content, garbage collection, tokens) need a user in
// auth.admins. With it off the registry API lets anyone pull and delete hosted tags, and admin actions are
// for a browser on this machine only, as the admin API listens on loopback by default.
import { isIP } from 'node:net';
import type { Principal } from '../auth/authorizer.ts';
import { resourceOf } from '../auth/gate.ts';
import type { AuthAction } from '../config/config.ts';
import type { Target } from '../namespaces/resolve.ts';
import type { RegistryDeps } from '../routes/deps.ts';

export interface UiAccess {
  readonly principal: Principal;
  /** Whether client authentication is on (login, tokens). */
  readonly authOn: boolean;
  may(target: Target, action: AuthAction): boolean;
  /** Dropping cached content, garbage collection, tokens. */
  readonly admin: boolean;
}

export function accessOf(registry: RegistryDeps, principal: Principal, clientAddress: string): UiAccess {
  const auth = registry.auth;
  if (!auth) return { principal, authOn: false, may: () => true, admin: isLoopback(clientAddress) };
  return {
    principal,
    authOn: true,
    may: (target, action) => auth.authorizer.allowed(principal, resourceOf(target), action),
    admin: auth.authorizer.isAdmin(principal),
  };
}

function isLoopback(address: string): boolean {
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  return plain === '::1' || (isIP(plain) === 4 && plain.startsWith('127.'));
}
