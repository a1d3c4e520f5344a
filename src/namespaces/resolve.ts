// Which source answers /v2/<name>/...: a hosted repository, or an upstream's through the mirror (with
// pushed overrides in front when that upstream allows them). Hosted namespaces are path prefixes; a
// request that names an upstream by `?ns=` or by its Host header (DNS-spoof mode) is the upstream's.
import { OciError } from '../oci/errors.ts';
import { assertValidName } from '../oci/reference.ts';
import { overrideKey } from '../store/hosted-index.ts';
import type { RouteInput, Routed, UpstreamTable } from '../upstream/route.ts';

export interface HostedTarget {
  readonly kind: 'hosted';
  /** The repository name as the client wrote it, and the hosted index key. */
  readonly name: string;
  readonly key: string;
}

export interface MirroredTarget {
  readonly kind: 'mirrored';
  /** The repository name as the client wrote it (with any upstream path prefix). */
  readonly name: string;
  readonly routed: Routed;
  /** The hosted index key of pushed overrides, when the upstream accepts them. */
  readonly override?: string;
}

export type Target = HostedTarget | MirroredTarget;

export class NamespaceResolver {
  readonly table: UpstreamTable;
  readonly #namespaces: readonly string[];

  constructor(table: UpstreamTable, namespaces: readonly string[]) {
    this.table = table;
    this.#namespaces = namespaces;
  }

  get namespaces(): readonly string[] {
    return this.#namespaces;
  }

  /** Whether `name` lies in a hosted namespace. */
  isHostedName(name: string): boolean {
    return this.#namespaces.some((ns) => name === ns || name.startsWith(`${ns}/`));
  }

  resolve(input: RouteInput & { readonly via?: string | undefined }): Target {
    const namesUpstream = (host: string | undefined) => host !== undefined && this.table.byHost(host) !== undefined;
    // `ns` naming no upstream is a client that reaches this registry through a mirror entry of its own name.
    if (this.isHostedName(input.name) && !namesUpstream(input.ns) && !namesUpstream(input.host)) {
      assertValidName(input.name);
      return { kind: 'hosted', name: input.name, key: input.name };
    }
    const found = this.table.route(input);
    const routed: Routed = input.via ? { ...found, via: input.via } : found;
    return {
      kind: 'mirrored',
      name: input.name,
      routed,
      ...(routed.upstream.overrides ? { override: overrideKey(routed.upstream.name, routed.repo) } : {}),
    };
  }
}

/** The error for a write to a mirrored name whose upstream does not accept overrides. */
export function overridesOff(target: MirroredTarget, hostedNamespaces: readonly string[]): OciError {
  const upstream = target.routed.upstream.name;
  const hosted = hostedNamespaces.length ? ` or push to a hosted namespace (${hostedNamespaces.map((n) => `${n}/...`).join(', ')})` : '';
  return new OciError(
    'UNSUPPORTED',
    `"${target.name}" is mirrored from ${upstream}, which does not accept pushes: set overrides: true on the upstream "${upstream}" in the config to let pushes stand in for its images${hosted}`,
    { headers: { allow: 'GET, HEAD' }, detail: { upstream, setting: `upstreams[name=${upstream}].overrides` } },
  );
}
