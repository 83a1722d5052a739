import { estimateTokens } from '../../src/upstreams/token-estimate';

describe('estimateTokens', () => {
  it('counts about four characters a token of the input, token ids one each, plus the output budget', () => {
    expect(estimateTokens({ messages: [{ role: 'user', content: 'x'.repeat(400) }] })).toBe(101);
    expect(estimateTokens({ prompt: [1, 2, 3], max_tokens: 10 })).toBe(13);
    expect(estimateTokens({ input: 'abcd', max_output_tokens: 5, n: 3 })).toBe(16);
    expect(estimateTokens({})).toBe(1);
  });

  it('walks a body nested 100,000 levels deep without recursion', () => {
    let deep: unknown = 'abcd';
    for (let i = 0; i < 100_000; i++) deep = i % 2 ? [deep] : { v: deep };
    expect(estimateTokens({ messages: deep })).toBe(1);
  });

  it('counts every string of a wide body once', () => {
    const messages = Array.from({ length: 1000 }, () => ({ role: 'user', content: 'abcdefgh' }));
    expect(estimateTokens({ messages })).toBe(Math.ceil((1000 * (4 + 8)) / 4));
  });
});
