import { ModelPattern } from '../../src/upstreams/registry';

describe('ModelPattern', () => {
  it.each([
    ['gpt-4o', 'gpt-4o', true],
    ['gpt-4o', 'gpt-4o-mini', false],
    ['gpt-4o*', 'gpt-4o-mini', true],
    ['gpt-4o*', 'gpt-4o', true],
    ['gpt-4o*', 'gpt-4', false],
    ['*', '', true],
    ['*', 'anything at all', true],
    ['*-mini', 'gpt-4o-mini', true],
    ['*-mini', 'gpt-4o-mini-2', false],
    ['text-*-3-*', 'text-embedding-3-small', true],
    ['text-*-3-*', 'text-embedding-2-small', false],
    ['a*a', 'a', false],
    ['a*a', 'aa', true],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'acb', false],
    ['a*bc*bc', 'abcbc', true],
    ['a*bc*bc', 'abcb', false],
    ['**', 'x', true],
    ['gpt.4o', 'gpt-4o', false],
    ['(a+)+$', '(a+)+$', true],
    ['[abc]', 'a', false],
  ])('%s matches %s: %s', (pattern, name, expected) => {
    expect(new ModelPattern(pattern).matches(name)).toBe(expected);
  });

  it('answers in one pass for a long crafted name against a multi-wildcard pattern', () => {
    // As a regular expression (^.*a.*a.*a.*a.*b$) this backtracks for ages on a name of a's.
    const pattern = new ModelPattern('*a*a*a*a*b');
    const crafted = 'a'.repeat(1_000_000);
    expect(pattern.matches(crafted)).toBe(false);
    expect(pattern.matches(`${crafted}b`)).toBe(true);
    expect(new ModelPattern('*-*-*-*-*-x').matches('-'.repeat(1_000_000))).toBe(false);
  });
});
