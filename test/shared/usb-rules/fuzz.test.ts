// Hostile input: whatever text arrives in a policy, the parser returns a Result — it never throws,
// never hangs, and what it accepts formats back to the same rule.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatRule } from '../../../shared/usb-rules/format.js';
import { evaluate } from '../../../shared/usb-rules/matcher.js';
import { parseMatcher, parseRule, parseRuleSet } from '../../../shared/usb-rules/parser.js';
import type { Rule } from '../../../shared/usb-rules/rule.js';
import { device } from './support.js';

/** Bounded inputs (2k UTF-16 units) parse in well under this; a backtracking blow-up would not. */
const SLOW_MS = 50;

function timed<T>(run: () => T): { value: T; ms: number } {
  const start = performance.now();
  const value = run();
  return { value, ms: performance.now() - start };
}

/** Any UTF-16 code unit, unpaired surrogates included, as JSON.parse can produce them. */
const utf16Unit = fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit));

const TOKENS = [
  'allow', 'block', 'reject', 'match', 'device', 'Allow', 'if', '!', 'true', 'random(0.5)',
  'id', 'serial', 'name', 'hash', 'parent-hash', 'via-port', 'with-interface', 'with-connect-type', 'label',
  'all-of', 'one-of', 'none-of', 'equals', 'equals-ordered', 'match-all',
  '{', '}', '{}', '"', '""', '"x"', '"\\"', '"\\x41"', '"\\xff"', '"\\n"', '\\', '#', '# c',
  '0930:6545', '0930:*', '*:*', '*:1234', '1234:56789', '08:*:*', '08:06:50', '08:*:50', '03:01:01', 'mass-storage', 'phone',
  '"総務課"', '\u3000', '\u00a0', '\ud800', '\r', '\t', '<img src=x onerror=alert(1)>',
];
const SEPARATORS = [' ', ' ', ' ', '\t', '', '  '];

const tokenSoup = fc
  .array(fc.tuple(fc.constantFrom(...SEPARATORS), fc.constantFrom(...TOKENS)), { maxLength: 60 })
  .map((pairs) => pairs.map(([separator, token]) => separator + token).join(''));

/** Token soups that start like a rule, so the parser gets past the target more often. */
const ruleSoup = fc.tuple(fc.constantFrom('allow', 'block', 'reject'), tokenSoup).map(([target, rest]) => `${target} ${rest}`);

function checkTotal(text: string): void {
  const { value: result, ms } = timed(() => parseRule(text));
  expect(ms).toBeLessThan(SLOW_MS);
  expect(typeof result.ok).toBe('boolean');
  if (result.ok) {
    // Whatever is accepted is a rule we can print and read back unchanged, and evaluate.
    expect(parseRule(formatRule(result.value))).toEqual(result);
    expect(['allow', 'block', 'reject']).toContain(evaluate([result.value], device(), 'block').target);
  } else {
    expect(result.error.line).toBe(1);
    expect(result.error.column).toBeGreaterThanOrEqual(1);
    expect(result.error.column).toBeLessThanOrEqual(text.length + 1);
    expect(result.error.message).toMatch(/^line 1, column \d+: ./);
  }
}

describe('fuzzing parseRule', () => {
  it('returns a Result for random Unicode strings up to 2k characters', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 2000 }), checkTotal), { numRuns: 2000 });
  });

  it('returns a Result for random UTF-16 strings with unpaired surrogates', () => {
    fc.assert(fc.property(fc.string({ unit: utf16Unit, maxLength: 2000 }), checkTotal), { numRuns: 2000 });
  });

  it('returns a Result for random soups of rule tokens', () => {
    fc.assert(fc.property(tokenSoup, checkTotal), { numRuns: 2000 });
  });

  it('returns a Result for token soups that start with a target', () => {
    fc.assert(fc.property(ruleSoup, checkTotal), { numRuns: 2000 });
  });

  it('returns a Result for match rules made of token soups', () => {
    fc.assert(
      fc.property(tokenSoup, (text) => {
        const result = parseMatcher(text);
        expect(result.ok || result.error.column >= 1).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('returns a Result for multi-line soups given to parseRuleSet', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(ruleSoup, tokenSoup, fc.constant('')), { maxLength: 20 }), (lines) => {
        for (const source of [lines, lines.join('\n'), lines.join('\r\n')]) {
          const result = parseRuleSet(source);
          if (!result.ok) {
            expect(result.error.line).toBeGreaterThanOrEqual(1);
            expect(result.error.line).toBeLessThanOrEqual(Math.max(lines.length, 1));
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('worst cases for time', () => {
  const inputs: readonly (readonly [string, string])[] = [
    ['escaped quotes', `allow name "${'\\"'.repeat(1000)}"`],
    ['unterminated escaped quotes', `allow name "${'\\"'.repeat(1000)}`],
    ['open braces', `allow with-interface ${'{'.repeat(2000)}`],
    ['hex escapes', `allow name "${'\\xe6\\x97\\xa5'.repeat(170)}"`],
    ['a broken hex escape at the end', `allow name "${'\\xe6\\x97\\xa5'.repeat(170)}\\xe6"`],
    ['backslashes', `allow name "${'\\'.repeat(2000)}`],
    ['a long set', `allow with-interface one-of { ${'08:*:* '.repeat(280)}}`],
    ['quotes', '"'.repeat(2000)],
    ['hashes', `allow ${'#'.repeat(2000)}`],
    ['a maximal line', `allow serial "${'S'.repeat(65_000)}"`],
  ];

  it.each(inputs)('parses %s quickly', (_what, text) => {
    expect(timed(() => parseRule(text)).ms).toBeLessThan(SLOW_MS * 4);
  });

  it('evaluates a 1000-value set against a device with 256 interfaces quickly', () => {
    const codes = Array.from({ length: 1000 }, (_, i) => `${(i % 256).toString(16).padStart(2, '0')}:${(i >> 8).toString(16).padStart(2, '0')}:*`);
    const parsedRule = parseRule(`allow with-interface equals { ${codes.join(' ')} }`);
    expect(parsedRule.ok).toBe(true);
    const rule = (parsedRule as { value: Rule }).value;
    const interfaces = Array.from({ length: 256 }, (_, i) => `${i.toString(16).padStart(2, '0')}:00:00`);
    expect(timed(() => evaluate([rule], device({ interfaces }), 'block')).ms).toBeLessThan(SLOW_MS * 4);
  });
});
