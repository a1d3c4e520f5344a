// The access line's request ids (http/request-ids.ts): 12 lowercase hex digits each, drawn from a random
// block that is refilled every 32 ids; ids stay distinct across refills and between instances.
import { describe, expect, it } from 'vitest';
import { RequestIds } from '../../src/http/request-ids.ts';

describe('RequestIds', () => {
  it('gives 12 lowercase hex digits per id, distinct over several refills of its block', () => {
    const ids = new RequestIds();
    const seen = new Set<string>();
    for (let i = 0; i < 512 * 5 + 7; i++) {
      const id = ids.next();
      expect(id).toMatch(/^[0-9a-f]{12}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(512 * 5 + 7);
  });

  it('draws new bytes at each refill and in each instance (not one sequence replayed)', () => {
    const a = new RequestIds();
    const b = new RequestIds();
    const block = 32;
    const first = Array.from({ length: block }, () => a.next());
    const second = Array.from({ length: block }, () => a.next());
    const other = Array.from({ length: block }, () => b.next());
    expect(second).not.toEqual(first);
    expect(other).not.toEqual(first);
  });
});
