import { describe, expect, it } from 'vitest';
import { countSerials, decideUsb, flagsFor, serialKey } from '../../../agent/usb/policy-engine.js';
import { validatePolicy, type Policy, type ValidatedPolicy } from '../../../shared/policy.js';
import { builtInPolicyDocument } from '../../../agent/policy/profiles.js';
import { usbDevice } from '../policy/usb-devices.fixture.js';

const NOW = new Date('2026-11-25T09:00:00+09:00');
const STICK = usbDevice({ vendorId: '0930', productId: '6545', serial: 'XYZ', interfaces: ['08:06:50'] });

/** A validated policy with the given USB section and exceptions (the rest from a built-in). */
function policy(usb: Partial<Policy['usb']>, extra: Partial<Policy> = {}): ValidatedPolicy {
  const document = builtInPolicyDocument('mynumber');
  const result = validatePolicy({ ...document, usb: { rules: [], readOnly: [], implicit: 'block', ...usb }, ...extra });
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

const exception = (overrides: Partial<Policy['exceptions'][number]> = {}): Policy['exceptions'][number] => ({
  id: 'req-123',
  device: 'id 0930:6545 serial "XYZ"',
  until: '2026-11-25T17:00:00+09:00',
  access: 'read-write',
  ...overrides,
});

describe('decideUsb', () => {
  it('lets the first matching rule decide and names its index, line, text and label', () => {
    const validated = policy({
      rules: ['allow with-interface one-of { hid }', 'block with-interface one-of { 08:*:* } label "storage"', 'allow id 0930:6545'],
    });
    expect(decideUsb({ device: STICK, policy: validated, now: NOW })).toEqual({
      target: 'block',
      rule: { kind: 'rule', index: 1, line: 2, text: 'block with-interface one-of { 08:*:* } label "storage"', label: 'storage', exceptionId: null },
      flags: [],
      audit: false,
    });
  });

  it('falls back to the implicit target when no rule matches', () => {
    const decision = decideUsb({ device: STICK, policy: policy({ rules: ['allow with-interface one-of { hid }'], implicit: 'reject' }), now: NOW });
    expect(decision).toMatchObject({ target: 'reject', rule: { kind: 'implicit', index: null, line: null, text: null, label: null, exceptionId: null } });
  });

  it('applies an active exception before any rule', () => {
    const validated = policy({ rules: ['reject id 0930:6545'] }, { exceptions: [exception()] });
    expect(decideUsb({ device: STICK, policy: validated, now: NOW })).toMatchObject({ target: 'allow', rule: { kind: 'exception', exceptionId: 'req-123', index: null } });
  });

  it('turns a read-only exception into a read-only decision', () => {
    const validated = policy({ rules: ['block id 0930:6545'] }, { exceptions: [exception({ access: 'read-only' })] });
    expect(decideUsb({ device: STICK, policy: validated, now: NOW }).target).toBe('read-only');
  });

  it('ignores an expired exception and flags it, so the rules decide', () => {
    const validated = policy({ rules: ['block id 0930:6545 label "stick"'] }, { exceptions: [exception({ until: '2026-11-25T08:59:59+09:00' })] });
    expect(decideUsb({ device: STICK, policy: validated, now: NOW })).toMatchObject({ target: 'block', rule: { kind: 'rule', label: 'stick' }, flags: ['exception-expired'] });
  });

  it('ends an exception at the instant of its until (exclusive end)', () => {
    const validated = policy({}, { exceptions: [exception({ until: '2026-11-25T09:00:00+09:00' })] });
    expect(decideUsb({ device: STICK, policy: validated, now: NOW }).target).toBe('block');
    expect(decideUsb({ device: STICK, policy: validated, now: new Date(NOW.getTime() - 1) }).target).toBe('allow');
  });

  it('applies an exception for a named user only when deciding for that user', () => {
    const validated = policy({}, { exceptions: [exception({ user: 'u1024' })] });
    expect(decideUsb({ device: STICK, policy: validated, now: NOW, user: 'u1024' }).target).toBe('allow');
    expect(decideUsb({ device: STICK, policy: validated, now: NOW, user: 'u2048' }).target).toBe('block');
    expect(decideUsb({ device: STICK, policy: validated, now: NOW }).target).toBe('block');
  });

  it('ignores an exception for another device', () => {
    const validated = policy({}, { exceptions: [exception({ device: 'id 0930:6545 serial "OTHER"' })] });
    expect(decideUsb({ device: STICK, policy: validated, now: NOW }).rule.kind).toBe('implicit');
  });

  it('makes an allow read-only when a readOnly match rule names the device', () => {
    const validated = policy({ rules: ['allow with-interface one-of { mass-storage }'], readOnly: ['id 0930:6545 serial "XYZ"'] });
    expect(decideUsb({ device: STICK, policy: validated, now: NOW })).toMatchObject({ target: 'read-only', rule: { kind: 'rule', index: 0 } });
    expect(decideUsb({ device: { ...STICK, serial: 'ABC' }, policy: validated, now: NOW }).target).toBe('allow');
  });

  it('never turns a block into read-only through the readOnly list', () => {
    const validated = policy({ rules: ['block with-interface one-of { mass-storage }'], readOnly: ['id 0930:6545'] });
    expect(decideUsb({ device: STICK, policy: validated, now: NOW }).target).toBe('block');
  });

  it('decides the same in audit mode and marks the decision as audit', () => {
    const enforce = decideUsb({ device: STICK, policy: policy({ rules: ['block id 0930:*'] }), now: NOW });
    const audit = decideUsb({ device: STICK, policy: policy({ rules: ['block id 0930:*'] }, { mode: 'audit' }), now: NOW });
    expect(enforce.audit).toBe(false);
    expect(audit).toEqual({ ...enforce, audit: true });
  });

  it('keeps first-match order across id, vendor, serial, hash and general rules', () => {
    const rules = [
      'allow id 1111:2222',
      'block hash "H"',
      'reject serial "XYZ"',
      'allow id 0930:*',
      'block id 0930:6545',
      'allow with-interface one-of { 08:*:* }',
    ];
    const decide = (device = STICK, list = rules): number | null => decideUsb({ device, policy: policy({ rules: list }), now: NOW }).rule.index;
    expect(decide()).toBe(2);
    expect(decide({ ...STICK, hash: 'H' })).toBe(1);
    expect(decide({ ...STICK, serial: 'S2' })).toBe(3);
    expect(decide({ ...STICK, vendorId: '1111', productId: '2222' })).toBe(0);
    expect(decide({ ...STICK, vendorId: 'abcd', serial: 'S2' })).toBe(5);
    expect(decide(STICK, ['allow id none-of { 0930:6545 }', 'block id one-of { 1111:2222 0930:6545 }', 'allow'])).toBe(1);
    expect(decide(STICK, ['block serial none-of { "XYZ" }', 'allow id *:*'])).toBe(1);
  });

  it('flags a device without a serial', () => {
    expect(decideUsb({ device: { ...STICK, serial: '' }, policy: policy({}), now: NOW }).flags).toEqual(['empty-serial']);
  });

  it('flags a device whose VID:PID and serial another present device shares', () => {
    const twin = { ...STICK, viaPort: '1-3' };
    const present = countSerials([STICK, twin, usbDevice({ serial: '' })]);
    expect(present.get(serialKey(STICK))).toBe(2);
    expect(decideUsb({ device: STICK, policy: policy({}), now: NOW, presentSerials: present }).flags).toEqual(['duplicate-serial']);
    expect(flagsFor(usbDevice(), present)).toEqual([]);
  });
});
