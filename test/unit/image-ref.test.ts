import { describe, expect, it } from 'vitest';
import { imageList } from '../../src/cli/warm.ts';
import { formatImageRef, ImageRefError, parseImageRef, referenceOf, splitReference } from '../../src/oci/image-ref.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('parseImageRef', () => {
  it.each([
    ['alpine', undefined, 'alpine', undefined, undefined],
    ['alpine:3.20', undefined, 'alpine', '3.20', undefined],
    ['library/alpine:3.20', undefined, 'library/alpine', '3.20', undefined],
    ['docker.io/library/alpine:3.20', 'docker.io', 'library/alpine', '3.20', undefined],
    ['docker.io/alpine', 'docker.io', 'alpine', undefined, undefined],
    ['ghcr.io/org/app:v1', 'ghcr.io', 'org/app', 'v1', undefined],
    ['registry.k8s.io/pause:3.9', 'registry.k8s.io', 'pause', '3.9', undefined],
    ['quay.io/org/sub/app:v1.2.3-rc_1', 'quay.io', 'org/sub/app', 'v1.2.3-rc_1', undefined],
    [`pause@${DIGEST}`, undefined, 'pause', undefined, DIGEST],
    [`registry.k8s.io/pause:3.9@${DIGEST}`, 'registry.k8s.io', 'pause', '3.9', DIGEST],
    ['localhost:5000/app:1', 'localhost:5000', 'app', '1', undefined],
    ['localhost/app', 'localhost', 'app', undefined, undefined],
    ['127.0.0.1:5001/team/app', '127.0.0.1:5001', 'team/app', undefined, undefined],
    ['[::1]:5000/app:2', '[::1]:5000', 'app', '2', undefined],
    ['Registry.Example/app', 'registry.example', 'app', undefined, undefined],
    ['docker://docker.io/library/alpine:3.8', 'docker.io', 'library/alpine', '3.8', undefined],
    ['  alpine:3.8  ', undefined, 'alpine', '3.8', undefined],
  ])('%s', (text, registry, repository, tag, digest) => {
    expect(parseImageRef(text)).toEqual({ registry, repository, tag, digest });
  });

  it('treats a first component without dot, colon or upper case as part of the repository', () => {
    expect(parseImageRef('myorg/app:1')).toEqual({ registry: undefined, repository: 'myorg/app', tag: '1', digest: undefined });
  });

  it.each([
    ['', /empty/],
    ['Alpine:3.20', /repository name/],
    ['docker.io/Library/alpine', /repository name/],
    ['alpine:', /not a valid tag/],
    ['alpine:has space', /not a valid tag/],
    [`alpine:${'x'.repeat(129)}`, /not a valid tag/],
    ['alpine@sha256:abc', /sha256/],
    ['alpine@md5:abc', /unsupported digest algorithm/],
    ['ghcr.io/', /repository name/],
    ['org/a..b', /repository name/],
    ['a..b/app', /not a registry host/],
    ['bad_host.io/app', /not a registry host/],
    ['docker.io//alpine', /repository name/],
  ])('refuses %j', (text, message) => {
    expect(() => parseImageRef(text)).toThrow(ImageRefError);
    expect(() => parseImageRef(text)).toThrow(message);
  });

  it('pulls the digest when given, else the tag, else latest', () => {
    expect(referenceOf(parseImageRef('alpine'))).toBe('latest');
    expect(referenceOf(parseImageRef('alpine:3.8'))).toBe('3.8');
    expect(referenceOf(parseImageRef(`alpine:3.8@${DIGEST}`))).toBe(DIGEST);
  });

  it('formats back to the text it parsed', () => {
    for (const text of ['alpine', 'ghcr.io/org/app:v1', `registry.k8s.io/pause:3.9@${DIGEST}`, 'localhost:5000/app']) {
      expect(formatImageRef(parseImageRef(text))).toBe(text);
    }
  });
});

describe('splitReference', () => {
  it('does not take a registry port for a tag', () => {
    expect(splitReference('host:5000/app')).toEqual({ name: 'host:5000/app', tag: undefined, digest: undefined });
    expect(splitReference('host:5000/app:1')).toEqual({ name: 'host:5000/app', tag: '1', digest: undefined });
    expect(splitReference(`app@${DIGEST}`)).toEqual({ name: 'app', tag: undefined, digest: DIGEST });
  });
});

describe('warm --file lists', () => {
  it('skips blank lines and comments', () => {
    expect(imageList('# images for the lab\nalpine:3.20\n\n  ghcr.io/org/app:v1  # the app\r\n#registry.k8s.io/pause:3.9\n')).toEqual(['alpine:3.20', 'ghcr.io/org/app:v1']);
  });
});
