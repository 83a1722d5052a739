import { newId } from '../../src/common/ids';

describe('newId', () => {
  it('makes prefixed base62 ids of the asked length, all distinct', () => {
    const ids = Array.from({ length: 20_000 }, () => newId('batch_req_'));
    for (const id of ids.slice(0, 100)) expect(id).toMatch(/^batch_req_[0-9A-Za-z]{24}$/);
    expect(newId('file-', 8)).toMatch(/^file-[0-9A-Za-z]{8}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('uses every character about equally often (no modulo bias toward the first eight)', () => {
    const counts = new Map<string, number>();
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      for (const c of newId('', 24)) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    expect(counts.size).toBe(62);
    const expected = (n * 24) / 62;
    // `byte % 62` over all 256 byte values would give '0'..'7' 5/4 of the others' share.
    const low = [...'01234567'].reduce((sum, c) => sum + counts.get(c)!, 0) / 8;
    const high = [...'89ABCDEFGH'].reduce((sum, c) => sum + counts.get(c)!, 0) / 10;
    expect(low / high).toBeGreaterThan(0.97);
    expect(low / high).toBeLessThan(1.03);
    for (const count of counts.values()) expect(Math.abs(count - expected) / expected).toBeLessThan(0.05);
  });
});
