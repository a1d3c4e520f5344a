// The repositories the UI lists: hosted ones, pushed overrides and cached ones, named as clients pull
// them, grouped by upstream ("hosted" first), filtered by what the visitor may pull and by a search
// text, and paged. Only the page shown is sized (tags, bytes, last pull).
import { cachedTagRoots, hostedTagRoots, mirrorName, repositoryUsage, type RepositoryUsage } from '../cache/inventory.ts';
import type { RegistryDeps } from '../routes/deps.ts';
import { parseOverrideKey } from '../store/hosted-index.ts';
import type { UiAccess } from './access.ts';

export interface CatalogEntry {
  readonly kind: 'cached' | 'hosted' | 'override';
  /** "hosted" for hosted repositories. */
  readonly group: string;
  readonly name: string;
}

export interface CatalogPage {
  readonly entries: readonly (CatalogEntry & RepositoryUsage)[];
  readonly total: number;
  readonly page: number;
  readonly pages: number;
}

export const PAGE_SIZE = 50;

export async function catalogPage(registry: RegistryDeps, access: UiAccess, query: { search: string; page: number }): Promise<CatalogPage> {
  const deps = registry.mirror;
  const table = registry.resolver.table;
  const [cached, hosted] = await Promise.all([deps.meta.listRepos().catch(() => []), registry.hosted.index.listRepos()]);
  const all: (CatalogEntry & { key: string; upstream: string; repo: string })[] = [];
  for (const key of hosted) {
    const override = parseOverrideKey(key);
    if (override) all.push({ kind: 'override', group: override.upstream, name: mirrorName(table, override.upstream, override.repo), key, ...override });
    else all.push({ kind: 'hosted', group: 'hosted', name: key, key, upstream: 'hosted', repo: key });
  }
  for (const { upstream, repo } of cached) all.push({ kind: 'cached', group: upstream, name: mirrorName(table, upstream, repo), key: '', upstream, repo });
  const needle = query.search.trim().toLowerCase();
  const visible = all.filter((e) => (!needle || e.name.toLowerCase().includes(needle)) && mayPull(registry, access, e.name));
  visible.sort((a, b) => groupOrder(a.group, b.group) || (a.name < b.name ? -1 : a.name > b.name ? 1 : a.kind < b.kind ? -1 : 1));
  const pages = Math.max(1, Math.ceil(visible.length / PAGE_SIZE));
  const page = Math.min(Math.max(1, query.page), pages);
  const shown = visible.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);
  const entries = await Promise.all(
    shown.map(async (e) => {
      const roots = e.kind === 'cached' ? await cachedTagRoots(deps, e.upstream, e.repo) : await hostedTagRoots(registry.hosted, e.key);
      return { kind: e.kind, group: e.group, name: e.name, ...(await repositoryUsage(deps, roots)) };
    }),
  );
  return { entries, total: visible.length, page, pages };
}

function groupOrder(a: string, b: string): number {
  if (a === b) return 0;
  if (a === 'hosted') return -1;
  if (b === 'hosted') return 1;
  return a < b ? -1 : 1;
}

function mayPull(registry: RegistryDeps, access: UiAccess, name: string): boolean {
  try {
    return access.may(registry.resolver.resolve({ name }), 'pull');
  } catch {
    return false;
  }
}
