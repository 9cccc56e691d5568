import { describe, expect, it } from 'vitest';
import { quoteString } from '../../../shared/usb-rules/format.js';
import { parseMatcher, parseMatcherSet, parseRule, parseRuleSet } from '../../../shared/usb-rules/parser.js';
import { BAD_RULES, HOSTILE_STRINGS, readFixture, ruleLines } from './support.js';

function parsed(text: string) {
  const result = parseRule(text);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(text)} to parse: ${result.error.message}`);
  return result.value;
}

describe('parseRule on the corpus of good rules', () => {
  const corpus = readFixture('good-rules.conf');

  it.each(ruleLines(corpus))('parses %j', (line) => {
    const result = parseRule(line);
    expect(result.ok ? 'ok' : result.error.message).toBe('ok');
  });

  it('parses the whole corpus as one rule set, skipping comments and blank lines', () => {
    const result = parseRuleSet(corpus);
    expect(result.ok && result.value.length).toBe(ruleLines(corpus).length);
  });
});

describe('parseRule results', () => {
  it('reads a target alone as a rule that matches every device', () => {
    expect(parsed('block')).toEqual({ target: 'block' });
  });

  it('reads a single value as equals over a one-element set', () => {
    expect(parsed('allow with-interface 08:06:50')).toEqual({
      target: 'allow',
      withInterface: { operator: 'equals', values: ['08:06:50'] },
    });
  });

  it('reads a set without an operator as equals', () => {
    expect(parsed('allow id { 0930:6545 058f:* }').id).toEqual({ operator: 'equals', values: ['0930:6545', '058f:*'] });
  });

  it('keeps set values in the order written, duplicates included', () => {
    expect(parsed('allow with-interface equals-ordered { 0e:02:00 0e:01:00 0e:02:00 }').withInterface).toEqual({
      operator: 'equals-ordered',
      values: ['0e:02:00', '0e:01:00', '0e:02:00'],
    });
  });

  it('reads a bare device id after the target as the id attribute, as USBGuard does', () => {
    expect(parsed('allow 1050:0011 name "Yubico Yubikey II"')).toEqual({
      target: 'allow',
      id: { operator: 'equals', values: ['1050:0011'] },
      name: { operator: 'equals', values: ['Yubico Yubikey II'] },
    });
  });

  it('maps every attribute keyword to its key', () => {
    expect(
      parsed(
        'reject id 1234:5678 serial "s" name "n" hash "h" parent-hash "p" via-port "1-2" with-interface 03:01:01 with-connect-type "hotplug" label "l"',
      ),
    ).toEqual({
      target: 'reject',
      id: { operator: 'equals', values: ['1234:5678'] },
      serial: { operator: 'equals', values: ['s'] },
      name: { operator: 'equals', values: ['n'] },
      hash: { operator: 'equals', values: ['h'] },
      parentHash: { operator: 'equals', values: ['p'] },
      viaPort: { operator: 'equals', values: ['1-2'] },
      withInterface: { operator: 'equals', values: ['03:01:01'] },
      withConnectType: { operator: 'equals', values: ['hotplug'] },
      label: 'l',
    });
  });

  it('lower-cases hex in device ids and interface codes', () => {
    const rule = parsed('allow id { 0930:654A ABCD:* } with-interface { 0E:*:* E0:01:01 }');
    expect(rule.id?.values).toEqual(['0930:654a', 'abcd:*']);
    expect(rule.withInterface?.values).toEqual(['0e:*:*', 'e0:01:01']);
  });

  it('decodes the escapes USBGuard accepts: \\", \\\\ and \\xHH as UTF-8 bytes', () => {
    expect(parsed('allow name "USB \\"Secure\\" Drive \\\\ v2"').name?.values).toEqual(['USB "Secure" Drive \\ v2']);
    expect(parsed('allow name "\\xe6\\x97\\xa5\\xe6\\x9c\\xac"').name?.values).toEqual(['日本']);
    expect(parsed('allow serial "\\x00\\x7f\\x0A"').serial?.values).toEqual(['\u0000\u007f\n']);
  });

  it('keeps raw tabs, control characters and Japanese text inside quotes as they are', () => {
    expect(parsed('allow name "a\tb\u0001c"').name?.values).toEqual(['a\tb\u0001c']);
    expect(parsed('allow label "総務課 暗号化USB #12"').label).toBe('総務課 暗号化USB #12');
  });

  it('accepts tabs and runs of blanks between tokens and braces touching their values', () => {
    expect(parsed('block\t with-interface  {08:*:*\t}')).toEqual(parsed('block with-interface 08:*:*'));
  });

  it('ignores a trailing comment, even one right after the last token', () => {
    expect(parsed('allow id 0930:6545 # comment')).toEqual(parsed('allow id 0930:6545'));
    expect(parsed('allow#comment')).toEqual({ target: 'allow' });
    expect(parsed('allow with-interface { 03:*:* }# comment')).toEqual(parsed('allow with-interface 03:*:*'));
  });

  it('ignores leading and trailing blanks (USBGuard 1.1.2 refuses them; later versions do not)', () => {
    expect(parsed(' \tallow id 0930:6545 \t')).toEqual(parsed('allow id 0930:6545'));
  });

  it('reads Sekimori interface class names inside with-interface', () => {
    expect(parsed('block with-interface one-of { mass-storage phone 02:*:* }').withInterface?.values).toEqual([
      'mass-storage',
      'phone',
      '02:*:*',
    ]);
  });

  it('treats # inside quotes as text, not as a comment', () => {
    expect(parsed('allow label "USB #12" id 0930:6545').label).toBe('USB #12');
  });
});

describe('parseRule errors', () => {
  it.each(BAD_RULES.map(([text, code, column]) => [text, code, column] as const))('refuses %j with %s at column %i', (text, code, column) => {
    const result = parseRule(text);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect({ code: result.error.code, line: result.error.line, column: result.error.column }).toEqual({ code, line: 1, column });
    expect(result.error.message).toMatch(new RegExp(`^line 1, column ${column}: .{10,}`));
  });

  it('explains that conditions are refused rather than ignored', () => {
    const result = parseRule('allow if random(0.1666)');
    expect(!result.ok && result.error.message).toMatch(/conditions .* not supported/);
  });
});

describe('parseMatcher', () => {
  it('parses a rule without a target, for the policy readOnly list', () => {
    expect(parseMatcher('id 0930:6545 serial "D4E5F6"')).toEqual({
      ok: true,
      value: { id: { operator: 'equals', values: ['0930:6545'] }, serial: { operator: 'equals', values: ['D4E5F6'] } },
    });
  });

  it('accepts a bare device id at the start, like a rule right after its target', () => {
    expect(parseMatcher('0930:6545 serial "D4E5F6"')).toEqual(parseMatcher('id 0930:6545 serial "D4E5F6"'));
  });

  it('refuses a match rule that starts with a target', () => {
    const result = parseMatcher('allow id 0930:6545');
    expect(!result.ok && [result.error.code, result.error.column]).toEqual(['unexpected-target', 1]);
  });

  it('refuses an empty match rule', () => {
    const result = parseMatcher('  ');
    expect(!result.ok && result.error.code).toBe('empty-rule');
  });

  it('parses a readOnly list and reports the bad entry by its index + 1', () => {
    expect(parseMatcherSet(['id 0930:6545', '# note', 'serial "X"']).ok).toBe(true);
    const result = parseMatcherSet(['id 0930:6545', 'serial X']);
    expect(!result.ok && [result.error.code, result.error.line, result.error.column]).toEqual(['expected-string', 2, 8]);
  });
});

describe('parseRuleSet', () => {
  it('skips blank lines, blank-only lines and comment lines', () => {
    const result = parseRuleSet('# header\n\n   \n\t# indented comment\nallow id 0930:6545\nblock\n');
    expect(result).toEqual({ ok: true, value: [{ target: 'allow', id: { operator: 'equals', values: ['0930:6545'] } }, { target: 'block' }] });
  });

  it('accepts an empty rule set', () => {
    expect(parseRuleSet('')).toEqual({ ok: true, value: [] });
    expect(parseRuleSet([])).toEqual({ ok: true, value: [] });
  });

  it('rejects the whole set when one rule is bad, naming its line and column', () => {
    const result = parseRuleSet('allow with-interface 03:*:*\n# comment\nallow serial ABC\nblock\n');
    expect(result.ok).toBe(false);
    expect(!result.ok && [result.error.code, result.error.line, result.error.column]).toEqual(['expected-string', 3, 14]);
    expect(!result.ok && result.error.message).toMatch(/^line 3, column 14: /);
  });

  it('numbers the lines of an array by index + 1, counting skipped entries', () => {
    const result = parseRuleSet(['allow id 0930:6545', '', '# c', 'allow with-interface 08:*:50']);
    expect(!result.ok && [result.error.code, result.error.line, result.error.column]).toEqual(['invalid-interface', 4, 22]);
  });

  it('refuses an array element that holds several lines', () => {
    const result = parseRuleSet(['allow', 'allow id 0930:6545\nblock']);
    expect(!result.ok && [result.error.code, result.error.line, result.error.column]).toEqual(['multiple-lines', 2, 19]);
  });

  it('accepts CRLF line ends and a leading byte-order mark in text', () => {
    const result = parseRuleSet('\ufeffallow id 0930:6545\r\nblock\r\n');
    expect(result.ok && result.value.length).toBe(2);
  });

  it('refuses the policy when a rule uses conditions', () => {
    const result = parseRuleSet(['allow with-interface 03:*:*', 'allow if random(0.1666)', 'reject']);
    expect(!result.ok && [result.error.code, result.error.line, result.error.column]).toEqual(['conditions-unsupported', 2, 7]);
  });
});

describe('hostile strings in names, serials and labels', () => {
  it.each(HOSTILE_STRINGS.map((value) => [value.length > 40 ? `${value.slice(0, 20)}… (${value.length} chars)` : value, value]))(
    'round-trips %j when quoted by quoteString',
    (_shown, value) => {
      const text = `allow name ${quoteString(value)} serial ${quoteString(value)} label ${quoteString(value)}`;
      const rule = parsed(text);
      expect([rule.name?.values[0], rule.serial?.values[0], rule.label]).toEqual([value, value, value]);
    },
  );

  it.each(HOSTILE_STRINGS.map((value) => [value.slice(0, 40), value]))('parses or cleanly refuses %j pasted raw between quotes', (_shown, value) => {
    const result = parseRule(`allow name "${value}" label "${value}"`);
    if (result.ok) {
      expect(result.value.target).toBe('allow');
    } else {
      expect(result.error.line).toBe(1);
      expect(result.error.column).toBeGreaterThan(0);
    }
  });

  it('parses a 5000-character serial', () => {
    expect(parsed(`allow serial "${'S'.repeat(5000)}"`).serial?.values[0]).toHaveLength(5000);
  });
});
