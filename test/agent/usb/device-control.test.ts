import fs from 'node:fs/promises';
import path from 'node:path';
import winston from 'winston';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../../agent/journal/journal.js';
import { builtInPolicy, builtInPolicyDocument } from '../../../agent/policy/profiles.js';
import { DeviceControl } from '../../../agent/usb/device-control.js';
import { countSerials, decideUsb } from '../../../agent/usb/policy-engine.js';
import { LinuxUsbDeviceSource } from '../../../agent/usb/usb-device-source.linux.js';
import { LinuxUsbEnforcer } from '../../../agent/usb/usb-enforcer.linux.js';
import type { UsbEventSource } from '../../../agent/usb/usb-events.js';
import { validatePolicy, type Policy, type ValidatedPolicy } from '../../../shared/policy.js';
import { FakeCommandRunner } from '../../fakes/fake-command-runner.js';
import { FakeSysfs } from '../../fakes/fake-sysfs.js';
import * as devices from '../../fixtures/usb-devices/devices.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();
const silent = winston.createLogger({ silent: true });

/** The hotplug event source, faked (the thin OS boundary): tests decide which events arrive. */
class ManualEvents implements UsbEventSource {
  private listener: ((event: { kind: 'attach' | 'detach'; key: string }) => void) | null = null;
  start(listener: (event: { kind: 'attach' | 'detach'; key: string }) => void): Promise<void> {
    this.listener = listener;
    return Promise.resolve();
  }
  emit(kind: 'attach' | 'detach', key: string): void {
    this.listener?.({ kind, key });
  }
  dispose(): void {
    this.listener = null;
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- journal data is free-form JSON; the assertions read deep into it
type LooseEntry = { seq: number; type: string; data: Record<string, any> };

interface Rig {
  sysfs: FakeSysfs;
  journal: Journal;
  journalFile: string;
  control: DeviceControl;
  events: ManualEvents;
  commands: FakeCommandRunner;
  setPolicy(policy: ValidatedPolicy): void;
  entries(): Promise<LooseEntry[]>;
}

let rig: Rig;

async function makeRig(policy: ValidatedPolicy = builtInPolicy('mynumber')): Promise<Rig> {
  const sysfs = await FakeSysfs.create([{ bus: 1 }, { bus: 2, superSpeed: true, controller: '0000:00:14.0' }]);
  const journalFile = path.join(await tempDir(), 'journal.jsonl');
  const { journal } = await Journal.open(journalFile);
  const events = new ManualEvents();
  const commands = new FakeCommandRunner();
  let current = policy;
  const control = new DeviceControl({
    source: new LinuxUsbDeviceSource({ sysfsRoot: sysfs.root }),
    enforcer: new LinuxUsbEnforcer({ sysfsRoot: sysfs.root, commands, blockDeviceTimeoutMs: 2000 }),
    events,
    journal,
    logger: silent,
    reconcileMs: 60_000, // tests drive the passes themselves
    decide: (device, present) => {
      const decision = decideUsb({ device: device.identity, policy: current, now: new Date(), presentSerials: countSerials(present.map((item) => item.identity)) });
      return { target: decision.target, rule: { ...decision.rule }, audit: decision.audit, flags: decision.flags };
    },
  });
  return {
    sysfs,
    journal,
    journalFile,
    control,
    events,
    commands,
    setPolicy: (next) => {
      current = next;
    },
    entries: async () =>
      (await fs.readFile(journalFile, 'utf8'))
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
  };
}

function policyWith(edit: (policy: Policy) => void, tier: Policy['tier'] = 'mynumber'): ValidatedPolicy {
  const document = builtInPolicyDocument(tier);
  document.version = 2;
  edit(document);
  const validated = validatePolicy(document);
  if (!validated.ok) throw new Error(validated.error.message);
  return validated.value;
}

/** Plugs a device, delivers its hotplug event, lets the fake kernel react, and returns its last decision event. */
async function insert(fixture: devices.UsbFixture, port: string, withEvent = true) {
  await rig.sysfs.plug(fixture, port);
  if (withEvent) {
    rig.events.emit('attach', port);
    await rig.control.attached(port); // waits for the queue, including the event's work
  } else {
    await rig.control.reconcile();
  }
  await rig.sysfs.syncKernel();
  const decisions = (await rig.entries()).filter((entry) => entry.type.startsWith('device.') && entry.data.key === port && entry.data.decision);
  return decisions.at(-1);
}

beforeEach(async () => {
  rig = await makeRig();
  await rig.control.start();
});

afterEach(async () => {
  await rig.control.dispose();
  await rig.journal.close();
  await rig.sysfs.dispose();
});

describe('device control on a kernel-shaped sysfs (mynumber profile)', () => {
  it('sets default-deny on every root hub at start, so new devices arrive unauthorised', async () => {
    expect((await rig.sysfs.attribute('usb1', 'authorized_default')).trim()).toBe('0');
    expect((await rig.sysfs.attribute('usb2', 'authorized_default')).trim()).toBe('0');
  });

  // The label of the deciding rule, or null for the implicit target. An Android phone's MTP
  // interface is vendor-specific (ff) and only its interface *name* says "MTP"; under default-deny
  // that name is not readable (no interface directories), so the phone falls to implicit block.
  const table: [string, devices.UsbFixture, 'allow' | 'block' | 'reject', RegExp | null][] = [
    ['a keyboard', devices.keyboard, 'allow', /keyboard \/ mouse/],
    ['a mouse', devices.mouse, 'allow', /keyboard \/ mouse/],
    ['a USB stick', devices.usbStick, 'block', /removable storage/],
    ['an unregistered encrypted stick', devices.encryptedStick, 'block', /removable storage/],
    ['an Android phone in MTP mode', devices.androidMtp, 'block', null],
    ['an iPhone (PTP)', devices.iphone, 'block', /phone/],
    ['a USB Ethernet adapter (CDC ECM)', devices.ethernetAdapter, 'block', /network adapter/],
    ['RNDIS tethering', devices.rndisTethering, 'block', /network adapter/],
    ['a Bluetooth dongle', devices.bluetoothDongle, 'block', /Bluetooth/],
    ['a BadUSB stick (storage + keyboard)', devices.badUsb, 'reject', /BadUSB/],
  ];

  for (const [what, fixture, target, label] of table) {
    it(`decides ${what}: ${target}, enforced in sysfs and journaled with the deciding rule`, async () => {
      const decision = await insert(fixture, '1-1');
      expect(decision).toBeDefined();
      expect(decision!.data.decision).toBe(target);
      if (label === null) {
        expect(decision!.data.rule).toMatchObject({ kind: 'implicit', line: null });
      } else {
        expect(decision!.data.rule.kind).toBe('rule');
        expect(decision!.data.rule.label).toMatch(label);
        expect(decision!.data.rule.line).toBeGreaterThan(0);
      }
      expect(decision!.data.enforced.ok).toBe(true);
      expect(decision!.data.device.id).toBe(`${fixture.expected.vendorId}:${fixture.expected.productId}`);
      if (target === 'reject') {
        expect(rig.sysfs.has('1-1')).toBe(false);
      } else {
        expect((await rig.sysfs.attribute('1-1', 'authorized')).trim()).toBe(target === 'allow' ? '1' : '0');
      }
      // No block device ever appears for a device that is not allowed.
      if (target !== 'allow') expect(rig.sysfs.blockDevicesOf('1-1')).toEqual([]);
    });
  }

  it('blocks a stick plugged in behind a hub, and allows the hub', async () => {
    await insert(devices.hub, '1-2');
    expect((await rig.sysfs.attribute('1-2', 'authorized')).trim()).toBe('1');
    const decision = await insert(devices.usbStick, '1-2.1');
    expect(decision!.data.decision).toBe('block');
    expect((await rig.sysfs.attribute('1-2.1', 'authorized')).trim()).toBe('0');
  });

  it('blocks a device whose hotplug event never arrived, on the next reconcile pass', async () => {
    const decision = await insert(devices.usbStick, '2-1', false);
    expect(decision!.data.via).toBe('reconcile');
    expect((await rig.sysfs.attribute('2-1', 'authorized')).trim()).toBe('0');
  });

  it('flags a device with no serial and two sticks that share one', async () => {
    const noSerial = await insert(devices.noSerialStick, '1-1');
    expect(noSerial!.data.flags).toContain('empty-serial');
    await insert(devices.sharedSerialStickA, '1-2');
    const second = await insert(devices.sharedSerialStickB, '1-3');
    expect(second!.data.flags).toContain('duplicate-serial');
  });

  it('journals a hostile product string as inert data', async () => {
    const decision = await insert(devices.hostileStrings, '1-1');
    expect(decision!.data.decision).toBe('block');
    expect(String(decision!.data.device.name)).toContain('<img src=x onerror=alert(1)>');
  });

  it('blocks again a blocked device someone re-authorised, and journals the tampering', async () => {
    await insert(devices.usbStick, '1-1');
    await rig.sysfs.writeAttribute('1-1', 'authorized', '1');
    await rig.sysfs.syncKernel();
    await rig.control.reconcile();
    await rig.sysfs.syncKernel();
    expect((await rig.sysfs.attribute('1-1', 'authorized')).trim()).toBe('0');
    const tamper = (await rig.entries()).find((entry) => entry.type === 'tamper.detected');
    expect(tamper?.data).toMatchObject({ kind: 'device-state-drift', key: '1-1', expected: 'block' });
  });

  it('journals a detach when a device goes away', async () => {
    await insert(devices.usbStick, '1-1');
    await rig.sysfs.unplug('1-1');
    await rig.control.reconcile();
    expect((await rig.entries()).some((entry) => entry.type === 'device.detached' && entry.data.key === '1-1')).toBe(true);
  });

  it('re-decides present devices when the policy changes: a registered stick becomes usable', async () => {
    await insert(devices.encryptedStick, '1-1');
    expect((await rig.sysfs.attribute('1-1', 'authorized')).trim()).toBe('0');
    rig.setPolicy(
      policyWith((policy) => {
        policy.usb.rules.unshift(`allow id 0951:1727 serial "${devices.encryptedStick.expected.serial}" label "総務課 暗号化USB #12"`);
      }),
    );
    await rig.control.policyChanged();
    await rig.sysfs.syncKernel();
    expect((await rig.sysfs.attribute('1-1', 'authorized')).trim()).toBe('1');
    const allowed = (await rig.entries()).filter((entry) => entry.type === 'device.allowed' && entry.data.key === '1-1').at(-1);
    expect(allowed?.data.rule).toMatchObject({ kind: 'rule', line: 1, label: '総務課 暗号化USB #12' });
  });

  // Flaky under heavy CPU load in CI (about 1 run in 4 on a loaded 2-core machine): the fake kernel's disk is
  // sometimes gone at the assertion although the enforcer saw it and ran blockdev. Cause not found yet (see the
  // session note); retried rather than weakened — every assertion still has to hold in one run.
  it('makes storage read-only where the policy says so (lgwan), through blockdev --setro', async () => {
    rig.setPolicy(builtInPolicy('lgwan'));
    await rig.control.policyChanged();
    const kernel = rig.sysfs.runKernel(2);
    try {
      const decision = await insert(devices.usbStick, '1-1');
      expect(decision!.data.decision).toBe('read-only');
      expect(decision!.data.enforced.ok).toBe(true);
      const disk = rig.sysfs.blockDevicesOf('1-1')[0];
      expect(disk).toMatch(/^sd[b-z]$/);
      expect(rig.commands.calls.map((call) => [call.file, ...call.args].join(' '))).toContain(`blockdev --setro /dev/${disk}`);
    } finally {
      await kernel.stop();
    }
  });

  it('in audit mode decides and journals but blocks nothing', async () => {
    rig.setPolicy(policyWith((policy) => (policy.mode = 'audit')));
    await rig.control.policyChanged();
    const decision = await insert(devices.usbStick, '1-1');
    expect(decision!.data).toMatchObject({ decision: 'block', audit: true, enforced: { target: 'allow', ok: true } });
    expect((await rig.sysfs.attribute('1-1', 'authorized')).trim()).toBe('1');
  });
});
