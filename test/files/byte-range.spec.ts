import { parseRange } from '../../src/files/byte-range';

describe('parseRange', () => {
  it.each([
    ['bytes=0-9', 100, { start: 0, end: 9 }],
    ['bytes=90-', 100, { start: 90, end: 99 }],
    ['bytes=95-200', 100, { start: 95, end: 99 }],
    ['bytes=-10', 100, { start: 90, end: 99 }],
    ['bytes=-500', 100, { start: 0, end: 99 }],
    [' bytes=5-5 ', 100, { start: 5, end: 5 }],
  ])('serves %s of %d bytes as a partial range', (header, size, range) => {
    expect(parseRange(header, size)).toEqual({ kind: 'partial', range });
  });

  it.each([
    ['bytes=100-', 100],
    ['bytes=100-200', 100],
    ['bytes=-0', 100],
    ['bytes=0-', 0],
    ['bytes=-5', 0],
  ])('finds %s of %d bytes unsatisfiable', (header, size) => {
    expect(parseRange(header, size)).toEqual({ kind: 'unsatisfiable' });
  });

  it.each([undefined, '', 'bytes=', 'bytes=-', 'bytes=5-2', 'items=0-5', 'bytes=0-1,5-6', 'bytes=a-b'])(
    'ignores %p and serves the whole file',
    (header) => {
      expect(parseRange(header, 100)).toEqual({ kind: 'full' });
    },
  );
});
