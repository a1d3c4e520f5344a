// `ocimirror config --fallback upstream|registry|none`: where each client goes when the mirror fails,
// the same for containerd and containers-registries.conf (podman, cri-o). The default is the upstream of
// the mirror table, so a lab whose upstream is a private registry never falls back to the internet.
import { describe, expect, it } from 'vitest';
import { containerdHosts } from '../../src/client-config/containerd.ts';
import { dockerDaemonJson } from '../../src/client-config/docker.ts';
import { ClientConfigError, parseEndpoint, type ClientOptions, type Fallback } from '../../src/client-config/options.ts';
import { registriesConf } from '../../src/client-config/registries-conf.ts';
import { parseConfig } from '../../src/config/load.ts';

/** A lab: Docker Hub and quay.io names both served by one private plain-HTTP registry. */
const LAB = parseConfig(
  {
    upstreams: [
      { name: 'docker.io', url: 'http://10.0.0.5:5000', aliases: ['docker.io'], default: true },
      { name: 'quay.io', url: 'http://10.0.0.5:5000', aliases: ['quay.io'] },
      { name: 'ghcr.io', url: 'https://ghcr.lab.example', aliases: ['ghcr.io'], insecure: true },
    ],
  },
  { env: {} },
).upstreams;
const PUBLIC = parseConfig({}, { env: {} }).upstreams;

const options = (fallback?: Fallback, endpoint = 'http://mirror:5000'): ClientOptions => ({ endpoint: parseEndpoint(endpoint), ...(fallback ? { fallback } : {}) });

function containerdFile(fallback: Fallback | undefined, host: string, table = LAB, endpoint?: string): string {
  const file = containerdHosts(table, options(fallback, endpoint)).files.find((f) => f.path === `${host}/hosts.toml`);
  if (!file) throw new Error(`no ${host}/hosts.toml`);
  return file.content;
}

/** The [[registry]] block of `prefix` in a registries.conf, as text. */
function registryBlock(fallback: Fallback | undefined, prefix: string, table = LAB, endpoint?: string): string {
  const text = registriesConf(table, options(fallback, endpoint), 'podman').files[0]!.content;
  const block = text.split('[[registry]]\n').find((b) => b.startsWith(`prefix = "${prefix}"\n`));
  if (!block) throw new Error(`no [[registry]] for ${prefix} in\n${text}`);
  return block.trim();
}

describe('fallback upstream (the default)', () => {
  it('sends containerd and podman to the configured upstream, never to the public registry', () => {
    expect(containerdFile(undefined, 'docker.io')).toMatch(/^server = "http:\/\/10\.0\.0\.5:5000"$/m);
    expect(registryBlock(undefined, 'docker.io')).toBe(
      'prefix = "docker.io"\nlocation = "10.0.0.5:5000"\ninsecure = true\n\n[[registry.mirror]]\nlocation = "mirror:5000"\ninsecure = true',
    );
    expect(registryBlock(undefined, 'quay.io')).toMatch(/^location = "10\.0\.0\.5:5000"\ninsecure = true$/m);
    expect(registriesConf(LAB, options(), 'crio').files[0]!.content).toContain('to the upstream of the mirror table (location)');
  });

  it('keeps an upstream whose certificate cannot be verified usable as the fallback', () => {
    expect(containerdFile('upstream', 'ghcr.io')).toMatch(/^server = "https:\/\/ghcr\.lab\.example"\nskip_verify = true$/m);
    expect(registryBlock('upstream', 'ghcr.io')).toMatch(/^location = "ghcr\.lab\.example"\ninsecure = true$/m);
  });

  it('names Docker Hub as containers/image does (docker.io), and other public upstreams by their host', () => {
    expect(registryBlock('upstream', 'index.docker.io', PUBLIC)).toMatch(/^location = "docker\.io"$/m);
    expect(registryBlock('upstream', 'k8s.gcr.io', PUBLIC)).toMatch(/^location = "registry\.k8s\.io"$/m);
    expect(containerdFile('upstream', 'k8s.gcr.io', PUBLIC)).toMatch(/^server = "https:\/\/registry\.k8s\.io"$/m);
  });
});

describe('fallback registry', () => {
  it('sends both clients to the registry the reference names', () => {
    expect(containerdFile('registry', 'docker.io')).toMatch(/^server = "https:\/\/registry-1\.docker\.io"$/m);
    expect(containerdFile('registry', 'quay.io')).toMatch(/^server = "https:\/\/quay\.io"$/m);
    expect(registryBlock('registry', 'quay.io')).toMatch(/^prefix = "quay\.io"\nlocation = "quay\.io"\n\n\[\[registry\.mirror\]\]/);
  });
});

describe('fallback none', () => {
  it('makes the mirror containerd\'s server too, keeping the [host] table containerd 1.6 needs', () => {
    const text = containerdFile('none', 'quay.io');
    expect(text).toMatch(/^server = "http:\/\/mirror:5000"$/m);
    expect(text).toContain('[host."http://mirror:5000"]');
    expect(text).not.toContain('10.0.0.5');
    const tls = containerdFile('none', 'quay.io', LAB, 'https://mirror.lab');
    expect(tls).toMatch(/^server = "https:\/\/mirror\.lab"$/m);
  });

  it('makes the mirror the registries.conf location, with no mirror to fall back from', () => {
    expect(registryBlock('none', 'docker.io')).toBe('prefix = "docker.io"\nlocation = "mirror:5000"\ninsecure = true');
    expect(registryBlock('none', 'quay.io')).toBe('prefix = "quay.io"\nlocation = "mirror:5000/quay.io"\ninsecure = true');
    expect(registryBlock('none', 'quay.io', LAB, 'https://mirror.lab')).toBe('prefix = "quay.io"\nlocation = "mirror.lab/quay.io"');
  });

  it('is refused for docker, which always falls back to Docker Hub', () => {
    expect(() => dockerDaemonJson(PUBLIC, options('none'))).toThrow(ClientConfigError);
    expect(dockerDaemonJson(LAB, options()).notes.join('\n')).toContain('docker falls back to Docker Hub itself when the mirror fails, not to the upstream http://10.0.0.5:5000');
  });
});
