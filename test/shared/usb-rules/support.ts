// Helpers shared by the usb-rules tests: a device builder, fixture access and fast-check arbitraries.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type { UsbDeviceIdentity } from '../../../shared/usb-rules/device.js';
import type { RuleErrorCode } from '../../../shared/usb-rules/errors.js';
import { INTERFACE_CLASS_NAMES } from '../../../shared/usb-rules/interface-classes.js';
import { MAX_RULE_LENGTH } from '../../../shared/usb-rules/parser.js';
import type { AttributeSet, Matcher, NonEmptyArray, Rule, RuleTarget, SetOperator } from '../../../shared/usb-rules/rule.js';
import { SET_OPERATORS } from '../../../shared/usb-rules/rule.js';

/** A plain USB flash drive; override what a test is about. */
export function device(overrides: Partial<UsbDeviceIdentity> = {}): UsbDeviceIdentity {
  return {
    vendorId: '0930',
    productId: '6545',
    serial: 'A1B2C3',
    name: 'TransMemory',
    hash: 'Kbz0TAbWGIwoA4U0zMcOIFmnP1W5GAzcQ8/HjzVZgmA=',
    parentHash: 'jEP/6WzviqdJ5VSeTUY8PatCNBKeaREvo2OqdplND/o=',
    viaPort: '1-2',
    connectType: 'hotplug',
    interfaces: ['08:06:50'],
    ...overrides,
  };
}

export function readFixture(name: string): string {
  return readFileSync(fileURLToPath(new URL(`../../fixtures/usb-rules/${name}`, import.meta.url)), 'utf8');
}

export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`../../fixtures/usb-rules/${name}`, import.meta.url));
}

/** Splits a fixture into its `## key: …` blocks (the `##` lines are comments to the rule parser). */
export function fixtureBlocks(text: string): Map<string, string> {
  const blocks = new Map<string, string>();
  let key: string | null = null;
  for (const line of text.split('\n')) {
    const header = /^## ([\w-]+):/.exec(line);
    if (header !== null) {
      key = header[1]!;
      blocks.set(key, '');
    } else if (key !== null && line.trim() !== '') {
      blocks.set(key, `${blocks.get(key)}${line}\n`);
    }
  }
  return blocks;
}

/** Lines of a fixture that are rules (not blank, not comments). */
export function ruleLines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
}

// ---------------------------------------------------------------------------------------------
// The corpus of bad rules.

const long = `allow name "${'a'.repeat(MAX_RULE_LENGTH)}"`;

/**
 * Rules that `parseRule` refuses, with the error code and column (line 1) it must report, and what
 * USBGuard 1.1.2 does with the same text when that differs: `accepts` marks a documented deviation
 * (README.md, "Deviations"), `not-applicable` text that has no UTF-8 form to send to USBGuard.
 * differential.test.ts holds libusbguard to the last column.
 */
export const BAD_RULES: readonly (readonly [text: string, code: RuleErrorCode, column: number, usbguard?: 'accepts' | 'not-applicable'])[] = [
  ['', 'empty-rule', 1],
  ['   # only a comment', 'empty-rule', 1, 'accepts'],
  ['allow id 1234:5678\nblock', 'multiple-lines', 19],
  ['allow id 1234:5678\r', 'invalid-character', 19],
  [long, 'too-long', MAX_RULE_LENGTH + 1, 'accepts'],
  ['permit id 1234:5678', 'unknown-target', 1],
  ['Allow', 'unknown-target', 1],
  ['match id 1234:5678', 'unknown-target', 1, 'accepts'],
  ['device', 'unknown-target', 1, 'accepts'],
  ['id 1234:5678', 'unknown-target', 1],
  ['allowblock', 'unknown-target', 1, 'accepts'],
  ['allow id 1234:5678block', 'invalid-device-id', 10, 'accepts'],
  ['allow name "a"allow', 'missing-blank', 15, 'accepts'],
  ['"allow"', 'unknown-target', 1],
  ['allow seriall "x"', 'unknown-attribute', 7],
  ['allow one-of { 08:*:* }', 'unknown-attribute', 7],
  ['allow id 1234:5678 1111:2222', 'unknown-attribute', 20],
  ['allow with-interface one-of { 08:*:* } extra', 'unknown-attribute', 40],
  ['allow serial "a" serial "b"', 'duplicate-attribute', 18],
  ['allow 1050:0011 id 1050:0011', 'duplicate-attribute', 17],
  ['allow label "a" label "b"', 'duplicate-attribute', 17, 'accepts'],
  ['allow with-interface 08:*:* if true', 'conditions-unsupported', 29, 'accepts'],
  ['allow if random(0.1666)', 'conditions-unsupported', 7, 'accepts'],
  ['allow label { "a" "b" }', 'label-set-unsupported', 13, 'accepts'],
  ['allow label one-of { "a" }', 'label-set-unsupported', 13, 'accepts'],
  ['allow name"a"', 'missing-blank', 11],
  ['allow with-interface one-of{ 08:*:* }', 'missing-blank', 28],
  ['allow with-interface {08:*:*}name "x"', 'missing-blank', 30],
  ['allow id { 1234:5678"x" }', 'missing-blank', 21],
  ['allow name "a""b"', 'unexpected-token', 15],
  ['block with-interface { 08:*:* }}', 'unexpected-token', 32],
  ['allow }', 'unexpected-token', 7],
  ['allow "x"', 'unexpected-token', 7],
  ['allow\tname\t"x"\t}', 'unexpected-token', 16],
  ['allow serial', 'expected-value', 13],
  ['allow serial # comment', 'expected-value', 14],
  ['allow with-interface one-of 08:*:*', 'expected-set', 29],
  ['allow with-interface one-of', 'expected-set', 28],
  ['allow with-interface {}', 'empty-set', 22],
  ['allow with-interface { }', 'empty-set', 22],
  ['allow with-interface { 08:*:*', 'unterminated-set', 22],
  ['allow with-interface { 08:*:* # comment }', 'unterminated-set', 22],
  ['allow id 1234:567', 'invalid-device-id', 10],
  ['allow id 12345:5678', 'invalid-device-id', 10],
  ['allow id *:1234', 'invalid-device-id', 10],
  ['allow id "1234:5678"', 'invalid-device-id', 10],
  ['allow id 12g4:5678', 'invalid-device-id', 10],
  ['allow with-interface 08:*:50', 'invalid-interface', 22],
  ['allow with-interface *:*:*', 'invalid-interface', 22],
  ['allow with-interface 8:06:50', 'invalid-interface', 22],
  ['allow with-interface 08:06', 'invalid-interface', 22],
  ['allow with-interface usb-stick', 'invalid-interface', 22],
  ['allow with-interface Mass-Storage', 'invalid-interface', 22],
  ['allow with-interface constructor', 'invalid-interface', 22],
  ['allow with-interface __proto__', 'invalid-interface', 22],
  ['allow with-interface "08:*:*"', 'invalid-interface', 22],
  ['allow with-interface { 08:*:*03:*:* }', 'invalid-interface', 24],
  ['allow serial ABC', 'expected-string', 14],
  ['allow name "abc', 'unterminated-string', 12],
  ['allow name "abc\\"', 'unterminated-string', 12],
  ['allow name "a\\nb"', 'invalid-escape', 14],
  ['allow name "\\101"', 'invalid-escape', 13],
  ['allow name "\\x4"', 'invalid-escape', 13],
  ['allow name "\\X41"', 'invalid-escape', 13],
  ['allow name "\\', 'invalid-escape', 13],
  ['allow name "\\xff"', 'invalid-utf8', 13, 'accepts'],
  ['allow name "ok\\xe6\\x97"', 'invalid-utf8', 15, 'accepts'],
  ['allow name "\\xc0\\xaf"', 'invalid-utf8', 13, 'accepts'],
  ['allow name "\\xed\\xa0\\x80"', 'invalid-utf8', 13, 'accepts'],
  ['allow name "\ud800"', 'invalid-character', 13, 'not-applicable'],
  ['allow name "a\rb"', 'invalid-character', 14],
  ['allow\u3000id 1234:5678', 'invalid-character', 6],
  ['allow name \u201cYubikey\u201d', 'invalid-character', 12],
  ['allow id\u00a01234:5678', 'invalid-character', 9],
  ['\ufeffallow', 'invalid-character', 1],
];


// ---------------------------------------------------------------------------------------------
// fast-check arbitraries, producing rules in the normalised form the parser produces.

const hex = (digits: number): fc.Arbitrary<string> =>
  fc.integer({ min: 0, max: 16 ** digits - 1 }).map((n) => n.toString(16).padStart(digits, '0'));

export const deviceIdPatternArb: fc.Arbitrary<string> = fc.oneof(
  fc.constant('*:*'),
  hex(4).map((vendor) => `${vendor}:*`),
  fc.tuple(hex(4), hex(4)).map(([vendor, product]) => `${vendor}:${product}`),
);

export const interfaceCodeArb: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(hex(2), hex(2), hex(2)).map(([c, s, p]) => `${c}:${s}:${p}`),
  fc.tuple(hex(2), hex(2)).map(([c, s]) => `${c}:${s}:*`),
  hex(2).map((c) => `${c}:*:*`),
);

export const interfacePatternArb: fc.Arbitrary<string> = fc.oneof(interfaceCodeArb, fc.constantFrom(...INTERFACE_CLASS_NAMES));

/** Strings meant to break quoting, escaping, HTML or terminals. */
export const HOSTILE_STRINGS: readonly string[] = [
  '',
  '"',
  '\\',
  '\\"',
  '"\\"',
  '\\x41',
  '<img src=x onerror=alert(1)>',
  '"><script>alert(1)</script>',
  "'; DROP TABLE devices; --",
  '\u0000',
  '\u001b[31mred\u001b[0m',
  '\t\u000b\u000c',
  '\u0085\u2028\u2029',
  'abc\u202edcba',
  '\ufeff',
  '\u200b\u200d',
  '総務課 暗号化USB #12',
  '👍🏽',
  '{ } # if allow',
  'A'.repeat(5000),
];

export const stringValueArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.string({ unit: 'binary-ascii', maxLength: 20 }),
  fc.constantFrom(...HOSTILE_STRINGS.filter((s) => s.length < 100)),
);

export const setOperatorArb: fc.Arbitrary<SetOperator> = fc.constantFrom(...SET_OPERATORS);

export function attributeSetArb(valueArb: fc.Arbitrary<string>): fc.Arbitrary<AttributeSet> {
  return fc.record({
    operator: setOperatorArb,
    values: fc.array(valueArb, { minLength: 1, maxLength: 4 }).map((values) => values as unknown as NonEmptyArray<string>),
  });
}

export const matcherArb: fc.Arbitrary<Matcher> = fc.record(
  {
    id: attributeSetArb(deviceIdPatternArb),
    serial: attributeSetArb(stringValueArb),
    name: attributeSetArb(stringValueArb),
    hash: attributeSetArb(stringValueArb),
    parentHash: attributeSetArb(stringValueArb),
    viaPort: attributeSetArb(stringValueArb),
    withInterface: attributeSetArb(interfacePatternArb),
    withConnectType: attributeSetArb(stringValueArb),
    label: stringValueArb,
  },
  { requiredKeys: [] },
);

export const targetArb: fc.Arbitrary<RuleTarget> = fc.constantFrom('allow', 'block', 'reject');

export const ruleArb: fc.Arbitrary<Rule> = fc.tuple(targetArb, matcherArb).map(([target, matcher]) => ({ target, ...matcher }));
