// The docker daemon's daemon.json. Docker's registry-mirrors serve Docker Hub only, and the mirror
// sees those pulls without any registry name, so the Docker Hub upstream must be the default.
import { ClientConfigError, insecureEndpoint, type ClientOptions, type GeneratedConfig, type MirrorTable } from './options.ts';

export function dockerDaemonJson(upstreams: MirrorTable, options: ClientOptions): GeneratedConfig {
  const hub = upstreams.find((u) => u.aliases.includes('docker.io'));
  if (!hub) throw new ClientConfigError('docker mirrors only Docker Hub, and no upstream has the alias docker.io');
  if (!hub.isDefault) {
    throw new ClientConfigError(`docker sends Docker Hub pulls without a registry name: make "${hub.name}" the default upstream`);
  }
  const daemon: Record<string, string[]> = { 'registry-mirrors': [options.endpoint.origin] };
  if (insecureEndpoint(options)) daemon['insecure-registries'] = [options.endpoint.host];
  const others = upstreams.filter((u) => u !== hub).map((u) => u.aliases[0] ?? u.name);
  const notes = [
    'Merge into /etc/docker/daemon.json on every docker host, then: systemctl restart docker.',
    'docker uses registry-mirrors for Docker Hub images only.' +
      (others.length ? ` Pull other registries through the mirror by path prefix, e.g. docker pull ${options.endpoint.host}/${others[0]}/<repo>:<tag>.` : ''),
  ];
  if (options.endpoint.protocol === 'https:' && options.caFile) {
    notes.push(`Put the mirror's CA certificate at /etc/docker/certs.d/${options.endpoint.host}/ca.crt on every docker host.`);
  }
  return { files: [{ path: 'daemon.json', content: `${JSON.stringify(daemon, null, 2)}\n` }], notes };
}
