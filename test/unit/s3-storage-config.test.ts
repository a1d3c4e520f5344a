// storage.s3 in the config (config/storage.ts, config/load.ts): what it resolves to, where its keys come
// from, that they never show in the config's JSON or inspect forms, and the mistakes refused at load.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const s3Of = (s3: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, cwd?: string) =>
  parseConfig({ storage: { s3 } } as ConfigInput, { env, ...(cwd ? { cwd } : {}) }).storage.s3;

describe('storage.s3', () => {
  it('is absent by default: blobs stay in the data dir', () => {
    expect(parseConfig({}).storage).toEqual({});
    expect(parseConfig({ storage: {} }).storage).toEqual({});
  });

  it('defaults the region, an empty prefix, path style when an endpoint is given, no redirect', () => {
    expect(s3Of({ bucket: 'mirror', endpoint: 'http://127.0.0.1:7480/' })).toEqual({
      endpoint: 'http://127.0.0.1:7480',
      bucket: 'mirror',
      region: 'us-east-1',
      prefix: '',
      forcePathStyle: true,
      redirect: false,
      redirectTtlMs: 300_000,
    });
    const aws = s3Of({ bucket: 'mirror', region: 'eu-west-1', prefix: '/ocimirror/prod//', redirect: true, redirectTtl: '90s', peerUrl: 'http://10.0.0.7:5000/' });
    expect(aws).toMatchObject({ region: 'eu-west-1', prefix: 'ocimirror/prod/', forcePathStyle: false, redirect: true, redirectTtlMs: 90_000, peerUrl: 'http://10.0.0.7:5000' });
    expect(aws?.endpoint).toBeUndefined();
    expect(aws?.credentials).toBeUndefined();
    expect(s3Of({ bucket: 'mirror', endpoint: 'https://s3.lab', forcePathStyle: false })?.forcePathStyle).toBe(false);
  });

  it('takes the keys inline, from environment variables or from files, and never shows them', async () => {
    const dir = await makeTempDir('s3-config');
    try {
      writeFileSync(join(dir, 'secret'), 'key-from-file\n');
      const inline = s3Of({ bucket: 'mirror', accessKeyId: 'AKIDINLINE', secretAccessKey: 'inline-secret' });
      expect(inline?.credentials?.accessKeyId.reveal()).toBe('AKIDINLINE');
      expect(inline?.credentials?.secretAccessKey.reveal()).toBe('inline-secret');
      const config = parseConfig({ storage: { s3: { bucket: 'mirror', accessKeyIdEnv: 'S3_ID', secretAccessKeyFile: 'secret' } } }, { env: { S3_ID: 'AKIDENV' }, cwd: dir });
      expect(config.storage.s3?.credentials?.accessKeyId.reveal()).toBe('AKIDENV');
      expect(config.storage.s3?.credentials?.secretAccessKey.reveal()).toBe('key-from-file');
      for (const shown of [JSON.stringify(config), inspect(config, { depth: 10 }), JSON.stringify(inline), inspect(inline, { depth: 10 })]) {
        expect(shown).not.toMatch(/AKIDENV|key-from-file|AKIDINLINE|inline-secret/);
        expect(shown).toContain('redacted');
      }
    } finally {
      await removeTempDir(dir);
    }
  });

  it('takes the peer URL from OCIMIRROR_S3_PEER_URL (one per pod), only where storage.s3 is configured', async () => {
    const dir = await makeTempDir('s3-config-env');
    try {
      writeFileSync(join(dir, 's3.yaml'), 'storage: { s3: { bucket: mirror, peerUrl: http://file.example:5000 } }\n');
      writeFileSync(join(dir, 'disk.yaml'), 'dataDir: ./data\n');
      const env = { OCIMIRROR_S3_PEER_URL: 'http://10.244.1.7:5000' };
      expect(loadConfig({ file: 's3.yaml', cwd: dir, env }).storage.s3?.peerUrl).toBe('http://10.244.1.7:5000');
      expect(loadConfig({ file: 'disk.yaml', cwd: dir, env }).storage).toEqual({});
    } finally {
      await removeTempDir(dir);
    }
  });

  it.each([
    [{}, /storage\.s3\.bucket/],
    [{ bucket: 'My_Bucket' }, /storage\.s3\.bucket: is not a bucket name/],
    [{ bucket: 'mirror', endpoint: '127.0.0.1:7480' }, /storage\.s3\.endpoint: must be an http:\/\/ or https:\/\/ URL/],
    [{ bucket: 'mirror', endpoint: 'http://id:key@127.0.0.1:7480' }, /storage\.s3\.endpoint: must not carry a user name or password/],
    [{ bucket: 'mirror', accessKeyId: 'AKID' }, /an access key id and a secret access key together, or neither/],
    [{ bucket: 'mirror', secretAccessKeyEnv: 'S3_KEY' }, /an access key id and a secret access key together, or neither/],
    [{ bucket: 'mirror', accessKeyId: 'AKID', accessKeyIdEnv: 'S3_ID', secretAccessKey: 'k' }, /only one of accessKeyId, accessKeyIdEnv, accessKeyIdFile/],
    [{ bucket: 'mirror', accessKeyIdEnv: 'UNSET_ID', secretAccessKey: 'k' }, /storage\.s3\.accessKeyId: environment variable UNSET_ID is not set/],
    [{ bucket: 'mirror', accessKeyId: 'AKID', secretAccessKeyFile: '/nonexistent/s3-key' }, /storage\.s3\.secretAccessKey: cannot read \/nonexistent\/s3-key/],
    [{ bucket: 'mirror', redirectTtl: '30d' }, /storage\.s3\.redirectTtl: "30d" is not a duration between 1s and 7d/],
    [{ bucket: 'mirror', prefix: 'a/../b' }, /storage\.s3\.prefix: must not contain \. or \.\. components/],
    [{ bucket: 'mirror', peerUrl: 'replica-a:5000' }, /storage\.s3\.peerUrl: must be an http:\/\/ or https:\/\/ URL/],
    [{ bucket: 'mirror', acessKeyId: 'typo' }, /storage\.s3: Unrecognized key/],
  ])('refuses %j', (s3, message) => {
    expect(() => s3Of(s3)).toThrow(ConfigError);
    expect(() => s3Of(s3)).toThrow(message);
  });

  it('refuses unknown storage kinds', () => {
    expect(() => parseConfig({ storage: { gcs: { bucket: 'x' } } } as unknown as ConfigInput)).toThrow(/storage: Unrecognized key/);
  });
});
