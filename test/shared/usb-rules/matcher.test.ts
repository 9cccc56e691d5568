import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { UsbDeviceIdentity } from '../../../shared/usb-rules/device.js';
import { INTERFACE_CLASS_NAMES, interfaceClassMembers, type InterfaceClassName } from '../../../shared/usb-rules/interface-classes.js';
import { evaluate, ruleMatches } from '../../../shared/usb-rules/matcher.js';
import { parseMatcher, parseRule, parseRuleSet } from '../../../shared/usb-rules/parser.js';
import type { Matcher } from '../../../shared/usb-rules/rule.js';
import { device, matcherArb } from './support.js';

function matcher(text: string): Matcher {
  const result = parseMatcher(text);
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

function matches(text: string, target: UsbDeviceIdentity): boolean {
  return ruleMatches(matcher(text), target);
}

const withInterfaces = (...interfaces: string[]): UsbDeviceIdentity => device({ interfaces });

const storage = withInterfaces('08:06:50');
const twoStorage = withInterfaces('08:06:50', '08:06:50');
const badUsb = withInterfaces('08:06:50', '03:01:01');
const noInterfaces = withInterfaces();
const webcam = withInterfaces('0e:01:00', '0e:02:00', '0e:02:00');
const ecmAdapter = withInterfaces('02:06:00', '0a:00:00');

type Case = readonly [rule: string, device: string, expected: boolean];
const devices: Readonly<Record<string, UsbDeviceIdentity>> = { storage, twoStorage, badUsb, noInterfaces, webcam, ecmAdapter };

function checkAll(cases: readonly Case[]): void {
  it.each(cases)('%s on %s → %s', (rule, name, expected) => {
    expect(matches(rule, devices[name]!)).toBe(expected);
  });
}

describe('with-interface all-of: every rule value matches some device interface', () => {
  checkAll([
    ['with-interface all-of { 08:*:* 03:*:* }', 'badUsb', true],
    ['with-interface all-of { 08:*:* 03:*:* }', 'storage', false],
    ['with-interface all-of { 08:*:* }', 'noInterfaces', false],
    ['with-interface all-of { 08:*:* 08:*:* }', 'storage', true],
    ['with-interface all-of { 03:01:* }', 'badUsb', true],
    ['with-interface all-of { 03:00:* }', 'badUsb', false],
  ]);
});

describe('with-interface one-of: some rule value matches some device interface', () => {
  checkAll([
    ['with-interface one-of { 03:*:* 02:*:* }', 'badUsb', true],
    ['with-interface one-of { 03:*:* 02:*:* }', 'storage', false],
    ['with-interface one-of { 03:*:* }', 'noInterfaces', false],
    ['with-interface one-of { 0e:02:00 0e:02:00 }', 'webcam', true],
  ]);
});

describe('with-interface none-of: no rule value matches any device interface', () => {
  checkAll([
    ['with-interface none-of { 03:*:* }', 'storage', true],
    ['with-interface none-of { 03:*:* }', 'badUsb', false],
    ['with-interface none-of { 03:*:* }', 'noInterfaces', true],
    ['with-interface none-of { 03:*:* 03:*:* }', 'storage', true],
  ]);
});

describe('with-interface equals: same number of values and the same values, in any order', () => {
  checkAll([
    ['with-interface equals { 08:*:* }', 'storage', true],
    ['with-interface 08:06:50', 'storage', true],
    // USBGuard's semantics: a single value is a one-element set, so a second interface fails it.
    ['with-interface 08:06:50', 'badUsb', false],
    ['with-interface equals { 08:*:* }', 'twoStorage', false],
    ['with-interface equals { 08:*:* 08:*:* }', 'twoStorage', true],
    ['with-interface equals { 03:01:01 08:06:50 }', 'badUsb', true],
    ['with-interface equals { 08:*:* }', 'noInterfaces', false],
    // Duplicates or overlapping patterns must not hide an interface (USBGuard would match these).
    ['with-interface equals { 08:*:* 08:*:* }', 'badUsb', false],
    ['with-interface equals { 08:*:* 08:06:50 }', 'badUsb', false],
  ]);
});

describe('with-interface equals-ordered: same values at the same positions', () => {
  checkAll([
    ['with-interface equals-ordered { 08:*:* 03:*:* }', 'badUsb', true],
    ['with-interface equals-ordered { 03:*:* 08:*:* }', 'badUsb', false],
    ['with-interface equals-ordered { 08:*:* }', 'twoStorage', false],
    ['with-interface equals-ordered { 0e:01:00 0e:02:00 0e:02:00 }', 'webcam', true],
    ['with-interface equals-ordered { 0e:01:00 0e:02:00 }', 'webcam', false],
    ['with-interface equals-ordered { 0e:*:* 0e:*:* 0e:*:* }', 'webcam', true],
    ['with-interface equals-ordered { 08:*:* }', 'noInterfaces', false],
  ]);
});

describe('with-interface match-all: every device interface is matched by a rule value', () => {
  checkAll([
    ['with-interface match-all { 08:*:* 03:*:* }', 'badUsb', true],
    ['with-interface match-all { 08:*:* 03:*:* }', 'storage', true],
    ['with-interface match-all { 08:*:* }', 'badUsb', false],
    ['with-interface match-all { 0e:*:* }', 'webcam', true],
    ['with-interface match-all { 0e:02:* }', 'webcam', false],
    ['with-interface match-all { 0e:01:* 0e:02:* }', 'webcam', true],
    // Vacuously true, as in USBGuard: a device without interfaces has none outside the set.
    ['with-interface match-all { 03:*:* }', 'noInterfaces', true],
  ]);
});

describe('string attributes', () => {
  const flash = device({ serial: 'A1B2C3' });

  it.each([
    ['serial "A1B2C3"', true],
    ['serial "a1b2c3"', false],
    ['serial "A1B2C3 "', false],
    ['serial one-of { "X" "A1B2C3" }', true],
    ['serial none-of { "X" "A1B2C3" }', false],
    ['serial none-of { "X" }', true],
    ['serial all-of { "A1B2C3" "A1B2C3" }', true],
    ['serial all-of { "A1B2C3" "X" }', false],
    ['serial equals { "A1B2C3" }', true],
    ['serial equals { "A1B2C3" "X" }', false],
    ['serial equals-ordered { "A1B2C3" }', true],
    ['serial match-all { "X" "A1B2C3" }', true],
    // USBGuard 1.1 matches this too (its string isSupersetOf is unimplemented); the man page does not.
    ['serial match-all { "X" }', false],
  ])('%s on serial A1B2C3 → %s', (rule, expected) => {
    expect(matches(rule, flash)).toBe(expected);
  });

  it('matches an empty serial with serial ""', () => {
    expect(matches('serial ""', device({ serial: '' }))).toBe(true);
    expect(matches('serial ""', device({ serial: 'X' }))).toBe(false);
  });

  it('compares Japanese text exactly, without Unicode normalisation', () => {
    expect(matches('name "ガ"', device({ name: 'ガ' }))).toBe(true);
    expect(matches('name "ガ"', device({ name: 'カ\u3099' }))).toBe(false);
  });

  it.each([
    ['name "TransMemory"', { name: 'TransMemory' }],
    ['hash "H1"', { hash: 'H1' }],
    ['parent-hash "P1"', { parentHash: 'P1' }],
    ['via-port "3-1.2"', { viaPort: '3-1.2' }],
    ['with-connect-type "hardwired"', { connectType: 'hardwired' }],
  ] as const)('%s matches only the device field it names', (rule, fields) => {
    expect(matches(rule, device(fields))).toBe(true);
    expect(matches(rule, device())).toBe(rule.startsWith('name'));
    expect(matches(rule, device({ ...fields, ...Object.fromEntries(Object.keys(fields).map((key) => [key, 'other'])) }))).toBe(false);
  });
});

describe('device ids', () => {
  const flash = device({ vendorId: '0930', productId: '6545' });

  it.each([
    ['id 0930:6545', true],
    ['id 0930:6544', false],
    ['id 0930:*', true],
    ['id 0931:*', false],
    ['id *:*', true],
    ['id 0930:654A', false],
    ['id 0930:654a', false],
    ['id one-of { 058f:* 0930:6545 }', true],
    ['id none-of { 0930:* }', false],
    ['id none-of { 058f:* }', true],
    ['id equals { *:* }', true],
    ['id all-of { 0930:* *:* }', true],
    // USBGuard 1.1 never matches wildcards under match-all; the man page says they do.
    ['id match-all { 0930:* }', true],
    ['id match-all { 058f:* }', false],
  ])('%s on 0930:6545 → %s', (rule, expected) => {
    expect(matches(rule, flash)).toBe(expected);
  });

  it('matches upper-case hex in a rule against the lower-case device id (USBGuard compares text)', () => {
    expect(matches('id 0930:654A', device({ productId: '654a' }))).toBe(true);
  });
});

describe('a rule with several attributes', () => {
  it('matches only when every attribute matches', () => {
    const rule = 'id 0930:6545 serial "A1B2C3" with-interface 08:*:*';
    expect(matches(rule, device())).toBe(true);
    expect(matches(rule, device({ serial: 'X' }))).toBe(false);
    expect(matches(rule, device({ productId: '6544' }))).toBe(false);
    expect(matches(rule, badUsb)).toBe(false);
  });

  it('ignores the label when matching', () => {
    expect(matches('label "総務課"', device())).toBe(true);
  });

  it('matches every device when it has no attributes', () => {
    fc.assert(
      fc.property(fc.constantFrom(storage, badUsb, noInterfaces, webcam), (target) => ruleMatches({}, target)),
      { numRuns: 20 },
    );
  });
});

describe('Sekimori class names', () => {
  const samples: Readonly<Record<InterfaceClassName, readonly [matching: string, notMatching: string]>> = {
    'mass-storage': ['08:06:50', '06:01:01'],
    'still-image': ['06:01:01', '08:06:50'],
    ptp: ['06:01:01', 'ff:ff:00'],
    mtp: ['ff:ff:00', '06:01:01'],
    phone: ['06:01:01', '08:06:50'],
    printer: ['07:01:02', '08:06:50'],
    hid: ['03:01:01', '08:06:50'],
    audio: ['01:01:00', '0e:01:00'],
    video: ['0e:01:00', '01:01:00'],
    'smart-card': ['0b:00:00', '03:00:00'],
    hub: ['09:00:00', '08:06:50'],
    wireless: ['e0:01:01', 'ef:04:01'],
    bluetooth: ['e0:01:01', 'e0:01:03'],
    rndis: ['ef:04:01', 'e0:01:01'],
    'cdc-network': ['0a:00:00', 'e0:01:01'],
    'network-adapter': ['02:06:00', '08:06:50'],
  };

  it('covers every class name with a sample', () => {
    expect(Object.keys(samples).sort()).toEqual([...INTERFACE_CLASS_NAMES].sort());
  });

  it.each(Object.entries(samples))('%s matches %j and not the second code', (name, [yes, no]) => {
    const names = name === 'mtp' || name === 'phone' ? ['MTP'] : [''];
    expect(matches(`with-interface ${name}`, device({ interfaces: [yes], interfaceNames: names }))).toBe(true);
    expect(matches(`with-interface ${name}`, device({ interfaces: [no], interfaceNames: [''] }))).toBe(false);
  });

  it.each(INTERFACE_CLASS_NAMES)('%s matches every code it documents', (name) => {
    for (const code of interfaceClassMembers(name).codes) {
      const concrete = code.replaceAll('*', '42');
      expect(matches(`with-interface ${name}`, withInterfaces(concrete))).toBe(true);
    }
  });

  it('maps rndis to both RNDIS codes and network-adapter to CDC and RNDIS', () => {
    for (const code of ['e0:01:03', 'ef:04:01']) {
      expect(matches('with-interface rndis', withInterfaces(code))).toBe(true);
      expect(matches('with-interface network-adapter', withInterfaces(code))).toBe(true);
      expect(matches('with-interface cdc-network', withInterfaces(code))).toBe(true);
    }
  });

  it('treats a vendor-specific interface named MTP as MTP, trimming and ignoring case', () => {
    for (const name of ['MTP', 'mtp', ' MTP ', 'MTP Interface']) {
      expect(matches('with-interface mtp', device({ interfaces: ['ff:ff:00'], interfaceNames: [name] }))).toBe(true);
    }
    for (const name of ['', 'ADB Interface', 'NotMTP', 'MTPX']) {
      expect(matches('with-interface phone', device({ interfaces: ['ff:ff:00'], interfaceNames: [name] }))).toBe(false);
    }
  });

  it('does not treat an interface as MTP when the device model carries no interface names', () => {
    expect(matches('with-interface phone', withInterfaces('ff:ff:00'))).toBe(false);
  });

  it('does not treat an MTP-named interface of another class as MTP', () => {
    expect(matches('with-interface mtp', device({ interfaces: ['08:06:50'], interfaceNames: ['MTP'] }))).toBe(false);
  });

  it('counts a class name as one element of a set, for every operator', () => {
    const android = device({ interfaces: ['ff:ff:00', 'ff:42:01'], interfaceNames: ['MTP', 'ADB Interface'] });
    expect(matches('with-interface one-of { phone }', android)).toBe(true);
    expect(matches('with-interface all-of { phone mass-storage }', android)).toBe(false);
    expect(matches('with-interface all-of { mass-storage hid }', badUsb)).toBe(true);
    expect(matches('with-interface none-of { network-adapter }', ecmAdapter)).toBe(false);
    expect(matches('with-interface none-of { network-adapter }', storage)).toBe(true);
    // equals: one element per name, so a two-interface adapter needs the name twice or match-all.
    expect(matches('with-interface equals { network-adapter }', ecmAdapter)).toBe(false);
    expect(matches('with-interface equals { network-adapter network-adapter }', ecmAdapter)).toBe(true);
    expect(matches('with-interface match-all { network-adapter }', ecmAdapter)).toBe(true);
    expect(matches('with-interface match-all { network-adapter }', withInterfaces('02:06:00', '0a:00:00', '08:06:50'))).toBe(false);
    expect(matches('with-interface equals { mass-storage }', storage)).toBe(true);
    expect(matches('with-interface equals { mass-storage }', twoStorage)).toBe(false);
    expect(matches('with-interface equals-ordered { hid hid }', withInterfaces('03:01:01', '03:01:02'))).toBe(true);
    expect(matches('with-interface equals-ordered { hid mass-storage }', badUsb)).toBe(false);
    expect(matches('with-interface match-all { phone }', android)).toBe(false);
  });

  it('mixes class names and codes in one set', () => {
    expect(matches('with-interface match-all { hid 08:06:50 }', badUsb)).toBe(true);
  });
});

describe('evaluate', () => {
  const policy = (() => {
    const result = parseRuleSet([
      'allow with-interface equals { 03:*:* }',
      'allow id 0930:6545 serial "A1B2C3" label "総務課 暗号化USB #12"',
      'block with-interface one-of { 08:*:* 06:*:* 02:*:* e0:*:* }',
    ]);
    if (!result.ok) throw new Error(result.error.message);
    return result.value;
  })();

  it('lets the first matching rule decide and names it by index and label', () => {
    expect(evaluate(policy, device(), 'reject')).toStrictEqual({ target: 'allow', ruleIndex: 1, label: '総務課 暗号化USB #12' });
  });

  it('carries no label key when the deciding rule has none', () => {
    expect(evaluate(policy, withInterfaces('03:01:01'), 'reject')).toStrictEqual({ target: 'allow', ruleIndex: 0 });
    expect(evaluate(policy, device({ serial: 'OTHER' }), 'reject')).toStrictEqual({ target: 'block', ruleIndex: 2 });
  });

  it('falls back to the implicit target with a null rule index', () => {
    expect(evaluate(policy, device({ serial: 'OTHER', interfaces: ['07:01:02'] }), 'reject')).toStrictEqual({ target: 'reject', ruleIndex: null });
    expect(evaluate([], device(), 'allow')).toStrictEqual({ target: 'allow', ruleIndex: null });
  });

  it('agrees with ruleMatches: the decision is the first rule that matches', () => {
    fc.assert(
      fc.property(
        fc.array(matcherArb.map((m) => ({ target: 'block' as const, ...m })), { maxLength: 5 }),
        fc.constantFrom(storage, badUsb, noInterfaces, webcam, device({ serial: '' })),
        (rules, target) => {
          const index = rules.findIndex((rule) => ruleMatches(rule, target));
          expect(evaluate(rules, target, 'allow').ruleIndex).toBe(index === -1 ? null : index);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is what the readOnly list needs: a target-less match rule matched against a device', () => {
    expect(ruleMatches(matcher('id 0930:6545 serial "D4E5F6"'), device({ serial: 'D4E5F6' }))).toBe(true);
    expect(ruleMatches(matcher('id 0930:6545 serial "D4E5F6"'), device())).toBe(false);
  });

  it('matches a parsed rule the same way as the same rule parsed without its target', () => {
    const rule = parseRule('allow id 0930:* with-interface one-of { mass-storage }');
    expect(rule.ok && ruleMatches(rule.value, device())).toBe(true);
  });
});
