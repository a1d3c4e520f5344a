// The client-config generators: what each client would read from the files they emit.
import { describe, expect, it } from 'vitest';
import { containerdHosts } from '../../src/client-config/containerd.ts';
import { dockerDaemonJson } from '../../src/client-config/docker.ts';
import { etcHosts } from '../../src/client-config/hosts.ts';
import { ClientConfigError, parseEndpoint, type GeneratedConfig } from '../../src/client-config/options.ts';
import { registriesConf } from '../../src/client-config/registries-conf.ts';
import { parseConfig } from '../../src/config/load.ts';
import { UpstreamTable } from '../../src/upstream/route.ts';

/** The built-in mirror table: docker.io (default), registry.k8s.io (+k8s.gcr.io), ghcr.io, quay.io, gcr.io. */
const DEFAULTS = parseConfig({}, { env: {} }).upstreams;
const LAB = parseConfig(
  {
    upstreams: [
      { name: 'lab:main', url: 'http://10.0.0.5:5000', aliases: ['lab.example:5000', 'lab.example', '10.0.0.5:5000'] },
      { name: 'docker.io', url: 'https://registry-1.docker.io', aliases: ['docker.io'], default: true },
    ],
  },
  { env: {} },
).upstreams;

const HTTP = { endpoint: parseEndpoint('http://mirror:5000') };

type TomlValue = string | boolean | string[];
interface TomlTable {
  [key: string]: TomlValue | TomlTable | TomlTable[];
}

/**
 * Enough TOML for what the generators write: comments, `key = "string" | true | ["a", "b"]`,
 * `[a."b"]` tables and `[[a]]` / `[[a.b]]` arrays of tables (b attached to the last a).
 */
function parseToml(text: string): TomlTable {
  const root: TomlTable = {};
  let current = root;
  const keyPath = (header: string) => [...header.matchAll(/"([^"]*)"|([A-Za-z0-9_-]+)/g)].map((m) => m[1] ?? m[2]!);
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let m: RegExpExecArray | null;
    if ((m = /^\[\[(.+)\]\]$/.exec(line))) {
      const path = keyPath(m[1]!);
      let parent = root;
      for (const key of path.slice(0, -1)) {
        const node = parent[key];
        parent = (Array.isArray(node) ? node.at(-1) : node) as TomlTable;
      }
      const list = (parent[path.at(-1)!] ??= []) as TomlTable[];
      list.push((current = {}));
    } else if ((m = /^\[(.+)\]$/.exec(line))) {
      current = root;
      for (const key of keyPath(m[1]!)) current = (current[key] ??= {}) as TomlTable;
    } else if ((m = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(line))) {
      current[m[1]!] = JSON.parse(m[2]!) as TomlValue;
    } else {
      throw new Error(`not TOML this parser knows: ${line}`);
    }
  }
  return root;
}

function fileOf(generated: GeneratedConfig, path: string): string {
  const file = generated.files.find((f) => f.path === path);
  if (!file) throw new Error(`no ${path} among ${generated.files.map((f) => f.path).join(', ')}`);
  return file.content;
}

describe('parseEndpoint', () => {
  it('accepts a mirror root over http or https', () => {
    expect(parseEndpoint('http://mirror:5000').host).toBe('mirror:5000');
    expect(parseEndpoint('https://mirror.lab/').origin).toBe('https://mirror.lab');
  });

  it.each(['mirror:5000', 'ftp://mirror', 'http://mirror:5000/v2', 'http://mirror?x=1', 'http://u:p@mirror', 'not a url'])('refuses %s', (text) => {
    expect(() => parseEndpoint(text)).toThrow(ClientConfigError);
  });
});

describe('containerd hosts.toml', () => {
  const generated = containerdHosts(DEFAULTS, HTTP);

  it('writes one file per alias host and one for the mirror itself', () => {
    expect(generated.files.map((f) => f.path)).toEqual([
      'docker.io/hosts.toml',
      'index.docker.io/hosts.toml',
      'registry-1.docker.io/hosts.toml',
      'registry.k8s.io/hosts.toml',
      'k8s.gcr.io/hosts.toml',
      'ghcr.io/hosts.toml',
      'quay.io/hosts.toml',
      'gcr.io/hosts.toml',
      'mirror:5000/hosts.toml',
    ]);
  });

  it('keeps the registry as server and puts the mirror first, with pull and resolve', () => {
    expect(parseToml(fileOf(generated, 'docker.io/hosts.toml'))).toEqual({
      server: 'https://registry-1.docker.io',
      host: { 'http://mirror:5000': { capabilities: ['pull', 'resolve'] } },
    });
    // An alias keeps its upstream's URL: containerd's ?ns=k8s.gcr.io selects that upstream on the mirror.
    expect(parseToml(fileOf(generated, 'k8s.gcr.io/hosts.toml')).server).toBe('https://registry.k8s.io');
    expect(parseToml(fileOf(generated, 'mirror:5000/hosts.toml')).server).toBe('http://mirror:5000');
  });

  it('every file has a [host] table: containerd 1.6 ignores a file with only server', () => {
    for (const file of generated.files) expect(Object.keys(parseToml(file.content).host as TomlTable), file.path).toHaveLength(1);
  });

  it('adds skip_verify and ca for an https mirror', () => {
    const tls = containerdHosts(DEFAULTS, { endpoint: parseEndpoint('https://mirror.lab'), skipVerify: true, caFile: '/etc/containerd/certs.d/ocimirror-ca.crt' });
    expect(parseToml(fileOf(tls, 'ghcr.io/hosts.toml')).host).toEqual({
      'https://mirror.lab': { capabilities: ['pull', 'resolve'], skip_verify: true, ca: '/etc/containerd/certs.d/ocimirror-ca.crt' },
    });
    const verified = containerdHosts(DEFAULTS, { endpoint: parseEndpoint('https://mirror.lab'), caFile: '/ca.crt' });
    expect(parseToml(fileOf(verified, 'ghcr.io/hosts.toml')).host).toEqual({ 'https://mirror.lab': { capabilities: ['pull', 'resolve'], ca: '/ca.crt' } });
  });

  it('names hosts with a port as containerd looks them up (host:port directory)', () => {
    const lab = containerdHosts(LAB, HTTP);
    expect(lab.files.map((f) => f.path)).toContain('lab.example:5000/hosts.toml');
    expect(parseToml(fileOf(lab, 'lab.example:5000/hosts.toml')).server).toBe('http://10.0.0.5:5000');
  });
});

describe('registries.conf for cri-o and podman', () => {
  const registries = (text: string) => parseToml(text).registry as TomlTable[];

  it('has a registry per alias whose mirror selects the upstream on the mirror', () => {
    const conf = registries(fileOf(registriesConf(DEFAULTS, HTTP, 'podman'), 'registries.conf'));
    const byPrefix = Object.fromEntries(conf.map((r) => [r.prefix as string, r]));
    expect(Object.keys(byPrefix)).toEqual(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.k8s.io', 'k8s.gcr.io', 'ghcr.io', 'quay.io', 'gcr.io']);
    // The default upstream: the bare mirror; the others by path prefix (they send no ?ns=).
    expect(byPrefix['docker.io']).toEqual({ prefix: 'docker.io', location: 'docker.io', mirror: [{ location: 'mirror:5000', insecure: true }] });
    expect(byPrefix['k8s.gcr.io']!.mirror).toEqual([{ location: 'mirror:5000/registry.k8s.io', insecure: true }]);
    expect(byPrefix['ghcr.io']!.mirror).toEqual([{ location: 'mirror:5000/ghcr.io', insecure: true }]);
  });

  it.each([
    ['the built-in table', DEFAULTS],
    ['a lab table', LAB],
  ])('uses path prefixes the mirror routes to the same upstream (%s)', (_, upstreams) => {
    const table = new UpstreamTable(upstreams);
    for (const r of registries(fileOf(registriesConf(upstreams, HTTP, 'crio'), 'registries.conf'))) {
      const path = (r.mirror as TomlTable[])[0]!.location as string;
      const prefix = path.slice('mirror:5000/'.length);
      const name = prefix ? `${prefix}/org/app` : 'org/app';
      // The mirror sees Host mirror:5000 (no alias) and no ns: the path decides.
      expect(table.route({ host: 'mirror:5000', name }).upstream.name, r.prefix as string).toBe(table.byHost(r.prefix as string)!.name);
    }
  });

  it('falls back to an alias without port when the name cannot be a path component', () => {
    const conf = registries(fileOf(registriesConf(LAB, HTTP, 'podman'), 'registries.conf'));
    expect(conf.find((r) => r.prefix === 'lab.example:5000')!.mirror).toEqual([{ location: 'mirror:5000/lab.example', insecure: true }]);
  });

  it('is secure for a verified https mirror, and says where the CA goes', () => {
    const generated = registriesConf(DEFAULTS, { endpoint: parseEndpoint('https://mirror.lab'), caFile: '/ca.crt' }, 'crio');
    const conf = registries(fileOf(generated, 'registries.conf'));
    expect(conf[0]!.mirror).toEqual([{ location: 'mirror.lab' }]);
    expect(generated.notes.join('\n')).toContain('/etc/containers/certs.d/mirror.lab/ca.crt');
  });

  it('refuses an upstream that has no usable path prefix', () => {
    const odd = parseConfig({ upstreams: [{ name: 'A:B', url: 'https://x.example', aliases: ['x.example:444'] }, { name: 'hub', url: 'https://hub.example', default: true }] }, { env: {} }).upstreams;
    expect(() => registriesConf(odd, HTTP, 'podman')).toThrow(/path prefix/);
  });
});

describe('docker daemon.json', () => {
  it('lists the mirror, insecure for plain HTTP, and says docker mirrors Docker Hub only', () => {
    const generated = dockerDaemonJson(DEFAULTS, HTTP);
    expect(JSON.parse(fileOf(generated, 'daemon.json'))).toEqual({ 'registry-mirrors': ['http://mirror:5000'], 'insecure-registries': ['mirror:5000'] });
    expect(generated.notes.join('\n')).toMatch(/Docker Hub images only/);
    expect(generated.notes.join('\n')).toContain('docker pull mirror:5000/registry.k8s.io/');
  });

  it('is secure for a verified https mirror', () => {
    const generated = dockerDaemonJson(DEFAULTS, { endpoint: parseEndpoint('https://mirror.lab'), caFile: '/ca.crt' });
    expect(JSON.parse(fileOf(generated, 'daemon.json'))).toEqual({ 'registry-mirrors': ['https://mirror.lab'] });
  });

  it('refuses a table whose Docker Hub upstream is not the default (docker sends no registry name)', () => {
    expect(() => dockerDaemonJson(LAB.filter((u) => u.name !== 'docker.io'), HTTP)).toThrow(/alias docker.io/);
    const notDefault = parseConfig({ upstreams: [{ name: 'docker.io', url: 'https://registry-1.docker.io' }, { name: 'lab', url: 'https://lab.example', default: true }] }, { env: {} }).upstreams;
    expect(() => dockerDaemonJson(notDefault, HTTP)).toThrow(/default upstream/);
  });
});

describe('/etc/hosts lines', () => {
  it('maps every alias host, without port and without IP aliases, to the mirror', () => {
    const text = fileOf(etcHosts(LAB, { ip: '192.0.2.10' }), 'hosts');
    const entries = text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.replace(/#.*/, '').trim().split(/\s+/));
    expect(entries).toEqual([
      ['192.0.2.10', 'lab.example'],
      ['192.0.2.10', 'docker.io'],
    ]);
    const all = fileOf(etcHosts(DEFAULTS, { ip: '192.0.2.10' }), 'hosts');
    expect(all).toContain('192.0.2.10\tregistry.k8s.io k8s.gcr.io\t');
    expect(all).toMatch(/never on the mirror host/);
  });

  it('refuses an IP that is none', () => {
    expect(() => etcHosts(DEFAULTS, { ip: 'mirror' })).toThrow(ClientConfigError);
  });
});
