// Which hosted index keys exist: a repository name, or an override key "_override/<upstream>/<repo>".
// Every index implementation checks a key here before it names a file or an object with it.
import { isValidName } from '../oci/reference.ts';
import { OVERRIDE_PREFIX } from './hosted-index.ts';

/** The key itself, or an Error when it is no hosted repository key (a path outside the tree, say). */
export function checkedRepoKey(repo: string): string {
  const plain = repo.startsWith(OVERRIDE_PREFIX) ? repo.slice(OVERRIDE_PREFIX.length) : repo;
  const [first, ...rest] = plain.split('/');
  const upstreamOk = !repo.startsWith(OVERRIDE_PREFIX) || (!!first && /^[A-Za-z0-9._:-]+$/.test(first) && first !== '.' && first !== '..');
  const nameOk = repo.startsWith(OVERRIDE_PREFIX) ? isValidName(rest.join('/')) : isValidName(plain);
  if (!upstreamOk || !nameOk) throw new Error(`not a hosted repository key: ${JSON.stringify(repo.slice(0, 300))}`);
  return repo;
}

/** The index's layout under a repository key, the same for every implementation (a disk tree or bucket keys). */
export const INDEX_TAGS = '_tags';
export const INDEX_MANIFESTS = '_manifests';
export const INDEX_BLOBS = '_blobs';
export const INDEX_REFERRERS = '_referrers';
