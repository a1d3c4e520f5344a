import { describe, expect, it } from 'vitest';
import { parseChallenge } from '../../src/upstream/challenge.ts';

describe('parseChallenge', () => {
  it("reads Docker Hub's Bearer challenge", () => {
    const header = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"';
    expect(parseChallenge(header)).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' },
    });
  });

  it('reads a Basic challenge', () => {
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic', params: { realm: 'Registry Realm' } });
  });

  it('keeps commas inside quoted values', () => {
    const challenge = parseChallenge('Bearer realm="https://auth.example/token",scope="repository:org/app:pull,push",error="insufficient_scope"');
    expect(challenge?.params).toEqual({ realm: 'https://auth.example/token', scope: 'repository:org/app:pull,push', error: 'insufficient_scope' });
  });

  it('unescapes escaped quotes and backslashes in quoted values', () => {
    const challenge = parseChallenge(String.raw`Basic realm="the \"lab\" registry \\ 2"`);
    expect(challenge?.params.realm).toBe(String.raw`the "lab" registry \ 2`);
  });

  it('accepts spaces around = and commas, token values and mixed-case names', () => {
    const challenge = parseChallenge('  BEARER  Realm = "https://auth.example/token" ,  Service=registry.example ');
    expect(challenge).toEqual({ scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example' } });
  });

  it('accepts a scheme with no parameters', () => {
    expect(parseChallenge('Negotiate')).toEqual({ scheme: 'negotiate', params: {} });
  });

  it.each([undefined, '', '   ', '"Bearer realm=x"', '=realm', '123 realm="x"', ',,,'])('gives undefined for %j', (header) => {
    expect(parseChallenge(header)).toBeUndefined();
  });
});
