import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { OciError } from '../../src/oci/errors.ts';
import { UpstreamTable, type RouteInput } from '../../src/upstream/route.ts';

const HUB = {
  name: 'docker.io',
  url: 'https://registry-1.docker.io',
  aliases: ['docker.io', 'index.docker.io', 'registry-1.docker.io'],
  default: true,
  officialImages: true,
};
const LAB = { name: 'lab', url: 'http://127.0.0.1:5001', aliases: ['ghcr.io', '127.0.0.1:5001'] };

function tableOf(...upstreams: Record<string, unknown>[]): UpstreamTable {
  return new UpstreamTable(parseConfig({ upstreams }, { env: {} }).upstreams);
}

const table = tableOf(HUB, LAB);

/** Where a request goes, as [upstream name, repo, rule]. */
function where(input: RouteInput, t: UpstreamTable = table): [string, string, string] {
  const routed = t.route(input);
  return [routed.upstream.name, routed.repo, routed.rule];
}

function routeError(input: RouteInput, t: UpstreamTable = table): OciError {
  try {
    t.route(input);
  } catch (err) {
    expect(err).toBeInstanceOf(OciError);
    return err as OciError;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be refused`);
}

describe('UpstreamTable.route by ?ns=', () => {
  it('ns=docker.io picks Docker Hub and maps an official image to library/', () => {
    expect(where({ ns: 'docker.io', name: 'alpine' })).toEqual(['docker.io', 'library/alpine', 'ns']);
    expect(where({ ns: 'docker.io', name: 'library/alpine' })).toEqual(['docker.io', 'library/alpine', 'ns']);
    expect(where({ ns: 'docker.io', name: 'bitnami/redis' })).toEqual(['docker.io', 'bitnami/redis', 'ns']);
  });

  it('any alias works as ns, case-insensitively', () => {
    expect(where({ ns: 'registry-1.docker.io', name: 'alpine' })[0]).toBe('docker.io');
    expect(where({ ns: 'GHCR.IO', name: 'org/app' })).toEqual(['lab', 'org/app', 'ns']);
    expect(where({ ns: '127.0.0.1:5001', name: 'org/app' })).toEqual(['lab', 'org/app', 'ns']);
  });

  it('the upstream name works as ns', () => {
    expect(where({ ns: 'lab', name: 'org/app' })).toEqual(['lab', 'org/app', 'ns']);
  });

  it('an unknown ns is NAME_UNKNOWN, never the default upstream', () => {
    for (const ns of ['evil.example.com', '127.0.0.1:6666', 'quay.io', '', 'docker.io.evil.example']) {
      const err = routeError({ ns, name: 'alpine' });
      expect(err.code).toBe('NAME_UNKNOWN');
      expect(err.status).toBe(404);
    }
  });

  it('the table knows nothing about a host it was not configured with', () => {
    expect(table.byHost('evil.example.com')).toBeUndefined();
    expect(table.byHost('mirror:5000')).toBeUndefined();
    expect(table.byName('evil.example.com')).toBeUndefined();
    expect(table.upstreams.map((u) => u.name)).toEqual(['docker.io', 'lab']);
  });

  it('strips a path prefix naming the same upstream (containerd override_path)', () => {
    expect(where({ ns: 'ghcr.io', name: 'ghcr.io/org/app' })).toEqual(['lab', 'org/app', 'ns']);
    expect(where({ ns: 'docker.io', name: 'docker.io/alpine' })).toEqual(['docker.io', 'library/alpine', 'ns']);
    expect(where({ ns: 'docker.io', name: 'docker.io/library/alpine' })).toEqual(['docker.io', 'library/alpine', 'ns']);
  });
});

describe('UpstreamTable.route by Host header', () => {
  it('a Host that is an alias picks that upstream', () => {
    expect(where({ host: 'ghcr.io', name: 'org/app' })).toEqual(['lab', 'org/app', 'host']);
    expect(where({ host: 'GHCR.io', name: 'org/app' })).toEqual(['lab', 'org/app', 'host']);
    expect(where({ host: 'index.docker.io', name: 'alpine' })).toEqual(['docker.io', 'library/alpine', 'host']);
  });

  it('a Host with :443 (or :80) matches the alias without a port', () => {
    expect(where({ host: 'ghcr.io:443', name: 'org/app' })).toEqual(['lab', 'org/app', 'host']);
    expect(where({ host: 'ghcr.io:80', name: 'org/app' })).toEqual(['lab', 'org/app', 'host']);
  });

  it('a Host with another port is not the alias', () => {
    expect(where({ host: 'ghcr.io:8443', name: 'org/app' })).toEqual(['docker.io', 'org/app', 'default']);
  });

  it("the mirror's own name falls through to the path prefix, then the default", () => {
    expect(where({ host: 'mirror:5000', name: 'ghcr.io/org/app' })).toEqual(['lab', 'org/app', 'path']);
    expect(where({ host: 'mirror:5000', name: 'alpine' })).toEqual(['docker.io', 'library/alpine', 'default']);
    expect(where({ host: 'mirror:5000', name: 'org/app' })).toEqual(['docker.io', 'org/app', 'default']);
  });
});

describe('UpstreamTable.route by path prefix', () => {
  it('ghcr.io/org/app goes to the lab upstream as org/app', () => {
    expect(where({ name: 'ghcr.io/org/app' })).toEqual(['lab', 'org/app', 'path']);
    expect(where({ name: '127.0.0.1:5001/org/app' })).toEqual(['lab', 'org/app', 'path']);
  });

  it('docker.io/alpine goes to Docker Hub as library/alpine', () => {
    expect(where({ name: 'docker.io/alpine' })).toEqual(['docker.io', 'library/alpine', 'path']);
  });

  it('a first component that is no alias is part of the repository on the default upstream', () => {
    expect(where({ name: 'example.com/org/app' })).toEqual(['docker.io', 'example.com/org/app', 'default']);
  });

  it('a lone alias is a repository name, not a prefix', () => {
    expect(where({ name: 'ghcr.io' })).toEqual(['docker.io', 'library/ghcr.io', 'default']);
  });
});

describe('UpstreamTable.route precedence: ns > Host > path > default', () => {
  it('ns beats Host and path prefix', () => {
    expect(where({ ns: 'docker.io', host: 'ghcr.io', name: 'library/alpine' })).toEqual(['docker.io', 'library/alpine', 'ns']);
    expect(where({ ns: 'docker.io', name: 'ghcr.io/org/app' })).toEqual(['docker.io', 'ghcr.io/org/app', 'ns']);
  });

  it('Host beats path prefix', () => {
    expect(where({ host: 'docker.io', name: 'ghcr.io/org/app' })).toEqual(['docker.io', 'ghcr.io/org/app', 'host']);
  });

  it('path prefix beats the default', () => {
    expect(where({ name: 'ghcr.io/org/app' })[2]).toBe('path');
  });
});

describe('UpstreamTable.route refuses invalid names', () => {
  it.each([
    { name: 'ghcr.io/Org/App' },
    { name: 'ghcr.io/' },
    { name: 'ghcr.io/a//b' },
    { name: 'ghcr.io/../etc' },
    { ns: 'ghcr.io', name: 'ghcr.io/' },
    { ns: 'docker.io', name: 'Alpine' },
    { host: 'ghcr.io', name: 'org/App' },
    { name: '..' },
    { name: `ghcr.io/${'a'.repeat(256)}` },
  ])('%j is NAME_INVALID', (input) => {
    const err = routeError(input);
    expect(err.code).toBe('NAME_INVALID');
    expect(err.status).toBe(400);
  });
});

describe('UpstreamTable.route without a default upstream', () => {
  const noDefault = tableOf({ ...HUB, default: false }, LAB);

  it('routes what names an upstream', () => {
    expect(where({ ns: 'docker.io', name: 'alpine' }, noDefault)).toEqual(['docker.io', 'library/alpine', 'ns']);
    expect(where({ host: 'ghcr.io', name: 'org/app' }, noDefault)).toEqual(['lab', 'org/app', 'host']);
    expect(where({ name: 'ghcr.io/org/app' }, noDefault)).toEqual(['lab', 'org/app', 'path']);
  });

  it('refuses what matches nothing with NAME_UNKNOWN', () => {
    expect(routeError({ name: 'alpine' }, noDefault).code).toBe('NAME_UNKNOWN');
    expect(routeError({ host: 'mirror:5000', name: 'org/app' }, noDefault).code).toBe('NAME_UNKNOWN');
  });
});
