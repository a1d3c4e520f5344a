// The non-Helm packaging under deploy/: compose stack, systemd unit, Dockerfile, Grafana dashboard.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { parseDurationMs } from '../../src/config/units.ts';
import { REPO_ROOT, readYamlFile } from './chart-model.ts';

const DEPLOY = join(REPO_ROOT, 'deploy');
const read = (path: string) => readFileSync(path, 'utf8');
/** The program's grace period when the config leaves shutdownGrace out. */
const DEFAULT_GRACE_MS = parseConfig({}, { env: {} }).shutdownGraceMs;

interface ComposeService {
  build?: { context: string; dockerfile?: string };
  image?: string;
  volumes?: string[];
  /** The short form lists names; the long form maps names to conditions. */
  depends_on?: string[] | Record<string, unknown>;
  profiles?: string[];
  stop_grace_period?: string;
}

describe('deploy/compose.yaml', () => {
  const doc = parseDocument(read(join(DEPLOY, 'compose.yaml')), { uniqueKeys: true });
  const compose = doc.toJS() as { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };
  const services = compose.services;

  it('parses without errors', () => {
    expect(doc.errors).toEqual([]);
    expect(Object.keys(services).sort()).toEqual(['grafana', 'ocimirror', 'prometheus', 'redis']);
  });

  it('references files and directories that exist, and volumes and services it declares', () => {
    const problems: string[] = [];
    for (const [name, service] of Object.entries(services)) {
      if (service.build) {
        const context = resolve(DEPLOY, service.build.context);
        if (!existsSync(context)) problems.push(`${name}: build context ${context}`);
        if (!existsSync(join(context, service.build.dockerfile ?? 'Dockerfile'))) problems.push(`${name}: dockerfile ${service.build.dockerfile}`);
      }
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('.') || source.startsWith('/')) {
          if (!existsSync(resolve(DEPLOY, source))) problems.push(`${name}: bind mount ${source}`);
        } else if (!compose.volumes || !Object.hasOwn(compose.volumes, source)) {
          problems.push(`${name}: named volume ${source} is not declared`);
        }
      }
      const dependsOn = service.depends_on ?? [];
      for (const dependency of Array.isArray(dependsOn) ? dependsOn : Object.keys(dependsOn)) {
        if (!services[dependency]) problems.push(`${name}: depends on unknown service ${dependency}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('runs ocimirror and redis by default and the monitoring under the metrics profile', () => {
    expect(services.ocimirror!.profiles).toBeUndefined();
    expect(services.redis!.profiles).toBeUndefined();
    expect(services.prometheus!.profiles).toEqual(['metrics']);
    expect(services.grafana!.profiles).toEqual(['metrics']);
    expect(services.ocimirror!.build).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
  });

  it('persists Redis', () => {
    const redis = services.redis as ComposeService & { command: string[] };
    expect(redis.command.join(' ')).toMatch(/--appendonly yes/);
    expect(redis.volumes?.some((v) => v.endsWith(':/data'))).toBe(true);
  });

  it('mounts a config the program accepts, pointing at the compose Redis', () => {
    const mount = services.ocimirror!.volumes!.find((v) => v.includes(':/etc/ocimirror/config.yaml'))!;
    const config = parseConfig(readYamlFile(resolve(DEPLOY, mount.split(':')[0]!)), { env: {}, source: 'config.compose.yaml' });
    expect(config.listen).toEqual(['0.0.0.0:5000']);
    expect(config.dataDir).toBe('/var/lib/ocimirror');
    expect(services[new URL(config.redis!.url).hostname]).toBeDefined();
    expect(services.ocimirror!.volumes).toContain('ocimirror-data:/var/lib/ocimirror');
    expect(parseDurationMs(services.ocimirror!.stop_grace_period!)).toBeGreaterThan(config.shutdownGraceMs);
  });

  it('has Prometheus scrape the ocimirror service and Grafana load the dashboard', () => {
    const prometheus = readYamlFile(join(DEPLOY, 'prometheus', 'prometheus.yml')) as {
      scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[];
    };
    const job = prometheus.scrape_configs.find((j) => j.job_name === 'ocimirror')!;
    expect(job.metrics_path).toBe('/metrics');
    expect(job.static_configs.flatMap((s) => s.targets)).toEqual(['ocimirror:5000']);

    const provider = readYamlFile(join(DEPLOY, 'grafana', 'provisioning', 'dashboards', 'ocimirror.yaml')) as { providers: { options: { path: string } }[] };
    const dashboardMount = services.grafana!.volumes!.find((v) => v.startsWith('./grafana/ocimirror-dashboard.json:'))!;
    expect(dirname(dashboardMount.split(':')[1]!)).toBe(provider.providers[0]!.options.path);
  });
});

describe('deploy/config.yaml (the image default)', () => {
  it('is accepted by the program and listens on all interfaces', () => {
    const config = parseConfig(readYamlFile(join(DEPLOY, 'config.yaml')) ?? {}, { env: {}, source: 'deploy/config.yaml' });
    expect(config.listen).toEqual(['0.0.0.0:5000']);
    expect(config.dataDir).toBe('/var/lib/ocimirror');
  });
});

/** [Section] Key=Value lines; repeated keys keep every value. */
function parseUnit(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1]!;
    else {
      const eq = line.indexOf('=');
      const key = `${section}.${line.slice(0, eq)}`;
      keys.set(key, [...(keys.get(key) ?? []), line.slice(eq + 1)]);
    }
  }
  return keys;
}

describe('deploy/systemd/ocimirror.service', () => {
  const unit = parseUnit(read(join(DEPLOY, 'systemd', 'ocimirror.service')));
  const one = (key: string) => unit.get(`Service.${key}`)?.at(-1);

  it.each([
    ['DynamicUser', 'yes'],
    ['StateDirectory', 'ocimirror'],
    ['ProtectSystem', 'strict'],
    ['ProtectHome', 'yes'],
    ['PrivateTmp', 'yes'],
    ['PrivateDevices', 'yes'],
    ['NoNewPrivileges', 'yes'],
    ['CapabilityBoundingSet', ''],
    ['RestrictNamespaces', 'yes'],
    ['RestrictSUIDSGID', 'yes'],
    ['LockPersonality', 'yes'],
    ['ProtectKernelTunables', 'yes'],
    ['ProtectKernelModules', 'yes'],
    ['ProtectControlGroups', 'yes'],
    ['SystemCallArchitectures', 'native'],
    ['RestartPreventExitStatus', '2'],
  ])('sets %s=%s', (key, value) => {
    expect(one(key)).toBe(value);
  });

  it('limits address families to IP and Unix sockets', () => {
    expect(one('RestrictAddressFamilies')!.split(/\s+/).sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_UNIX']);
  });

  it('keeps the data in the state directory and reads the config from /etc/ocimirror', () => {
    expect(unit.get('Service.Environment')).toContain('OCIMIRROR_DATA_DIR=/var/lib/ocimirror');
    expect(one('ExecStart')).toMatch(/\bocimirror serve --config \/etc\/ocimirror\/config\.yaml$/);
  });

  it('waits longer than the default shutdown grace before SIGKILL', () => {
    expect(parseDurationMs(one('TimeoutStopSec')!)).toBeGreaterThan(DEFAULT_GRACE_MS);
  });

  it('does not deny W+X memory, which V8 needs', () => {
    expect(one('MemoryDenyWriteExecute')).toBeUndefined();
  });
});

/** Whether .dockerignore keeps a path out of the build context (last matching pattern wins). */
function dockerIgnored(patterns: string[], path: string): boolean {
  const toRegExp = (pattern: string) =>
    new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\/?/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replaceAll('\u0000', '.*')}$`);
  const prefixes = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const line of patterns) {
    const negated = line.startsWith('!');
    const re = toRegExp((negated ? line.slice(1) : line).replace(/^\/|\/$/g, ''));
    if (prefixes.some((p) => re.test(p))) ignored = !negated;
  }
  return ignored;
}

describe('deploy/Dockerfile', () => {
  const dockerfile = read(join(DEPLOY, 'Dockerfile')).replace(/\\\n/g, ' ');
  const instructions = dockerfile.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const stages = instructions.filter((l) => /^FROM /i.test(l));
  const runtime = instructions.slice(instructions.lastIndexOf(stages.at(-1)!));

  it('builds in one stage and runs from node:24-slim in another', () => {
    expect(instructions).toContain('ARG NODE_IMAGE=node:24-slim');
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages.every((s) => s.startsWith('FROM ${NODE_IMAGE} AS '))).toBe(true);
    expect(dockerfile).toMatch(/npm ci .*&& npm run build/);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
  });

  it('runs as a numeric non-root user with the data volume, port, healthcheck and default config', () => {
    const user = runtime.find((l) => l.startsWith('USER '))!;
    expect(user).toMatch(/^USER [1-9]\d*:[1-9]\d*$/);
    expect(runtime).toContain('VOLUME /var/lib/ocimirror');
    expect(runtime).toContain('EXPOSE 5000');
    expect(runtime.find((l) => l.startsWith('HEALTHCHECK'))).toMatch(/fetch\('http:\/\/127\.0\.0\.1:5000\/healthz'/);
    expect(runtime).toContain('COPY deploy/config.yaml /etc/ocimirror/config.yaml');
    // "type": "module" in package.json is what makes dist/*.js load as ESM.
    expect(runtime).toContain('COPY package.json ./');
  });

  it('copies nothing that .dockerignore leaves out of the context', () => {
    const patterns = read(join(REPO_ROOT, '.dockerignore')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const sources = instructions
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.filter((s) => !existsSync(join(REPO_ROOT, s)))).toEqual([]);
    expect(sources.filter((s) => dockerIgnored(patterns, s.replace(/^\.\//, '')))).toEqual([]);
    expect(dockerIgnored(patterns, 'node_modules/x')).toBe(true);
    expect(dockerIgnored(patterns, 'deploy/compose.yaml')).toBe(true);
  });
});

describe('deploy/grafana/ocimirror-dashboard.json', () => {
  const dashboard = JSON.parse(read(join(DEPLOY, 'grafana', 'ocimirror-dashboard.json'))) as {
    uid: string;
    panels: { id: number; type: string; gridPos: { x: number; w: number }; targets?: { expr: string }[] }[];
  };
  const declared = new Set([...read(join(REPO_ROOT, 'src', 'observability', 'metrics.ts')).matchAll(/name: '(ocimirror_\w+)'/g)].map((m) => m[1]!));

  it('queries only metrics the program declares', () => {
    const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b(ocimirror_\w+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ''))));
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((name) => !declared.has(name))).toEqual([]);
  });

  it('has unique panel ids and fits the 24-column grid', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.panels.filter((p) => p.gridPos.x + p.gridPos.w > 24)).toEqual([]);
    expect(dashboard.uid).toBe('ocimirror');
  });
});
