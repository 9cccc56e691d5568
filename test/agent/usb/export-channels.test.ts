import { readFile } from 'node:fs/promises';
import path from 'node:path';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../../../agent/journal/journal.js';
import { builtInPolicy } from '../../../agent/policy/profiles.js';
import { DeviceControl } from '../../../agent/usb/device-control.js';
import { countSerials, decideUsb } from '../../../agent/usb/policy-engine.js';
import { LinuxUsbDeviceSource } from '../../../agent/usb/usb-device-source.linux.js';
import { LinuxUsbEnforcer } from '../../../agent/usb/usb-enforcer.linux.js';
import type { UsbEventSource } from '../../../agent/usb/usb-events.js';
import type { Tier } from '../../../shared/policy.js';
import { FakeCommandRunner } from '../../fakes/fake-command-runner.js';
import { FakeSysfs } from '../../fakes/fake-sysfs.js';
import * as devices from '../../fixtures/usb-devices/devices.js';
import * as more from '../../fixtures/usb-devices/export-channels.js';
import { authorizedOf } from '../../helpers/agent-state.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();
const silent = winston.createLogger({ silent: true });
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const noEvents: UsbEventSource = { start: () => Promise.resolve(), dispose: () => undefined };

/** Plugs one device into a fresh kernel-shaped tree under the tier's built-in profile and returns its decision entry. */
async function decideOnTier(tier: Tier, fixture: devices.UsbFixture) {
  const sysfs = await FakeSysfs.create([{ bus: 1 }]);
  cleanup.push(() => sysfs.dispose());
  const { journal } = await Journal.open(path.join(await tempDir(), 'journal.jsonl'));
  cleanup.push(() => journal.close());
  const commands = new FakeCommandRunner();
  const control = new DeviceControl({
    source: new LinuxUsbDeviceSource({ sysfsRoot: sysfs.root }),
    // A generous wait for the fake kernel to create the disk: under a loaded CI machine its loop runs late.
    enforcer: new LinuxUsbEnforcer({ sysfsRoot: sysfs.root, commands, blockDeviceTimeoutMs: 20_000, pollIntervalMs: 5 }),
    events: noEvents,
    journal,
    logger: silent,
    reconcileMs: 60_000,
    decide: (device, present) => {
      const decision = decideUsb({ device: device.identity, policy: builtInPolicy(tier), now: new Date(), presentSerials: countSerials(present.map((item) => item.identity)) });
      return { target: decision.target, rule: { ...decision.rule }, audit: decision.audit, flags: decision.flags };
    },
  });
  cleanup.push(() => control.dispose());
  await control.start();
  await sysfs.plug(fixture, '1-1');
  const kernel = reactiveKernel(sysfs, '1-1');
  cleanup.push(() => kernel.stop());
  await control.reconcile();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- journal data is free-form JSON
  const entries = (await journal.read(1, 1000)) as { type: string; data: Record<string, any> }[];
  const decision = entries.filter((entry) => entry.type.startsWith('device.') && entry.data.decision).at(-1);
  return { decision, sysfs, commands };
}

/**
 * Plays the fake kernel only after a fresh write to the device's `authorized` (the agent writes
 * without a newline; the fake rewrites with one). `FakeSysfs.runKernel()` rewrites every attribute
 * with the value it read on every pass, so a pass that read `0` just before the enforcer wrote `1`
 * writes `0` back and the disk never appears — the cause of the rare read-only timeouts.
 */
function reactiveKernel(sysfs: FakeSysfs, device: string): { stop(): Promise<void> } {
  let busy = false;
  let pass: Promise<void> = Promise.resolve();
  const file = path.join(sysfs.deviceDir(device), 'authorized');
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    pass = readFile(file, 'utf8')
      .then((raw) => (raw !== '' && !raw.endsWith('\n') ? sysfs.syncKernel() : undefined))
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, 2);
  return {
    stop: async () => {
      clearInterval(timer);
      await pass;
    },
  };
}

type Expectation = Readonly<Record<Tier, 'block' | 'read-only' | 'allow'>>;
const BLOCKED_EVERYWHERE: Expectation = { mynumber: 'block', lgwan: 'block', internet: 'block' };
const STORAGE: Expectation = { mynumber: 'block', lgwan: 'read-only', internet: 'block' };

const table: [string, devices.UsbFixture, Expectation, RegExp | null][] = [
  ['an Android phone in MTP mode (vendor interface named "MTP")', devices.androidMtp, BLOCKED_EVERYWHERE, null],
  ['an iPhone (PTP, 06)', devices.iphone, BLOCKED_EVERYWHERE, /phone/],
  ['a camera in PTP mode (06:01:01)', more.ptpCamera, BLOCKED_EVERYWHERE, /phone/],
  ['a CDC ECM Ethernet adapter (02/0a)', devices.ethernetAdapter, BLOCKED_EVERYWHERE, /network adapter/],
  ['a CDC NCM Ethernet adapter (02:0d, 0a:00:01)', more.ncmAdapter, BLOCKED_EVERYWHERE, /network adapter/],
  ['RNDIS tethering (e0:01:03)', devices.rndisTethering, BLOCKED_EVERYWHERE, /network adapter/],
  ['RNDIS tethering (ef:04:01)', more.rndisMisc, BLOCKED_EVERYWHERE, /network adapter/],
  ['a Bluetooth dongle (e0:01:01)', devices.bluetoothDongle, BLOCKED_EVERYWHERE, /Bluetooth/],
  ['a USB SD card reader (mass storage)', more.sdCardReader, STORAGE, /removable storage/],
  ['an external USB DVD writer (08:02:50)', more.usbDvdWriter, STORAGE, /removable storage/],
];

describe('export channels over USB, per tier profile (kernel-shaped sysfs, each decision journaled)', () => {
  for (const [what, fixture, expected, label] of table) {
    for (const tier of ['mynumber', 'lgwan', 'internet'] as const) {
      it(`on the ${tier} tier decides ${what}: ${expected[tier]}`, async () => {
        const { decision, sysfs, commands } = await decideOnTier(tier, fixture);
        expect(decision?.data.decision).toBe(expected[tier]);
        expect(decision?.data.enforced).toMatchObject({ ok: true, error: null });
        if (label === null) expect(decision?.data.rule.kind).toBe('implicit');
        else expect(decision?.data.rule.label).toMatch(label);
        if (expected[tier] === 'block') {
          expect(await authorizedOf(sysfs, '1-1')).toBe('0');
          expect(sysfs.blockDevicesOf('1-1')).toEqual([]);
        } else {
          // Read-only: authorised, then BLKROSET on the disk and its partition.
          const [disk] = sysfs.blockDevicesOf('1-1');
          expect(disk).toBeDefined();
          expect(commands.argvs()).toEqual([
            ['--setro', `/dev/${disk}`],
            ['--setro', `/dev/${disk}1`],
          ]);
        }
      });
    }
  }
});
