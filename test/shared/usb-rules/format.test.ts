import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatMatcher, formatRule, quoteString } from '../../../shared/usb-rules/format.js';
import { parseMatcher, parseRule } from '../../../shared/usb-rules/parser.js';
import type { Rule } from '../../../shared/usb-rules/rule.js';
import { matcherArb, readFixture, ruleArb, ruleLines } from './support.js';

function parsed(text: string): Rule {
  const result = parseRule(text);
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

describe('formatRule', () => {
  it('prints attributes in USBGuard order and a single equals value without braces', () => {
    expect(formatRule(parsed('allow 1050:0011 label "l" with-interface equals { 08:*:* } name "n" serial "s"'))).toBe(
      'allow id 1050:0011 serial "s" name "n" with-interface 08:*:* label "l"',
    );
  });

  it('prints several equals values in braces without the operator, and other operators by name', () => {
    expect(formatRule(parsed('block with-interface equals { 08:*:* 03:*:* } id one-of { 0930:* }'))).toBe(
      'block id one-of { 0930:* } with-interface { 08:*:* 03:*:* }',
    );
  });

  it('prints a rule without attributes as its target', () => {
    expect(formatRule({ target: 'reject' })).toBe('reject');
  });

  it('prints class names by name', () => {
    expect(formatRule(parsed('block with-interface all-of { mass-storage hid }'))).toBe('block with-interface all-of { mass-storage hid }');
  });

  it('prints a match rule without a target', () => {
    expect(formatMatcher(parsed('allow id 0930:6545 serial "D4E5F6"'))).toBe('id 0930:6545 serial "D4E5F6"');
  });
});

describe('quoteString', () => {
  it('escapes quotes and backslashes', () => {
    expect(quoteString('a "b" \\ c')).toBe('"a \\"b\\" \\\\ c"');
  });

  it('keeps printable Japanese text readable', () => {
    expect(quoteString('総務課 暗号化USB #12')).toBe('"総務課 暗号化USB #12"');
  });

  it('escapes control, separator and invisible format characters as UTF-8 \\xHH bytes', () => {
    expect(quoteString('a\tb\u0000\u007f')).toBe('"a\\x09b\\x00\\x7f"');
    expect(quoteString('\u2028')).toBe('"\\xe2\\x80\\xa8"');
    expect(quoteString('abc\u202edcba')).toBe('"abc\\xe2\\x80\\xaedcba"');
    expect(quoteString('\u200b\ufeff')).toBe('"\\xe2\\x80\\x8b\\xef\\xbb\\xbf"');
    expect(quoteString('\u0085')).toBe('"\\xc2\\x85"');
  });

  it('escapes everything outside printable ASCII with asciiOnly, as USBGuard prints strings', () => {
    expect(quoteString('日本\t"', { asciiOnly: true })).toBe('"\\xe6\\x97\\xa5\\xe6\\x9c\\xac\\x09\\""');
    expect(quoteString('👍', { asciiOnly: true })).toBe('"\\xf0\\x9f\\x91\\x8d"');
  });

  it('refuses an unpaired surrogate, which no parsed rule can contain', () => {
    expect(() => quoteString('\ud800')).toThrow(RangeError);
  });
});

describe('round trip', () => {
  it('parseRule(formatRule(rule)) gives back every rule', () => {
    fc.assert(
      fc.property(ruleArb, (rule) => {
        expect(parseRule(formatRule(rule))).toEqual({ ok: true, value: rule });
      }),
      { numRuns: 2000 },
    );
  });

  it('parseRule(formatRule(rule, asciiOnly)) gives back every rule', () => {
    fc.assert(
      fc.property(ruleArb, (rule) => {
        const text = formatRule(rule, { asciiOnly: true });
        expect(text).toMatch(/^[\x20-\x7e]*$/);
        expect(parseRule(text)).toEqual({ ok: true, value: rule });
      }),
      { numRuns: 2000 },
    );
  });

  it('parseMatcher(formatMatcher(matcher)) gives back every non-empty match rule', () => {
    fc.assert(
      fc.property(
        matcherArb.filter((matcher) => Object.keys(matcher).length > 0),
        (matcher) => {
          expect(parseMatcher(formatMatcher(matcher))).toEqual({ ok: true, value: matcher });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it.each(ruleLines(readFixture('good-rules.conf')))('formats %j to a fixed point', (line) => {
    const once = formatRule(parsed(line));
    expect(formatRule(parsed(once))).toBe(once);
    expect(parsed(once)).toEqual(parsed(line));
  });
});
