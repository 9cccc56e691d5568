import { describe, expect, it } from 'vitest';
import { builtInPolicy, builtInPolicyDocument, FAIL_CLOSED_TIER } from '../../../agent/policy/profiles.js';
import { decideUsb, type UsbDecisionTarget } from '../../../agent/usb/policy-engine.js';
import { TIERS, validatePolicy, type Tier } from '../../../shared/policy.js';
import { PROFILE_DEVICES } from './usb-devices.fixture.js';

type DeviceName = keyof typeof PROFILE_DEVICES;

/** The expected decision per device and tier (DESIGN.md §1; see profiles.ts for the reasons). */
const EXPECTED: Readonly<Record<DeviceName, Readonly<Record<Tier, UsbDecisionTarget>>>> = {
  stick: { mynumber: 'block', lgwan: 'read-only', internet: 'block' },
  'Android phone (MTP)': { mynumber: 'block', lgwan: 'block', internet: 'block' },
  'iPhone (PTP)': { mynumber: 'block', lgwan: 'block', internet: 'block' },
  'USB Ethernet (CDC ECM)': { mynumber: 'block', lgwan: 'block', internet: 'block' },
  'RNDIS tethering': { mynumber: 'block', lgwan: 'block', internet: 'block' },
  'Bluetooth dongle': { mynumber: 'block', lgwan: 'block', internet: 'block' },
  keyboard: { mynumber: 'allow', lgwan: 'allow', internet: 'allow' },
  mouse: { mynumber: 'allow', lgwan: 'allow', internet: 'allow' },
  'BadUSB (storage + keyboard)': { mynumber: 'reject', lgwan: 'reject', internet: 'reject' },
  printer: { mynumber: 'block', lgwan: 'allow', internet: 'allow' },
  hub: { mynumber: 'allow', lgwan: 'allow', internet: 'allow' },
  'IC card reader': { mynumber: 'allow', lgwan: 'allow', internet: 'allow' },
  webcam: { mynumber: 'block', lgwan: 'block', internet: 'allow' },
  'device with no interfaces': { mynumber: 'block', lgwan: 'block', internet: 'block' },
};

const NOW = new Date('2026-11-25T09:00:00Z');
const cases = TIERS.flatMap((tier) => (Object.keys(EXPECTED) as DeviceName[]).map((device) => [tier, device, EXPECTED[device][tier]] as const));

describe('built-in tier profiles', () => {
  it.each(TIERS)('the %s profile is a valid policy', (tier) => {
    expect(validatePolicy(builtInPolicyDocument(tier)).ok).toBe(true);
    expect(builtInPolicy(tier).policy.tier).toBe(tier);
  });

  it.each(cases)('on the %s tier, decides %s: %s', (tier, device, expected) => {
    expect(decideUsb({ device: PROFILE_DEVICES[device], policy: builtInPolicy(tier), now: NOW }).target).toBe(expected);
  });

  it.each(TIERS)('on the %s tier, never locks out the keyboard or the mouse', (tier) => {
    for (const device of [PROFILE_DEVICES.keyboard, PROFILE_DEVICES.mouse]) {
      const decision = decideUsb({ device, policy: builtInPolicy(tier), now: NOW });
      expect(decision).toMatchObject({ target: 'allow', rule: { kind: 'rule', label: 'keyboard / mouse' } });
    }
  });

  it('rejects BadUSB by a rule placed before the rule that allows keyboards', () => {
    const policy = builtInPolicy('mynumber');
    const badUsb = decideUsb({ device: PROFILE_DEVICES['BadUSB (storage + keyboard)'], policy, now: NOW });
    const keyboard = decideUsb({ device: PROFILE_DEVICES.keyboard, policy, now: NOW });
    expect(badUsb.rule.index).toBeLessThan(keyboard.rule.index ?? -1);
    expect(badUsb.rule.label).toBe('BadUSB: storage + keyboard');
  });

  it('blocks a device with no interfaces by the implicit target, not by an allow rule', () => {
    for (const tier of TIERS) {
      const decision = decideUsb({ device: PROFILE_DEVICES['device with no interfaces'], policy: builtInPolicy(tier), now: NOW });
      expect(decision.rule.kind).toBe('implicit');
    }
  });

  it('fails closed to the mynumber profile', () => {
    expect(FAIL_CLOSED_TIER).toBe('mynumber');
    expect(builtInPolicy()).toBe(builtInPolicy('mynumber'));
  });

  it('hands out a copy of the document so a caller cannot change the built-in rules', () => {
    const document = builtInPolicyDocument('lgwan');
    document.usb.rules.length = 0;
    expect(builtInPolicyDocument('lgwan').usb.rules.length).toBeGreaterThan(0);
  });

  it('lets a registered stick through on the internet tier when a server policy allows it first', () => {
    const document = builtInPolicyDocument('internet');
    document.usb.rules.unshift('allow id 0930:6545 serial "SN0001" label "総務課 USB #12"');
    const result = validatePolicy(document);
    if (!result.ok) throw new Error(result.error.message);
    expect(decideUsb({ device: PROFILE_DEVICES.stick, policy: result.value, now: NOW })).toMatchObject({ target: 'allow', rule: { index: 0, label: '総務課 USB #12' } });
  });
});
