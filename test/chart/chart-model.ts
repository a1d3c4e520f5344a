// Reads the Helm chart's files, and stands in for the parts of its templates the tests check
// (no helm binary here): the values merge, the config.yaml rendering and the `.Values` references.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
export const CHART_DIR = join(REPO_ROOT, 'charts', 'ocimirror');
export const FIXTURES_DIR = join(import.meta.dirname, 'fixtures');

export type Values = Record<string, unknown>;

export function readYamlFile(path: string): unknown {
  return parseYaml(readFileSync(path, 'utf8'));
}

export function chartValues(): Values {
  return readYamlFile(join(CHART_DIR, 'values.yaml')) as Values;
}

export function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Helm's merge of a values file over the chart's: maps merge key by key, anything else replaces. */
export function mergeValues(base: Values, over: Values): Values {
  const out: Values = structuredClone(base);
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isMap(current) && isMap(value) ? mergeValues(current, value) : structuredClone(value);
  }
  return out;
}

/** Mirrors "ocimirror.credentialEnv" in _helpers.tpl. */
export function credentialEnv(upstream: string, kind: 'PASSWORD' | 'TOKEN'): string {
  return `UPSTREAM_${upstream.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase()}_${kind}`;
}

interface S3Values {
  enabled: boolean;
  endpoint: string;
  bucket: string;
  region: string;
  prefix: string;
  forcePathStyle: boolean | null;
  redirect: boolean;
  redirectTtl: string;
  accessKeyId: string;
  existingSecret: string;
}

/** Mirrors "ocimirror.config" in _helpers.tpl. */
export function renderChartConfig(values: Values): Values {
  const source = values.config as Values;
  const config: Values = structuredClone(source);
  const credentials = (values.credentials ?? {}) as Record<string, { username?: string }>;
  const upstreams = ((source.upstreams ?? []) as Values[]).map((upstream) => {
    const name = upstream.name as string;
    const given = credentials[name];
    if (!given) return structuredClone(upstream);
    return {
      ...structuredClone(upstream),
      credentials: given.username ? { username: given.username, passwordEnv: credentialEnv(name, 'PASSWORD') } : { tokenEnv: credentialEnv(name, 'TOKEN') },
    };
  });
  if (upstreams.length > 0) config.upstreams = upstreams;
  else delete config.upstreams;
  const cache = config.cache as Values;
  if (!cache.maxSize) delete cache.maxSize;
  config.listen = '0.0.0.0:5000';
  config.dataDir = '/var/lib/ocimirror';
  const redis = values.redis as { keyPrefix: string; bundled: { enabled: boolean }; external: { url: string; existingSecret: string } };
  if (redis.bundled.enabled || redis.external.url || redis.external.existingSecret) config.redis = { keyPrefix: redis.keyPrefix };
  const s3 = values.s3 as S3Values;
  if (s3.enabled) {
    const storage: Values = { bucket: s3.bucket, region: s3.region, redirect: s3.redirect, redirectTtl: s3.redirectTtl };
    if (s3.endpoint) storage.endpoint = s3.endpoint;
    if (s3.prefix) storage.prefix = s3.prefix;
    if (s3.forcePathStyle !== null) storage.forcePathStyle = s3.forcePathStyle;
    if (s3.accessKeyId || s3.existingSecret) Object.assign(storage, { accessKeyIdEnv: 'S3_ACCESS_KEY_ID', secretAccessKeyEnv: 'S3_SECRET_ACCESS_KEY' });
    config.storage = { s3: storage };
  }
  return mergeValues(config, (values.extraConfig ?? {}) as Values);
}

/** Every template file of the chart (templates/**), with its path relative to the chart. */
export function templateFiles(): { path: string; text: string }[] {
  const files: { path: string; text: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ya?ml|tpl|txt)$/.test(entry.name)) files.push({ path: relative(CHART_DIR, path), text: readFileSync(path, 'utf8') });
    }
  };
  walk(join(CHART_DIR, 'templates'));
  return files;
}

/**
 * The `.Values` paths a template reads, as dotted strings without the `.Values.` prefix. Besides
 * `.Values.a.b` and `$.Values.a.b`, it follows variables bound to a values path
 * (`{{ $bundled := .Values.redis.bundled }}` ... `$bundled.image.tag`). Variables bound by `range`
 * hold elements of maps and lists the chart iterates over; their fields are not values keys.
 */
export function valuesReferences(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/(?<![\w$])\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) found.add(m[1]!.slice(1));
  const aliases = new Map<string, string>();
  for (const m of text.matchAll(/\{\{-?\s*\$([A-Za-z_]\w*)\s*:=\s*\$?\.Values((?:\.[A-Za-z_]\w*)+)\s*-?\}\}/g)) aliases.set(m[1]!, m[2]!.slice(1));
  for (const [name, path] of aliases) {
    for (const m of text.matchAll(new RegExp(`\\$${name}((?:\\.[A-Za-z_][A-Za-z0-9_]*)+)`, 'g'))) found.add(`${path}${m[1]}`);
  }
  return [...found].sort();
}

/** The first missing key of a dotted path in values, or undefined when the whole path exists. */
export function missingKey(values: Values, path: string): string | undefined {
  let node: unknown = values;
  const parts = path.split('.');
  for (let i = 0; i < parts.length; i++) {
    if (!isMap(node) || !Object.hasOwn(node, parts[i]!)) return parts.slice(0, i + 1).join('.');
    node = node[parts[i]!];
  }
  return undefined;
}

/** Dotted paths of values' leaves: scalars, lists, and empty maps. */
export function leafPaths(values: Values, prefix = ''): string[] {
  return Object.entries(values).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return isMap(value) && Object.keys(value).length > 0 ? leafPaths(value, path) : [path];
  });
}
