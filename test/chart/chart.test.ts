// The Helm chart without helm: values against the schema, template references against values, and
// the rendered config.yaml against the program's own config loader.
import { Ajv, type ValidateFunction } from 'ajv';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/load.ts';
import { configSchema } from '../../src/config/schema.ts';
import {
  CHART_DIR,
  FIXTURES_DIR,
  REPO_ROOT,
  chartValues,
  credentialEnv,
  leafPaths,
  mergeValues,
  missingKey,
  readYamlFile,
  renderChartConfig,
  templateFiles,
  valuesReferences,
  type Values,
} from './chart-model.ts';

const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8')) as {
  properties: Record<string, { properties?: Record<string, unknown> }>;
};

describe('values.schema.json', () => {
  let validate: ValidateFunction;
  beforeAll(() => {
    validate = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(schema);
  });
  const errorsOf = (values: Values) => (validate(values) ? [] : validate.errors!.map((e) => `${e.instancePath} ${e.message}`));

  it('is draft-07 and accepts values.yaml', () => {
    expect((schema as { $schema?: string }).$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(errorsOf(chartValues())).toEqual([]);
  });

  it('accepts the credentials and external Redis example', () => {
    const values = mergeValues(chartValues(), readYamlFile(join(FIXTURES_DIR, 'credentials-values.yaml')) as Values);
    expect(errorsOf(values)).toEqual([]);
  });

  it.each([
    ['a misspelt top-level key', { replicaCont: 2 }],
    ['a misspelt key in persistence', { persistence: { sizee: '10Gi' } }],
    ['a misspelt config key', { config: { cache: { maxsize: '10GiB' } } }],
    ['listen in config (set by the chart)', { config: { listen: '0.0.0.0:6000' } }],
    ['a size the program cannot parse', { config: { cache: { maxSize: '10 gigs' } } }],
    ['a duration the program cannot parse', { config: { tagsListTtl: 'ten minutes' } }],
    ['an inline password in the ConfigMap', { config: { upstreams: [{ name: 'x', url: 'https://x.example', credentials: { username: 'u', password: 'p' } }] } }],
    ['an upstream URL with a path', { config: { upstreams: [{ name: 'x', url: 'https://x.example/v2' }] } }],
    ['a password without a username', { credentials: { 'docker.io': { password: 'p' } } }],
    ['both a password and a token', { credentials: { 'docker.io': { username: 'u', password: 'p', token: 't' } } }],
    ['a credential with no secret at all', { credentials: { 'docker.io': { username: 'u' } } }],
    ['an unknown service type', { service: { type: 'Ingress' } }],
    ['a misspelt key in redis.bundled', { redis: { bundled: { enable: true } } }],
    ['a misspelt key in s3', { s3: { enabled: true, bucket: 'b', acessKeyId: 'x' } }],
    ['an s3 bucket name the program refuses', { s3: { enabled: true, bucket: 'My_Bucket' } }],
    ['an s3 endpoint with a path', { s3: { enabled: true, bucket: 'b', endpoint: 'http://rgw.lab:7480/s3' } }],
  ])('rejects %s', (_, override) => {
    expect(errorsOf(mergeValues(chartValues(), override as Values))).not.toEqual([]);
  });

  it('has an entry for every key of values.yaml and no entry values.yaml lacks', () => {
    const ownKeys = Object.keys(schema.properties).filter((k) => k !== 'global');
    expect(ownKeys.sort()).toEqual(Object.keys(chartValues()).sort());
  });

  it('lets config carry every key of the program config except the ones the chart sets', () => {
    const chartSets = ['listen', 'dataDir', 'redis', 'storage'];
    const programKeys = Object.keys(configSchema.shape).filter((k) => !chartSets.includes(k));
    expect(Object.keys(schema.properties.config!.properties!).sort()).toEqual(programKeys.sort());
  });
});

describe('templates', () => {
  const values = chartValues();
  const files = templateFiles();

  it('read only .Values paths that exist in values.yaml', () => {
    const missing = files.flatMap(({ path, text }) =>
      valuesReferences(text).flatMap((ref) => {
        const key = missingKey(values, ref);
        return key ? [`${path}: .Values.${ref} (no ${key})`] : [];
      }),
    );
    expect(files.map((f) => f.path)).toContain('templates/_helpers.tpl');
    expect(missing).toEqual([]);
  });

  it('use every value in values.yaml', () => {
    const refs = new Set(files.flatMap(({ text }) => valuesReferences(text)));
    const unused = leafPaths(values).filter((leaf) => ![...refs].some((ref) => leaf === ref || leaf.startsWith(`${ref}.`)));
    expect(unused).toEqual([]);
  });

  it('close every block they open and include only templates they define', () => {
    const unbalanced = files.filter(({ text }) => {
      const opened = text.match(/\{\{-?\s*(if|range|with|define|block)\b/g)?.length ?? 0;
      const closed = text.match(/\{\{-?\s*end\b/g)?.length ?? 0;
      return opened !== closed;
    });
    expect(unbalanced.map((f) => f.path)).toEqual([]);
    const all = files.map((f) => f.text).join('\n');
    const defined = new Set([...all.matchAll(/\{\{-?\s*define "([^"]+)"/g)].map((m) => m[1]));
    const included = new Set([...all.matchAll(/include "([^"]+)"/g)].map((m) => m[1]));
    expect([...included].filter((name) => !defined.has(name))).toEqual([]);
  });

  it('include the resources the chart promises', () => {
    const names = files.map((f) => f.path).sort();
    for (const name of ['deployment', 'service', 'configmap', 'secret', 'pvc', 'pdb', 'servicemonitor', 'redis', 'serviceaccount']) {
      expect(names).toContain(`templates/${name}.yaml`);
    }
    expect(names).toContain('templates/NOTES.txt');
  });

  it('probe /healthz for liveness and /readyz for readiness', () => {
    expect((values.livenessProbe as { httpGet: { path: string } }).httpGet.path).toBe('/healthz');
    expect((values.readinessProbe as { httpGet: { path: string } }).httpGet.path).toBe('/readyz');
    expect(values.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(values.podSecurityContext).toMatchObject({ runAsNonRoot: true });
  });

  it('name the same credential variables in config.yaml, the Secret and the Deployment', () => {
    const helpers = files.find((f) => f.path === 'templates/_helpers.tpl')!.text;
    // renderChartConfig's credentialEnv stands in for this helper; keep the two in step.
    expect(helpers).toContain('printf "UPSTREAM_%s_%s" (regexReplaceAll "[^A-Za-z0-9]+" $name "_" | upper) $kind');
    expect(credentialEnv('registry.k8s.io', 'PASSWORD')).toBe('UPSTREAM_REGISTRY_K8S_IO_PASSWORD');
    const deployment = files.find((f) => f.path === 'templates/deployment.yaml')!.text;
    expect(deployment).toContain('include "ocimirror.credentialEnv" (list $name $kind)');
    expect(helpers.match(/include "ocimirror\.credentialEnv"/g)?.length).toBeGreaterThanOrEqual(4);
  });
});

describe('config.yaml in the ConfigMap', () => {
  const configmap = readFileSync(join(CHART_DIR, 'templates', 'configmap.yaml'), 'utf8');

  it('is the "ocimirror.config" helper', () => {
    expect(configmap).toMatch(/config\.yaml: \|\n\s+\{\{-? include "ocimirror\.config" \. \| nindent 4 \}\}/);
  });

  it('renders the default values as fixtures/default-config.yaml, which the program accepts', () => {
    const expected = readYamlFile(join(FIXTURES_DIR, 'default-config.yaml'));
    const values = chartValues();
    expect(renderChartConfig(values)).toEqual(expected);

    const config = parseConfig(expected, { env: {}, source: 'default-config.yaml' });
    expect(config.listen).toEqual(['0.0.0.0:5000']);
    expect(config.dataDir).toBe('/var/lib/ocimirror');
    expect(config.redis).toBeUndefined();
    expect(config.upstreams.map((u) => u.name)).toEqual(['docker.io', 'registry.k8s.io', 'ghcr.io', 'quay.io', 'gcr.io']);
    expect(config.upstreams.filter((u) => u.isDefault).map((u) => u.name)).toEqual(['docker.io']);
    expect(config.shutdownGraceMs).toBeLessThan((values.terminationGracePeriodSeconds as number) * 1000);
  });

  it('renders s3 values as storage.s3 whose keys and peer URL come from the environment the Deployment sets', () => {
    const values = mergeValues(chartValues(), readYamlFile(join(FIXTURES_DIR, 's3-values.yaml')) as Values);
    const validate = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(schema);
    expect(validate(values), JSON.stringify(validate.errors)).toBe(true);
    const file = join(FIXTURES_DIR, 's3-config.yaml');
    expect(renderChartConfig(values)).toEqual(readYamlFile(file));
    const env = {
      OCIMIRROR_REDIS_URL: 'redis://redis.infra.svc:6379/0',
      S3_ACCESS_KEY_ID: 'AKIDCHART',
      S3_SECRET_ACCESS_KEY: 'chart-secret',
      OCIMIRROR_S3_PEER_URL: 'http://10.244.1.7:5000',
    };
    const s3 = loadConfig({ file, env, cwd: REPO_ROOT }).storage.s3!;
    expect(s3).toMatchObject({ endpoint: 'http://rook-ceph-rgw.rook-ceph.svc:80', bucket: 'ocimirror', prefix: 'prod/', forcePathStyle: true, redirect: false, peerUrl: 'http://10.244.1.7:5000' });
    expect(s3.credentials?.accessKeyId.reveal()).toBe('AKIDCHART');
    expect(s3.credentials?.secretAccessKey.reveal()).toBe('chart-secret');
    expect(readFileSync(file, 'utf8')).not.toContain('chart-secret');

    const deployment = templateFiles().find((f) => f.path === 'templates/deployment.yaml')!.text;
    for (const name of ['POD_IP', 'OCIMIRROR_S3_PEER_URL', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY']) expect(deployment).toContain(`- name: ${name}`);
    const helpers = templateFiles().find((f) => f.path === 'templates/_helpers.tpl')!.text;
    expect(helpers).toContain('$_ := set $data "S3_SECRET_ACCESS_KEY"');
    expect(helpers).toContain('replicaCount > 1 with s3.enabled needs persistence.enabled=false');
  });

  it('renders credentials as env references the container environment satisfies', () => {
    const values = mergeValues(chartValues(), readYamlFile(join(FIXTURES_DIR, 'credentials-values.yaml')) as Values);
    const file = join(FIXTURES_DIR, 'credentials-config.yaml');
    expect(renderChartConfig(values)).toEqual(readYamlFile(file));

    // What the Deployment sets: OCIMIRROR_REDIS_URL from the Secret, one variable per credential.
    const env = {
      OCIMIRROR_REDIS_URL: 'redis://:secret@redis.example.internal:6379/2',
      UPSTREAM_DOCKER_IO_PASSWORD: 'hub-password',
      UPSTREAM_GHCR_IO_TOKEN: 'ghcr-token',
      UPSTREAM_QUAY_IO_PASSWORD: 'from-existing-secret',
    };
    const config = loadConfig({ file, env, cwd: REPO_ROOT });
    expect(config.redis).toEqual({ url: env.OCIMIRROR_REDIS_URL, keyPrefix: 'ocimirror:' });
    expect(config.upstreams.map((u) => u.credentials?.kind)).toEqual(['basic', 'token', 'basic']);
    expect(config.upstreamRetries).toBe(4);
    expect(config.cache.maxSizeBytes).toBeUndefined();
    expect(() => loadConfig({ file, env: { ...env, UPSTREAM_GHCR_IO_TOKEN: undefined }, cwd: REPO_ROOT })).toThrow(/UPSTREAM_GHCR_IO_TOKEN/);
  });
});
