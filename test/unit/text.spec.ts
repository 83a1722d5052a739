import { echo, MAX_ECHO_CHARS, unstorableText } from '../../src/common/text';

describe('unstorableText', () => {
  it.each([
    ['plain', null],
    ['emoji 😀 pair', null],
    ['', null],
    ['a\u0000b', 'nul'],
    ['\u0000', 'nul'],
    ['high \ud83d alone', 'lone_surrogate'],
    ['low \ude00 alone', 'lone_surrogate'],
    ['ends high \ud83d', 'lone_surrogate'],
    ['reversed \ude00\ud83d', 'lone_surrogate'],
  ])('%j -> %s', (value, expected) => {
    expect(unstorableText(value)).toBe(expected);
  });
});

describe('echo', () => {
  it('keeps short values as they are', () => {
    expect(echo('/v1/chat/completions')).toBe('/v1/chat/completions');
  });

  it('cuts long values to the limit with an ellipsis, on code points', () => {
    const long = '😀'.repeat(MAX_ECHO_CHARS + 10);
    const shown = echo(long);
    expect(Array.from(shown)).toHaveLength(MAX_ECHO_CHARS + 1);
    expect(shown.endsWith('…')).toBe(true);
    expect(unstorableText(shown)).toBeNull();
  });

  it('escapes control characters and lone surrogates, so the message itself is storable', () => {
    const shown = echo('a\u0000b\nc\ud800');
    expect(shown).toBe('a\\u0000b\\u000ac\\ud800');
    expect(unstorableText(shown)).toBeNull();
  });

  it('stringifies non-strings, bounded as well', () => {
    expect(echo(42)).toBe('42');
    expect(echo({ a: 1 })).toBe('{"a":1}');
    expect(echo(new Array(1000).fill(1)).length).toBeLessThanOrEqual(MAX_ECHO_CHARS + 1);
  });

  it('counts escapes towards the limit, so a message stays short whatever the characters', () => {
    const shown = echo('\n'.repeat(10_000));
    expect(shown.length).toBeLessThanOrEqual(MAX_ECHO_CHARS + 1);
    expect(shown.endsWith('…')).toBe(true);
  });

  it('never throws, not even for a value too deep to stringify', () => {
    let deep: unknown[] = [];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(echo(deep)).toBe('[array]');
    expect(echo({ a: deep })).toBe('[object]');
  });
});
