// Who may do what (pure): the config's rules over repository names, the scoped tokens' own scopes, and
// what anonymous clients may do (mirrored public content only: never hosted repositories, never an
// upstream marked private — content the mirror fetched with its own credentials).
import type { AuthAction, AuthConfig } from '../config/config.ts';

export type Principal =
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'user'; readonly name: string }
  | { readonly kind: 'token'; readonly name: string; readonly repos: readonly string[]; readonly actions: readonly AuthAction[]; readonly createdAt: number };

/** A repository as the authorizer sees it. */
export interface Resource {
  /** The names a rule may match: as the client wrote it, and canonical (e.g. docker.io/library/alpine). */
  readonly names: readonly string[];
  /** A hosted repository (not an override: overrides answer for mirrored names). */
  readonly hosted: boolean;
  /** Mirrored from an upstream whose content is private. */
  readonly private: boolean;
}

export class Authorizer {
  readonly #config: AuthConfig;
  readonly #rules: { readonly repos: readonly RegExp[]; readonly users: ReadonlySet<string>; readonly groups: ReadonlySet<string>; readonly actions: ReadonlySet<AuthAction> }[];
  readonly #groupsOf = new Map<string, Set<string>>();

  constructor(config: AuthConfig) {
    this.#config = config;
    this.#rules = config.rules.map((r) => ({ repos: r.repos.map(globToRegExp), users: new Set(r.users), groups: new Set(r.groups), actions: new Set(r.actions) }));
    for (const [group, members] of Object.entries(config.groups)) {
      for (const member of members) this.#groupsOf.set(member, (this.#groupsOf.get(member) ?? new Set()).add(group));
    }
  }

  allowed(principal: Principal, resource: Resource, action: AuthAction): boolean {
    if (!resource.hosted && !resource.private && this.#config.anonymous.includes(action)) return true;
    if (principal.kind === 'anonymous') return false;
    if (principal.kind === 'token') return principal.actions.includes(action) && principal.repos.some((glob) => matchesAny(globToRegExp(glob), resource.names));
    const groups = this.#groupsOf.get(principal.name);
    return this.#rules.some(
      (rule) =>
        rule.actions.has(action) &&
        (rule.users.has(principal.name) || [...(groups ?? [])].some((g) => rule.groups.has(g))) &&
        rule.repos.some((glob) => matchesAny(glob, resource.names)),
    );
  }

  isAdmin(principal: Principal): boolean {
    return principal.kind === 'user' && this.#config.admins.includes(principal.name);
  }
}

/** `*` matches within one path component, `**` across components; everything else literally. */
export function globToRegExp(glob: string): RegExp {
  const pattern = glob
    .split('**')
    .map((part) => part.split('*').map((literal) => literal.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*'))
    .join('.*');
  return new RegExp(`^${pattern}$`);
}

function matchesAny(pattern: RegExp, names: readonly string[]): boolean {
  return names.some((n) => pattern.test(n));
}
