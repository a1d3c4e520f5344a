import { describe, expect, it } from 'vitest';
import { parseRange } from '../../src/http/range.ts';

const SIZE = 1000;

describe('parseRange', () => {
  it('no header means the whole body', () => {
    expect(parseRange(undefined, SIZE)).toEqual({ kind: 'none' });
    expect(parseRange('', SIZE)).toEqual({ kind: 'none' });
  });

  it('bytes=0-99 is the first 100 bytes', () => {
    expect(parseRange('bytes=0-99', SIZE)).toEqual({ kind: 'range', range: { start: 0, end: 99 } });
  });

  it('bytes=100- runs to the end', () => {
    expect(parseRange('bytes=100-', SIZE)).toEqual({ kind: 'range', range: { start: 100, end: 999 } });
  });

  it('bytes=-10 is the last 10 bytes', () => {
    expect(parseRange('bytes=-10', SIZE)).toEqual({ kind: 'range', range: { start: 990, end: 999 } });
  });

  it('a suffix longer than the body is the whole body', () => {
    expect(parseRange('bytes=-5000', SIZE)).toEqual({ kind: 'range', range: { start: 0, end: 999 } });
  });

  it('an end past the body is clamped to the last byte', () => {
    expect(parseRange('bytes=900-5000', SIZE)).toEqual({ kind: 'range', range: { start: 900, end: 999 } });
  });

  it('a single byte', () => {
    expect(parseRange('bytes=999-999', SIZE)).toEqual({ kind: 'range', range: { start: 999, end: 999 } });
  });

  it('tolerates spaces and a different case of the unit', () => {
    expect(parseRange(' Bytes = 5 - 9 ', SIZE)).toEqual({ kind: 'range', range: { start: 5, end: 9 } });
  });

  it.each(['bytes=1000-', 'bytes=1000-2000', 'bytes=5000-'])('%s starts beyond the body: unsatisfiable', (header) => {
    expect(parseRange(header, SIZE)).toEqual({ kind: 'unsatisfiable' });
  });

  it('bytes=-0 is unsatisfiable', () => {
    expect(parseRange('bytes=-0', SIZE)).toEqual({ kind: 'unsatisfiable' });
  });

  it('any range of an empty body is unsatisfiable', () => {
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-10', 0)).toEqual({ kind: 'unsatisfiable' });
  });

  it.each(['bytes=', 'bytes=-', 'bytes=abc', 'bytes=1-2-3', 'bytes=0.5-1', 'items=0-99', '0-99', 'bytes 0-99', 'bytes=99-0', 'bytes=0-9,'])(
    'malformed %j is ignored (whole body)',
    (header) => {
      expect(parseRange(header, SIZE)).toEqual({ kind: 'none' });
    },
  );

  it.each(['bytes=0-9,20-29', 'bytes=0-9, -5', 'bytes=0-0,999-999'])('multiple ranges %j are answered with the whole body', (header) => {
    expect(parseRange(header, SIZE)).toEqual({ kind: 'none' });
  });
});
