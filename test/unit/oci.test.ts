import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { OciError } from '../../src/oci/errors.ts';
import { DigestVerifier, digestOf, parseDigest } from '../../src/oci/digest.ts';
import { resolveManifestMediaType, summarizeManifest } from '../../src/oci/manifest.ts';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, parseAccept } from '../../src/oci/media-types.ts';
import { assertValidName, isTag, isValidName } from '../../src/oci/reference.ts';

const HEX64 = 'a'.repeat(64);
const HEX128 = 'b'.repeat(128);

/** The OciError `fn` throws; fails the test when it throws something else or nothing. */
function ociError(fn: () => unknown): OciError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OciError);
    return err as OciError;
  }
  throw new Error('expected an OciError, but nothing was thrown');
}

const json = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value));

describe('repository names', () => {
  it.each([
    'alpine',
    'library/alpine',
    'a',
    'a0/b1/c2',
    'my.app',
    'my_app',
    'my__app',
    'my-app',
    'my---app',
    'org/team/sub/app',
    'a'.repeat(255),
  ])('%s is valid', (name) => {
    expect(isValidName(name)).toBe(true);
    expect(() => assertValidName(name)).not.toThrow();
  });

  it.each([
    ['', 'empty'],
    ['..', 'dot-dot'],
    ['../etc', 'a parent reference'],
    ['a/../b', 'a parent component'],
    ['Alpine', 'upper case'],
    ['library/Alpine', 'upper case in a later component'],
    ['a//b', 'an empty component'],
    ['/alpine', 'a leading slash'],
    ['alpine/', 'a trailing slash'],
    ['.alpine', 'a leading separator'],
    ['alpine-', 'a trailing separator'],
    ['a..b', 'two dots'],
    ['a___b', 'three underscores'],
    ['a:b', 'a colon'],
    ['a b', 'a space'],
    ['a'.repeat(256), '256 characters'],
    [`${'a'.repeat(127)}/${'b'.repeat(128)}`, '256 characters over two components'],
  ])('%s is invalid (%s) with NAME_INVALID', (name) => {
    expect(isValidName(name)).toBe(false);
    const err = ociError(() => assertValidName(name));
    expect(err.code).toBe('NAME_INVALID');
    expect(err.status).toBe(400);
  });
});

describe('tags', () => {
  it.each(['latest', '3.19', 'v1.0.0-rc.1', '_internal', 'A', 'x'.repeat(128)])('%s is a tag', (tag) => {
    expect(isTag(tag)).toBe(true);
  });

  it.each(['', '-dash', '.dot', 'a:b', 'a/b', 'sha256:abc', 'x'.repeat(129), 'tag with space'])('%j is not a tag', (tag) => {
    expect(isTag(tag)).toBe(false);
  });
});

describe('parseDigest', () => {
  it('accepts sha256 with 64 lower-case hex characters', () => {
    expect(parseDigest(`sha256:${HEX64}`)).toEqual({ algorithm: 'sha256', hex: HEX64, value: `sha256:${HEX64}` });
  });

  it('accepts sha512 with 128 lower-case hex characters', () => {
    expect(parseDigest(`sha512:${HEX128}`)).toEqual({ algorithm: 'sha512', hex: HEX128, value: `sha512:${HEX128}` });
  });

  it.each([
    ['an unknown algorithm', `md5:${'c'.repeat(32)}`],
    ['upper-case hex', `sha256:${'A'.repeat(64)}`],
    ['an upper-case algorithm', `SHA256:${HEX64}`],
    ['too short', `sha256:${'a'.repeat(63)}`],
    ['too long', `sha256:${'a'.repeat(65)}`],
    ['sha512 with sha256 length', `sha512:${HEX64}`],
    ['non-hex characters', `sha256:${'g'.repeat(64)}`],
    ['a path', 'sha256:../../x'],
    ['a path after valid hex', `sha256:${HEX64}/../x`],
    ['no algorithm', `:${HEX64}`],
    ['no colon', HEX64],
    ['two colons', `sha256:${HEX64}:x`],
    ['empty', ''],
    ['very long', `sha256:${'a'.repeat(10_000)}`],
  ])('rejects %s with DIGEST_INVALID', (_why, text) => {
    const err = ociError(() => parseDigest(text));
    expect(err.code).toBe('DIGEST_INVALID');
    expect(err.status).toBe(400);
  });

  it('digestOf agrees with sha256sum', () => {
    expect(digestOf(new Uint8Array())).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(digestOf(Buffer.from('abc'), 'sha512')).toBe(`sha512:${createHash('sha512').update('abc').digest('hex')}`);
  });
});

describe('DigestVerifier', () => {
  const body = Buffer.from('the quick brown fox jumps over the lazy dog');

  it('matches when the same bytes arrive in chunks', () => {
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const verifier = new DigestVerifier(parseDigest(digestOf(body, algorithm)));
      for (let i = 0; i < body.length; i += 7) verifier.update(body.subarray(i, i + 7));
      expect(verifier.bytes).toBe(body.length);
      expect(verifier.matches()).toEqual({ ok: true, actual: digestOf(body, algorithm) });
    }
  });

  it('reports a mismatch and the digest of what actually arrived', () => {
    const verifier = new DigestVerifier(parseDigest(digestOf(body)));
    const other = Buffer.from(body);
    other[0] = 0x54;
    verifier.update(other);
    expect(verifier.matches()).toEqual({ ok: false, actual: digestOf(other) });
  });

  it('reports a mismatch for a truncated body', () => {
    const verifier = new DigestVerifier(parseDigest(digestOf(body)));
    verifier.update(body.subarray(0, body.length - 1));
    expect(verifier.matches().ok).toBe(false);
  });
});

describe('parseAccept', () => {
  it('gives a client that lists index types a different cache key than one that does not', () => {
    const withIndex = parseAccept(`${OCI_MANIFEST}, ${OCI_INDEX}, ${DOCKER_MANIFEST}, ${DOCKER_MANIFEST_LIST}`);
    const withoutIndex = parseAccept(`${OCI_MANIFEST}, ${DOCKER_MANIFEST}`);
    expect(withIndex.key).not.toBe(withoutIndex.key);
    expect(withIndex.types.has(OCI_INDEX)).toBe(true);
    expect(withoutIndex.types.has(OCI_INDEX)).toBe(false);
    expect(withoutIndex.types.has(DOCKER_MANIFEST_LIST)).toBe(false);
  });

  it('gives the same key whatever the order, case and parameters', () => {
    const a = parseAccept(`${OCI_INDEX}, ${OCI_MANIFEST}`);
    const b = parseAccept(`${OCI_MANIFEST.toUpperCase()};q=0.5,${OCI_INDEX} ; q=0.9`);
    expect(b.key).toBe(a.key);
    expect([...b.types].sort()).toEqual([OCI_INDEX, OCI_MANIFEST].sort());
  });

  it('drops parameters from the header forwarded upstream', () => {
    const accept = parseAccept(`${OCI_MANIFEST};q=0.5, ${DOCKER_MANIFEST};q=0.9`);
    expect(accept.header).not.toContain('q=');
    expect(accept.header.split(',').map((t) => t.trim()).sort()).toEqual([DOCKER_MANIFEST, OCI_MANIFEST].sort());
  });

  it('treats */* as every manifest type', () => {
    const all = parseAccept(`${OCI_MANIFEST}, ${OCI_INDEX}, ${DOCKER_MANIFEST}, ${DOCKER_MANIFEST_LIST}`);
    const star = parseAccept('*/*');
    expect(star.key).toBe(all.key);
    expect([...star.types].sort()).toEqual([DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST].sort());
  });

  it.each([undefined, '', 'application/json', 'text/html, application/xml;q=0.9'])('answers %j with a Docker schema2 manifest', (header) => {
    const accept = parseAccept(header);
    expect([...accept.types]).toEqual([DOCKER_MANIFEST]);
    expect(accept.header).toBe(DOCKER_MANIFEST);
    expect(accept.key).toBe(parseAccept(DOCKER_MANIFEST).key);
  });

  it('never treats schema1 as acceptable', () => {
    const accept = parseAccept('application/vnd.docker.distribution.manifest.v1+prettyjws');
    expect([...accept.types]).toEqual([DOCKER_MANIFEST]);
  });
});

describe('summarizeManifest', () => {
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'1'.repeat(64)}`, size: 100 };
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'2'.repeat(64)}`, size: 2000 };

  it('lists the config and layers of an image manifest', () => {
    const summary = summarizeManifest(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer, { ...layer, digest: `sha256:${'3'.repeat(64)}` }] }));
    expect(summary.mediaType).toBe(OCI_MANIFEST);
    expect(summary.config).toEqual(config);
    expect(summary.layers.map((l) => l.digest)).toEqual([layer.digest, `sha256:${'3'.repeat(64)}`]);
    expect(summary.manifests).toEqual([]);
  });

  it('lists the child manifests of an index with their platforms', () => {
    const child = { mediaType: OCI_MANIFEST, digest: `sha256:${'4'.repeat(64)}`, size: 500, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } };
    const summary = summarizeManifest(json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [child] }));
    expect(summary.manifests).toEqual([child]);
    expect(summary.layers).toEqual([]);
    expect(summary.config).toBeUndefined();
  });

  it('skips entries that are not descriptors', () => {
    const summary = summarizeManifest(json({ schemaVersion: 2, config, layers: [layer, { digest: 'x' }, 'junk', null] }));
    expect(summary.layers).toEqual([layer]);
  });

  it('refuses a Docker schema1 manifest', () => {
    const err = ociError(() => summarizeManifest(json({ schemaVersion: 1, name: 'library/alpine', tag: 'latest', fsLayers: [] })));
    expect(err.code).toBe('MANIFEST_INVALID');
  });

  it.each([
    ['not JSON', Buffer.from('<html>not a manifest</html>')],
    ['empty', new Uint8Array()],
    ['JSON null', Buffer.from('null')],
    ['a JSON string', Buffer.from('"manifest"')],
  ])('refuses a body that is %s', (_why, body) => {
    expect(ociError(() => summarizeManifest(body)).code).toBe('MANIFEST_INVALID');
  });
});

describe('resolveManifestMediaType', () => {
  const index = summarizeManifest(json({ schemaVersion: 2, mediaType: DOCKER_MANIFEST_LIST, manifests: [{ mediaType: DOCKER_MANIFEST, digest: `sha256:${HEX64}`, size: 1 }] }));
  const bareImage = summarizeManifest(json({ schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${HEX64}`, size: 1 }, layers: [] }));
  const bareIndex = summarizeManifest(json({ schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest: `sha256:${HEX64}`, size: 1 }] }));

  it("prefers the upstream's Content-Type when it is a manifest type", () => {
    expect(resolveManifestMediaType(OCI_INDEX, index)).toBe(OCI_INDEX);
  });

  it("falls back to the body's mediaType when the Content-Type is generic", () => {
    expect(resolveManifestMediaType('application/json', index)).toBe(DOCKER_MANIFEST_LIST);
    expect(resolveManifestMediaType('', index)).toBe(DOCKER_MANIFEST_LIST);
  });

  it('infers OCI types from the shape when neither says', () => {
    expect(resolveManifestMediaType('application/octet-stream', bareIndex)).toBe(OCI_INDEX);
    expect(resolveManifestMediaType('application/octet-stream', bareImage)).toBe(OCI_MANIFEST);
  });

  it('gives up on a document that is no manifest', () => {
    expect(resolveManifestMediaType('application/json', summarizeManifest(json({ hello: 'world' })))).toBeUndefined();
  });
});
