// Which upstream serves a request: containerd's ?ns=, then the Host header (DNS-spoof mode), then a
// path prefix (/v2/<alias>/<repo>/...), then the default entry. Only configured upstreams can be chosen:
// nothing in a request can make the mirror dial a host of its choosing.
import type { UpstreamConfig } from '../config/config.ts';
import { OciError } from '../oci/errors.ts';
import { assertValidName } from '../oci/reference.ts';

export type RouteRule = 'ns' | 'host' | 'path' | 'default';

export interface Routed {
  readonly upstream: UpstreamConfig;
  /** The repository name as the upstream knows it (library/ added for Docker Hub official images). */
  readonly repo: string;
  readonly rule: RouteRule;
  /**
   * The client request's Via header, if any: upstream requests made for it keep its hops, so a request
   * that went through other mirrors and comes back here is recognised (upstream/loop.ts).
   */
  readonly via?: string;
}

export interface RouteInput {
  /** The `ns` query parameter, if any. */
  readonly ns?: string | undefined;
  /** The Host header. */
  readonly host?: string | undefined;
  /** The repository part of the path, possibly starting with an upstream alias. */
  readonly name: string;
}

export class UpstreamTable {
  readonly upstreams: readonly UpstreamConfig[];
  readonly #byAlias = new Map<string, UpstreamConfig>();
  readonly #default?: UpstreamConfig;

  constructor(upstreams: readonly UpstreamConfig[]) {
    this.upstreams = upstreams;
    for (const u of upstreams) {
      for (const alias of u.aliases) this.#byAlias.set(alias, u);
      this.#byAlias.set(u.name.toLowerCase(), u);
    }
    this.#default = upstreams.find((u) => u.isDefault);
  }

  byName(name: string): UpstreamConfig | undefined {
    return this.upstreams.find((u) => u.name === name);
  }

  /** The upstream a host name (with or without port) is an alias of. */
  byHost(host: string): UpstreamConfig | undefined {
    const lower = host.toLowerCase();
    return this.#byAlias.get(lower) ?? this.#byAlias.get(lower.replace(/:(80|443)$/, ''));
  }

  route(input: RouteInput): Routed {
    const [first, ...rest] = input.name.split('/');
    const prefixed = rest.length > 0 && first ? this.byHost(first) : undefined;
    let upstream: UpstreamConfig | undefined;
    let rule: RouteRule;
    if (input.ns !== undefined) {
      upstream = this.byHost(input.ns);
      if (!upstream) throw new OciError('NAME_UNKNOWN', `no upstream is configured for namespace "${input.ns.slice(0, 255)}"`, { detail: { ns: input.ns.slice(0, 255) } });
      rule = 'ns';
    } else if (input.host && (upstream = this.byHost(input.host))) {
      rule = 'host';
    } else if (prefixed) {
      upstream = prefixed;
      rule = 'path';
    } else if (this.#default) {
      upstream = this.#default;
      rule = 'default';
    } else {
      throw new OciError('NAME_UNKNOWN', 'no upstream matches: use ?ns=<registry>, a path prefix like /v2/<registry>/<repo>, or configure a default upstream');
    }
    // A path prefix naming the chosen upstream is stripped (containerd's override_path mirrors send it with ns).
    let repo = prefixed === upstream ? rest.join('/') : input.name;
    assertValidName(repo);
    if (upstream.officialImages && !repo.includes('/')) repo = `library/${repo}`;
    return { upstream, repo, rule };
  }
}
