// The mirror table a fresh install starts with: the public registries cluster operators pull from most.
import type { UpstreamInput } from './schema.ts';

export const DEFAULT_LISTEN = '127.0.0.1:5000';
export const DEFAULT_DATA_DIR = './data';
/** Loopback only: the admin API can delete cached images. */
export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:5001';

/** Hosted namespaces of a config that names none: a fresh install takes pushes to lab/... at once. */
export const DEFAULT_HOSTED_NAMESPACES: readonly string[] = ['lab'];

export const DEFAULT_UPSTREAMS: readonly UpstreamInput[] = [
  {
    name: 'docker.io',
    url: 'https://registry-1.docker.io',
    aliases: ['docker.io', 'index.docker.io', 'registry-1.docker.io'],
    default: true,
  },
  { name: 'registry.k8s.io', url: 'https://registry.k8s.io', aliases: ['registry.k8s.io', 'k8s.gcr.io'] },
  { name: 'ghcr.io', url: 'https://ghcr.io', aliases: ['ghcr.io'] },
  { name: 'quay.io', url: 'https://quay.io', aliases: ['quay.io'] },
  { name: 'gcr.io', url: 'https://gcr.io', aliases: ['gcr.io'] },
];
