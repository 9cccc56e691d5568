// The examples of usbguard-rules.conf(5), quoted in test/fixtures/usb-rules/man-page-examples.conf,
// must parse and decide as the man page describes (implicit target: block, the daemon's default).
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../../shared/usb-rules/matcher.js';
import { parseRuleSet } from '../../../shared/usb-rules/parser.js';
import type { Rule } from '../../../shared/usb-rules/rule.js';
import { device, fixtureBlocks, readFixture } from './support.js';

const blocks = fixtureBlocks(readFixture('man-page-examples.conf'));

function rules(key: string): Rule[] {
  const text = blocks.get(key);
  if (text === undefined) throw new Error(`no block ${key} in the fixture`);
  const result = parseRuleSet(text);
  if (!result.ok) throw new Error(`${key}: ${result.error.message}`);
  return result.value;
}

const flashDrive = device({ interfaces: ['08:06:50'] });
const keyboard = device({ vendorId: '046d', productId: 'c31c', interfaces: ['03:01:01', '03:00:00'] });

describe('usbguard-rules.conf(5) Example Policies', () => {
  it('example 1 allows a device with a single mass storage interface', () => {
    expect(evaluate(rules('example-1'), flashDrive, 'block')).toEqual({ target: 'allow', ruleIndex: 0 });
  });

  it('example 1 blocks, implicitly, a flash disk with a hidden keyboard interface', () => {
    expect(evaluate(rules('example-1'), device({ interfaces: ['08:06:50', '03:01:01'] }), 'block')).toEqual({
      target: 'block',
      ruleIndex: null,
    });
  });

  it('example 1 blocks, implicitly, anything else', () => {
    expect(evaluate(rules('example-1'), keyboard, 'block').ruleIndex).toBeNull();
  });

  const yubikey = device({
    vendorId: '1050',
    productId: '0011',
    name: 'Yubico Yubikey II',
    serial: '0001234567',
    viaPort: '1-2',
    hash: '044b5e168d40ee0245478416caf3d998',
    interfaces: ['03:01:01'],
  });

  it('example 2 allows the specific Yubikey on its port', () => {
    expect(evaluate(rules('example-2'), yubikey, 'block')).toEqual({ target: 'allow', ruleIndex: 0 });
  });

  it('example 2 rejects every other device on that port', () => {
    expect(evaluate(rules('example-2'), { ...flashDrive, viaPort: '1-2' }, 'block')).toEqual({ target: 'reject', ruleIndex: 1 });
    expect(evaluate(rules('example-2'), { ...yubikey, hash: 'another' }, 'block')).toEqual({ target: 'reject', ruleIndex: 1 });
  });

  it('example 2 leaves the Yubikey on another port to the implicit target', () => {
    expect(evaluate(rules('example-2'), { ...yubikey, viaPort: '1-3' }, 'block')).toEqual({ target: 'block', ruleIndex: null });
  });

  it('example 3 allows a plain USB flash disk', () => {
    expect(evaluate(rules('example-3'), flashDrive, 'block')).toEqual({ target: 'allow', ruleIndex: 0 });
  });

  it.each([
    ['a HID keyboard boot interface (03:01:*)', '03:01:01', 2],
    ['a HID interface without boot protocol (03:00:*)', '03:00:01', 1],
    ['a wireless controller interface (e0)', 'e0:01:01', 3],
    ['a communications interface (02)', '02:06:00', 4],
  ])('example 3 rejects a flash disk that also has %s', (_what, extra, ruleIndex) => {
    expect(evaluate(rules('example-3'), device({ interfaces: ['08:06:50', extra] }), 'block')).toEqual({ target: 'reject', ruleIndex });
  });

  it('example 3 leaves devices without a mass storage interface to the implicit target', () => {
    expect(evaluate(rules('example-3'), keyboard, 'block').ruleIndex).toBeNull();
  });

  it('example 4 is refused because it uses a condition (allowed-matches), pointing at the if', () => {
    const result = parseRuleSet(blocks.get('example-4') ?? '');
    expect(!result.ok && [result.error.code, result.error.line, result.error.column]).toEqual(['conditions-unsupported', 1, 51]);
  });

  it('example 5 is refused because it uses a condition (random)', () => {
    const result = parseRuleSet(blocks.get('example-5') ?? '');
    expect(!result.ok && [result.error.code, result.error.line, result.error.column]).toEqual(['conditions-unsupported', 1, 7]);
  });
});

describe('usbguard-rules.conf(5) Device Specification', () => {
  it('a rule with only a target matches any device', () => {
    expect(evaluate(rules('device-specification'), keyboard, 'allow')).toEqual({ target: 'block', ruleIndex: 0 });
  });

  it('*:* matches any device id and 1234:* any product of vendor 1234', () => {
    const [any, vendor] = rules('device-id-wildcards');
    expect(evaluate([any!], keyboard, 'block').ruleIndex).toBe(0);
    expect(evaluate([vendor!], device({ vendorId: '1234', productId: 'abcd' }), 'block').ruleIndex).toBe(0);
    expect(evaluate([vendor!], device({ vendorId: '1235', productId: 'abcd' }), 'block').ruleIndex).toBeNull();
  });

  it('via-port matches the port id, singly or in a one-of set', () => {
    const [single, set] = rules('port-id');
    expect(evaluate([single!], device({ viaPort: '1-2' }), 'block').ruleIndex).toBe(0);
    expect(evaluate([single!], device({ viaPort: '1-2.1' }), 'block').ruleIndex).toBeNull();
    expect(evaluate([set!], device({ viaPort: 'usb1' }), 'block').ruleIndex).toBe(0);
  });

  it('interface types match exactly, or with * for the protocol, or the subclass and protocol', () => {
    const [exact, protocolWildcard, classOnly] = rules('interface-type');
    const bootKeyboard = device({ interfaces: ['03:01:01'] });
    const mouse = device({ interfaces: ['03:01:02'] });
    const genericHid = device({ interfaces: ['03:00:00'] });
    expect([bootKeyboard, mouse, genericHid].map((d) => evaluate([exact!], d, 'block').ruleIndex)).toEqual([0, null, null]);
    expect([bootKeyboard, mouse, genericHid].map((d) => evaluate([protocolWildcard!], d, 'block').ruleIndex)).toEqual([0, 0, null]);
    expect([bootKeyboard, mouse, genericHid].map((d) => evaluate([classOnly!], d, 'block').ruleIndex)).toEqual([0, 0, 0]);
  });
});
