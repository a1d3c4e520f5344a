import { describe, expect, it } from 'vitest';
import { rewriteLink } from '../../src/mirror/pull-tags.ts';

describe('tags/list next-page links', () => {
  it('points the upstream repository path at the name the client used, keeping n and last', () => {
    expect(rewriteLink('</v2/library/alpine/tags/list?n=2&last=b>; rel="next"', 'library/alpine', 'alpine', undefined)).toBe(
      '</v2/alpine/tags/list?n=2&last=b>; rel="next"',
    );
  });

  it('keeps containerd’s ns parameter and turns absolute upstream URLs into paths on the mirror', () => {
    expect(rewriteLink('<https://registry-1.docker.io/v2/library/alpine/tags/list?n=2&last=b>; rel="next"', 'library/alpine', 'docker.io/library/alpine', 'docker.io')).toBe(
      '</v2/docker.io/library/alpine/tags/list?n=2&last=b&ns=docker.io>; rel="next"',
    );
  });
});
