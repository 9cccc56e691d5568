// Differential test against USBGuard itself: compiles test/fixtures/usb-rules/usbguard-harness.cpp
// against libusbguard (Debian: libusbguard-dev, g++, pkg-config) and compares parse results and
// match decisions with ours. Skipped, with the reason in the test names, when those are missing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UsbDeviceIdentity } from '../../../shared/usb-rules/device.js';
import { formatRule } from '../../../shared/usb-rules/format.js';
import { ruleMatches } from '../../../shared/usb-rules/matcher.js';
import { parseRule } from '../../../shared/usb-rules/parser.js';
import type { AttributeSet, NonEmptyArray, Rule, SetOperator } from '../../../shared/usb-rules/rule.js';
import { BAD_RULES, device, fixtureBlocks, fixturePath, readFixture, ruleLines, targetArb } from './support.js';

function succeeds(command: string, args: readonly string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

const hasUsbguard = succeeds('g++', ['--version']) && succeeds('pkg-config', ['--exists', 'libusbguard']);
const skipped = hasUsbguard ? '' : ' (skipped: g++, pkg-config or libusbguard-dev not installed)';
const withUsbguard = it.skipIf(!hasUsbguard);

let workDir = '';
let oracle = '';

beforeAll(() => {
  if (!hasUsbguard) return;
  workDir = mkdtempSync(join(tmpdir(), 'sekimori-usbguard-'));
  oracle = join(workDir, 'usbguard-harness');
  const flags = spawnSync('pkg-config', ['--cflags', '--libs', 'libusbguard'], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
  const build = spawnSync('g++', ['-std=c++17', '-O1', '-o', oracle, fixturePath('usbguard-harness.cpp'), ...flags], {
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (build.status !== 0) throw new Error(`the USBGuard harness did not compile:\n${build.stderr}`);
}, 200_000);

afterAll(() => {
  if (workDir !== '') rmSync(workDir, { recursive: true, force: true });
});

const hex = (text: string): string => (text === '' ? '-' : Buffer.from(text, 'utf8').toString('hex'));
const unhex = (text: string): string => Buffer.from(text, 'hex').toString('utf8');

/** Sends all requests to one harness process and returns its replies, in order. */
function ask(requests: readonly string[]): string[] {
  const run = spawnSync(oracle, { input: `${requests.join('\n')}\n`, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 120_000 });
  if (run.status !== 0) throw new Error(`the USBGuard harness failed: ${run.stderr}`);
  const replies = run.stdout.split('\n').slice(0, -1);
  expect(replies).toHaveLength(requests.length);
  return replies;
}

type UsbguardParse = { readonly ok: true; readonly printed: string } | { readonly ok: false; readonly message: string };

function usbguardParse(texts: readonly string[]): UsbguardParse[] {
  return ask(texts.map((text) => `P ${hex(text)}`)).map((reply) => {
    const [status, payload = ''] = reply.split(' ');
    return status === 'OK' ? { ok: true, printed: unhex(payload) } : { ok: false, message: unhex(payload) };
  });
}

function usbguardMatches(pairs: readonly (readonly [string, UsbDeviceIdentity])[]): boolean[] {
  const requests = pairs.map(([text, target]) =>
    [
      'M',
      hex(text),
      target.vendorId,
      target.productId,
      hex(target.serial),
      hex(target.name),
      hex(target.hash),
      hex(target.parentHash),
      hex(target.viaPort),
      hex(target.connectType),
      target.interfaces.length === 0 ? '-' : target.interfaces.join(','),
    ].join(' '),
  );
  return ask(requests).map((reply, index) => {
    if (reply !== '0' && reply !== '1') throw new Error(`USBGuard could not match ${JSON.stringify(pairs[index]?.[0])}: ${unhex(reply.slice(4))}`);
    return reply === '1';
  });
}

function ours(text: string): Rule {
  const result = parseRule(text);
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

const pick = <T>(values: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...values);

/** Devices for the man page examples and the corpus: the interesting shapes, few of them. */
const DEVICES: readonly UsbDeviceIdentity[] = [
  device(),
  device({ interfaces: ['08:06:50', '03:01:01'] }),
  device({ interfaces: ['08:06:50', '08:06:50'] }),
  device({ interfaces: ['08:06:50', 'e0:01:01'], viaPort: '1-2.1' }),
  device({ interfaces: ['08:06:50', '02:06:00', '0a:00:00'], serial: '' }),
  device({ interfaces: ['03:00:01'], vendorId: '046d', productId: 'c31c', viaPort: 'usb1' }),
  device({ interfaces: [], name: '日本', connectType: '' }),
  device({
    vendorId: '1050',
    productId: '0011',
    name: 'Yubico Yubikey II',
    serial: '0001234567',
    viaPort: '1-2',
    hash: '044b5e168d40ee0245478416caf3d998',
    interfaces: ['03:01:01'],
  }),
  device({ vendorId: '1234', productId: 'abcd', interfaces: ['0e:01:00', '0e:02:00', '0e:02:00'], connectType: 'hardwired' }),
];

/** Asserts that both decide every pair alike; returns the share of pairs that matched. */
function expectSameDecisions(texts: readonly string[], devices: readonly UsbDeviceIdentity[]): number {
  const pairs = texts.flatMap((text) => devices.map((target) => [text, target] as const));
  const theirs = usbguardMatches(pairs);
  const disagreements = pairs
    .map(([text, target], index) => ({ text, device: target, usbguard: theirs[index], sekimori: ruleMatches(ours(text), target) }))
    .filter((row) => row.usbguard !== row.sekimori);
  expect(disagreements).toEqual([]);
  return theirs.filter(Boolean).length / Math.max(theirs.length, 1);
}

const manPage = fixtureBlocks(readFixture('man-page-examples.conf'));
const manPageRules = ['example-1', 'example-2', 'example-3', 'device-specification', 'device-id-wildcards', 'port-id', 'interface-type'].flatMap(
  (key) => ruleLines(manPage.get(key) ?? ''),
);

describe('the usbguard-rules.conf(5) examples against libusbguard', () => {
  withUsbguard(`parse in both, and USBGuard prints what formatRule prints${skipped}`, () => {
    const theirs = usbguardParse(manPageRules);
    expect(theirs.map((result, index) => (result.ok ? result.printed : `refused: ${manPageRules[index]}`))).toEqual(
      manPageRules.map((text) => formatRule(ours(text), { asciiOnly: true })),
    );
  });

  withUsbguard(`match the same devices in both${skipped}`, () => {
    expectSameDecisions(manPageRules, DEVICES);
  });

  withUsbguard(`examples 4 and 5 use conditions, which USBGuard accepts and Sekimori refuses${skipped}`, () => {
    const conditional = [...ruleLines(manPage.get('example-4') ?? ''), 'allow if random(0.1666)'];
    expect(usbguardParse(conditional).map((result) => result.ok)).toEqual([true, true]);
    expect(conditional.map((text) => parseRule(text).ok)).toEqual([false, false]);
  });
});

/** The corpus lines in USBGuard syntax: everything before the Sekimori-only block. */
const corpus = readFixture('good-rules.conf');
const usbguardCorpus = ruleLines(corpus.slice(0, corpus.indexOf('# Sekimori:')));

describe('the corpus against libusbguard', () => {
  withUsbguard(`every good rule in USBGuard syntax parses in USBGuard to the same rule${skipped}`, () => {
    const theirs = usbguardParse(usbguardCorpus);
    const mismatches = usbguardCorpus.filter((text, index) => {
      const result = theirs[index];
      return result === undefined || !result.ok || formatRule(ours(result.printed)) !== formatRule(ours(text));
    });
    expect(mismatches).toEqual([]);
  });

  withUsbguard(`every good rule in USBGuard syntax matches the same devices in both${skipped}`, () => {
    expectSameDecisions(usbguardCorpus, DEVICES);
  });

  const comparable = BAD_RULES.filter(([, , , usbguard]) => usbguard !== 'not-applicable');
  withUsbguard(`USBGuard refuses every bad rule, except the documented deviations${skipped}`, () => {
    const theirs = usbguardParse(comparable.map(([text]) => text));
    expect(comparable.map(([text, code], index) => [text.slice(0, 60), code, theirs[index]?.ok ? 'accepts' : 'refuses'])).toEqual(
      comparable.map(([text, code, , usbguard]) => [text.slice(0, 60), code, usbguard ?? 'refuses']),
    );
  });
});

describe('documented deviations from libusbguard 1.1.2', () => {
  // Each row: rule, device, what USBGuard decides, what Sekimori decides. See README.md, "Deviations".
  const flash = device();
  const rows: readonly (readonly [string, string, UsbDeviceIdentity, boolean, boolean])[] = [
    ['upper-case hex in an id matches (USBGuard compares the text)', 'allow id 0930:654A', device({ productId: '654a' }), false, true],
    ['match-all with a wildcard id matches (USBGuard never matches it)', 'allow id match-all { 0930:* }', flash, false, true],
    ['match-all on a string needs the value in the set (USBGuard always matches)', 'allow serial match-all { "nope" }', flash, true, false],
    [
      'equals does not let a duplicate value hide an interface (USBGuard counts only sizes)',
      'allow with-interface equals { 08:*:* 08:*:* }',
      device({ interfaces: ['08:06:50', '03:01:01'] }),
      true,
      false,
    ],
  ];

  withUsbguard.each(rows)(`%s${skipped}`, (_why, text, target, usbguard, sekimori) => {
    expect(usbguardMatches([[text, target]])).toEqual([usbguard]);
    expect(ruleMatches(ours(text), target)).toBe(sekimori);
  });

  withUsbguard(`leading and trailing blanks are accepted here and refused by USBGuard 1.1.2${skipped}`, () => {
    expect(usbguardParse([' allow', 'allow '])).toMatchObject([{ ok: false }, { ok: false }]);
    expect([parseRule(' allow').ok, parseRule('allow ').ok]).toEqual([true, true]);
  });
});

// ------------------------------------------------------------------------------------------------
// Token soups: random near-rules, so that both parsers see the same odd layouts. The tokens stay out
// of the documented syntax deviations (no if, label, match/device targets, class names, invalid
// UTF-8 escapes, leading/trailing blanks, targets after the first word).

const SOUP_TOKENS = [
  'id', 'serial', 'name', 'hash', 'parent-hash', 'via-port', 'with-interface', 'with-connect-type',
  'all-of', 'one-of', 'none-of', 'equals', 'equals-ordered', 'match-all', '{', '}', '{}',
  '"', '""', '"x"', '"a b"', '"\\""', '"\\\\"', '"\\x41"', '"\\xe6\\x97\\xa5"', '"\\n"', '\\', '#',
  '0930:6545', '0930:*', '*:*', '*:1234', '0930:654A', '12345:1', '08:*:*', '08:06:50', '08:*:50', '03:01:*', '0E:*:*',
  '"総務課"', '\u3000', '!',
];

const SOUP_OPERATORS = SOUP_TOKENS.slice(8, 14);
/** Values of the right kind for each attribute, so that soups often come close to valid rules. */
const SOUP_KINDS: readonly (readonly [attribute: string, values: readonly string[]])[] = [
  ['id', ['0930:6545', '0930:*', '*:*', '*:1234', '0930:654A', '12345:1']],
  ['with-interface', ['08:*:*', '08:06:50', '08:*:50', '03:01:*', '0E:*:*']],
  ...SOUP_TOKENS.slice(1, 8)
    .filter((name) => name !== 'with-interface')
    .map((name): readonly [string, readonly string[]] => [name, ['""', '"x"', '"a b"', '"\\""', '"\\\\"', '"\\x41"', '"\\xe6\\x97\\xa5"', '"\\n"', '"総務課"']]),
];
/** Mostly a single space, often nothing (where the grammar may need a blank), sometimes tabs. */
const separatorArb = fc.oneof({ arbitrary: fc.constant(' '), weight: 5 }, { arbitrary: pick(['', '\t', '  ', ' \t']), weight: 3 });

/** An attribute-shaped chunk (`name value`, `name [op] { v … }`), usually with fitting values, or any token. */
const chunkArb: fc.Arbitrary<string> = pick(SOUP_KINDS).chain(([name, fitting]) => {
  const valueArb = fc.oneof({ arbitrary: pick(fitting), weight: 6 }, { arbitrary: pick(SOUP_TOKENS), weight: 1 });
  return fc.oneof(
    { arbitrary: fc.tuple(separatorArb, valueArb).map(([gap, value]) => `${name}${gap}${value}`), weight: 3 },
    {
      arbitrary: fc
        .tuple(
          separatorArb,
          fc.option(fc.tuple(pick(SOUP_OPERATORS), separatorArb).map((parts) => parts.join('')), { nil: '' }),
          separatorArb,
          fc.array(fc.tuple(valueArb, separatorArb), { maxLength: 3 }),
          fc.oneof({ arbitrary: fc.constant('}'), weight: 5 }, { arbitrary: fc.constant(''), weight: 1 }),
        )
        .map(([gap, operator, open, values, close]) => `${name}${gap}${operator}{${open}${values.map((pair) => pair.join('')).join('')}${close}`),
      weight: 3,
    },
    { arbitrary: pick(SOUP_TOKENS), weight: 1 },
  );
});

const soupArb: fc.Arbitrary<string> = fc
  .tuple(pick(['allow', 'block', 'reject']), fc.array(fc.tuple(separatorArb, chunkArb), { maxLength: 3 }))
  .map(([target, chunks]) => `${target}${chunks.map((pair) => pair.join('')).join('')}`.replace(/[ \t]+$/, ''));

describe('token soups against libusbguard', () => {
  withUsbguard(`both parsers accept and refuse the same 3000 token soups, and read accepted ones alike${skipped}`, () => {
    const texts = fc.sample(soupArb, { numRuns: 3000, seed: 3000 });
    const theirs = usbguardParse(texts);
    const disagreements = texts
      .map((text, index) => ({ text, usbguard: theirs[index], sekimori: parseRule(text) }))
      .filter(({ usbguard, sekimori }) =>
        usbguard?.ok !== sekimori.ok || (usbguard.ok && sekimori.ok && formatRule(ours(usbguard.printed)) !== formatRule(sekimori.value)),
      )
      .map(({ text, usbguard, sekimori }) => ({ text, usbguard: usbguard?.ok === true ? usbguard.printed : 'refused', sekimori: sekimori.ok ? 'accepted' : sekimori.error.message }));
    expect(disagreements).toEqual([]);
    // Guard the generator: it must reach accepted rules as well as errors.
    expect(theirs.filter((result) => result.ok).length).toBeGreaterThan(750);
  });
});

// ------------------------------------------------------------------------------------------------
// Generated rules × devices. The generator stays out of the documented deviations (lower-case ids,
// no match-all over strings or wildcard ids, no overlapping values under equals), so every single
// decision must agree.

const ID_PATTERNS = ['0930:6545', '0930:*', '*:*', '1d6b:0002', '046d:*', '046d:c52b', '1234:abcd'];
const CONCRETE_IDS = ID_PATTERNS.filter((id) => !id.includes('*'));
const INTERFACE_PATTERNS = ['08:06:50', '08:*:*', '08:06:*', '03:01:01', '03:*:*', '03:01:*', '03:00:*', '0e:01:00', '0e:*:*', 'e0:01:01', 'e0:*:*', '02:06:00', '0a:00:00', 'ff:ff:00'];
const DEVICE_INTERFACES = ['08:06:50', '03:01:01', '03:01:02', '03:00:00', '0e:01:00', '0e:02:00', 'e0:01:01', '02:06:00', '0a:00:00', 'ff:ff:00'];
const STRINGS = {
  serial: ['A1B2C3', '', 'D4E5F6', '日本'],
  name: ['Flash', '', '日本語', 'a "b" \\ c', 'tab\there'],
  hash: ['H1', 'H2'],
  parentHash: ['P1', 'P2'],
  viaPort: ['1-2', '1-2.1', 'usb1'],
  withConnectType: ['hotplug', 'hardwired', ''],
} as const;

function overlaps(a: string, b: string): boolean {
  const partsA = a.split(':');
  const partsB = b.split(':');
  return partsA.every((part, index) => part === '*' || partsB[index] === '*' || part === partsB[index]);
}

function setArb(values: readonly string[], operators: readonly SetOperator[]): fc.Arbitrary<AttributeSet> {
  return pick(operators).chain((operator) =>
    fc
      .array(pick(values), { minLength: 1, maxLength: 3 })
      .filter((chosen) => operator !== 'equals' || chosen.every((a, i) => chosen.every((b, j) => i === j || !overlaps(a, b))))
      .map((chosen) => ({ operator, values: chosen as unknown as NonEmptyArray<string> })),
  );
}

const ALL_OPERATORS: readonly SetOperator[] = ['all-of', 'one-of', 'none-of', 'equals', 'equals-ordered', 'match-all'];
const NO_MATCH_ALL = ALL_OPERATORS.filter((operator) => operator !== 'match-all');

const attributeArbs = {
  id: fc.oneof(setArb(ID_PATTERNS, NO_MATCH_ALL), setArb(CONCRETE_IDS, ['match-all'])),
  serial: setArb(STRINGS.serial, NO_MATCH_ALL),
  name: setArb(STRINGS.name, NO_MATCH_ALL),
  hash: setArb(STRINGS.hash, NO_MATCH_ALL),
  parentHash: setArb(STRINGS.parentHash, NO_MATCH_ALL),
  viaPort: setArb(STRINGS.viaPort, NO_MATCH_ALL),
  withInterface: setArb(INTERFACE_PATTERNS, ALL_OPERATORS),
  withConnectType: setArb(STRINGS.withConnectType, NO_MATCH_ALL),
};
type GeneratedKey = keyof typeof attributeArbs;
const GENERATED_KEYS = Object.keys(attributeArbs) as GeneratedKey[];

/** Rules with at most three attributes (with-interface most often), so that many of them match. */
const generatedRuleArb: fc.Arbitrary<Rule> = fc
  .tuple(
    targetArb,
    fc.record(attributeArbs),
    fc.subarray(GENERATED_KEYS, { maxLength: 2 }),
    fc.boolean(),
    fc.option(pick(['', 'L', '総務課']), { nil: undefined }),
  )
  .map(([target, all, keys, withInterface, label]) => {
    const chosen = new Set<GeneratedKey>(withInterface ? [...keys, 'withInterface'] : keys);
    const rule: Record<string, unknown> = { target };
    for (const key of chosen) rule[key] = all[key];
    if (label !== undefined) rule.label = label;
    return rule as unknown as Rule;
  });

const generatedDeviceArb: fc.Arbitrary<UsbDeviceIdentity> = fc
  .record({
    id: pick(CONCRETE_IDS),
    serial: pick(STRINGS.serial),
    name: pick(STRINGS.name),
    hash: pick(STRINGS.hash),
    parentHash: pick(STRINGS.parentHash),
    viaPort: pick(STRINGS.viaPort),
    connectType: pick(STRINGS.withConnectType),
    interfaces: fc.array(pick(DEVICE_INTERFACES), { maxLength: 4 }),
  })
  .map(({ id, ...rest }) => {
    const [vendorId = '', productId = ''] = id.split(':');
    return { vendorId, productId, ...rest };
  });

describe('generated rules and devices against libusbguard', () => {
  const rules = fc.sample(generatedRuleArb, { numRuns: 400, seed: 20261125 });
  const devices = fc.sample(generatedDeviceArb, { numRuns: 40, seed: 1125 });

  withUsbguard(`USBGuard parses every generated rule and prints exactly what formatRule prints${skipped}`, () => {
    const texts = rules.map((rule) => formatRule(rule, { asciiOnly: true }));
    const theirs = usbguardParse(texts);
    expect(theirs.map((result, index) => (result.ok ? result.printed : `refused: ${texts[index]}`))).toEqual(texts);
  });

  withUsbguard(`USBGuard and Sekimori decide 16000 rule × device pairs the same way${skipped}`, () => {
    const matched = expectSameDecisions(
      rules.map((rule) => formatRule(rule, { asciiOnly: true })),
      devices,
    );
    // Guard the generator: a comparison where (almost) nothing matches would prove little.
    expect(matched).toBeGreaterThan(0.1);
    expect(matched).toBeLessThan(0.9);
  });
});
