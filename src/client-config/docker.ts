// The docker daemon's daemon.json. Docker's registry-mirrors serve Docker Hub only, and the mirror
// sees those pulls without any registry name, so the Docker Hub upstream must be the default.
import { ClientConfigError, DOCKER_HUB_API, insecureEndpoint, type ClientOptions, type GeneratedConfig, type MirrorTable } from './options.ts';

export function dockerDaemonJson(upstreams: MirrorTable, options: ClientOptions): GeneratedConfig {
  const hub = upstreams.find((u) => u.aliases.includes('docker.io'));
  if (!hub) throw new ClientConfigError('docker mirrors only Docker Hub, and no upstream has the alias docker.io');
  if (!hub.isDefault) {
    throw new ClientConfigError(`docker sends Docker Hub pulls without a registry name: make "${hub.name}" the default upstream`);
  }
  // dockerd tries its registry-mirrors, then Docker Hub itself: no other fallback can be written.
  if (options.fallback === 'none') {
    throw new ClientConfigError('docker always falls back to Docker Hub when its registry-mirrors fail: --fallback none cannot be written in daemon.json (use DNS-spoof mode on docker hosts)');
  }
  const daemon: Record<string, string[]> = { 'registry-mirrors': [options.endpoint.origin] };
  if (insecureEndpoint(options)) daemon['insecure-registries'] = [options.endpoint.host];
  const others = upstreams.filter((u) => u !== hub).map((u) => u.aliases[0] ?? u.name);
  const notes = [
    'Merge into /etc/docker/daemon.json on every docker host, then: systemctl restart docker.',
    'docker uses registry-mirrors for Docker Hub images only.' +
      (others.length ? ` Pull other registries through the mirror by path prefix, e.g. docker pull ${options.endpoint.host}/${others[0]}/<repo>:<tag>.` : ''),
  ];
  if (options.fallback !== 'registry' && new URL(hub.url).host !== DOCKER_HUB_API) {
    notes.push(`docker falls back to Docker Hub itself when the mirror fails, not to the upstream ${hub.url}.`);
  }
  if (options.endpoint.protocol === 'https:' && options.caFile) {
    notes.push(`Put the mirror's CA certificate at /etc/docker/certs.d/${options.endpoint.host}/ca.crt on every docker host.`);
  }
  return { files: [{ path: 'daemon.json', content: `${JSON.stringify(daemon, null, 2)}\n` }], notes };
}
