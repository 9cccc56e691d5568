/**
 * USB device control numbers (issue 3), each beside its ceiling or target, measured in one run.
 * Part of `npm run bench`. The agent code is the compiled build (dist/), so the numbers are those
 * of the shipped JavaScript; the fake kernel tree and fixtures come from test/.
 *
 *   decisions/s, 1,000-rule policy       vs a 1-rule policy (the per-decision floor); target ≥ 100,000/s
 *   hotplug event → `authorized` written  p50/p99 over 1,000 insertions, vs writing `authorized` alone; target p99 < 20 ms
 *   detection with no event               worst case over insertions at random moments, vs the reconcile interval
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import winston from 'winston';
import { Journal } from '../../dist/agent/journal/journal.js';
import { builtInPolicyDocument } from '../../dist/agent/policy/profiles.js';
import { DeviceControl } from '../../dist/agent/usb/device-control.js';
import { decideUsb } from '../../dist/agent/usb/policy-engine.js';
import { LinuxUsbDeviceSource } from '../../dist/agent/usb/usb-device-source.linux.js';
import { LinuxUsbEnforcer } from '../../dist/agent/usb/usb-enforcer.linux.js';
import type { UsbEventSource } from '../../dist/agent/usb/usb-events.js';
import { validatePolicy, type ValidatedPolicy } from '../../dist/shared/policy.js';
import type { UsbDeviceIdentity } from '../../dist/shared/usb-rules/index.js';
import { FakeCommandRunner } from '../fakes/fake-command-runner.js';
import { FakeSysfs } from '../fakes/fake-sysfs.js';
import { keyboard, usbStick } from '../fixtures/usb-devices/devices.js';

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const hex = (n: number): string => (n & 0xffff).toString(16).padStart(4, '0');
const rows: string[][] = [];
const silent = winston.createLogger({ silent: true });

function policy(rules: string[], tier: 'lgwan' | 'mynumber' = 'lgwan'): ValidatedPolicy {
  const document = builtInPolicyDocument(tier);
  document.version = 2;
  document.usb.rules = [...rules, ...document.usb.rules];
  const validated = validatePolicy(document);
  if (!validated.ok) throw new Error(validated.error.message);
  return validated.value;
}

function decisionsPerSecond(compiled: ValidatedPolicy, devices: UsbDeviceIdentity[]): number {
  const now = new Date();
  for (let i = 0; i < 20_000; i += 1) decideUsb({ device: devices[i % devices.length]!, policy: compiled, now });
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < 2000) {
    for (const device of devices) decideUsb({ device, policy: compiled, now });
    count += devices.length;
  }
  return count / ((performance.now() - start) / 1000);
}

function benchDecisions(): void {
  const interfaceSets = [['03:01:01'], ['08:06:50'], ['02:06:00', '0a:00:00'], ['ff:ff:00']];
  const devices: UsbDeviceIdentity[] = Array.from({ length: 1000 }, (_, i) => ({
    vendorId: hex(0x1000 + (i % 60)),
    productId: hex((i * 7) % 2000),
    serial: `SN${i % 1500}`,
    name: `Device ${i}`,
    hash: '',
    parentHash: '',
    viaPort: `1-${(i % 8) + 1}`,
    connectType: 'hotplug',
    interfaces: interfaceSets[i % interfaceSets.length]!,
  }));
  const big = policy(Array.from({ length: 990 }, (_, i) => `allow id ${hex(0x1000 + (i % 50))}:${hex(i)} serial "SN${i}"`));
  const noIds = policy(Array.from({ length: 990 }, (_, i) => `allow serial "SN${i}" with-interface one-of { 08:*:* }`));
  const floor = policy([]);
  const bigRate = decisionsPerSecond(big, devices);
  const noIdRate = decisionsPerSecond(noIds, devices);
  const floorRate = decisionsPerSecond(floor, devices);
  rows.push([`decisions/s, ${big.rules.length}-rule policy (rules pin id + serial)`, fmt(bigRate), `${fmt(floorRate)}/s with the ${floor.rules.length}-rule profile alone`, `${fmt((bigRate / floorRate) * 100)}%`, '≥ 100,000/s']);
  rows.push([`decisions/s, ${noIds.rules.length}-rule policy (serial + interface, no id)`, fmt(noIdRate), `${fmt(floorRate)}/s`, `${fmt((noIdRate / floorRate) * 100)}%`, '≥ 100,000/s']);
}

class ManualEvents implements UsbEventSource {
  start(): Promise<void> {
    return Promise.resolve();
  }
  dispose(): void {}
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function rig(reconcileMs: number) {
  const sysfs = await FakeSysfs.create([{ bus: 1, ports: 8 }]);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sekimori-usb-bench-'));
  const { journal } = await Journal.open(path.join(dir, 'journal.jsonl'));
  // mynumber: sticks are blocked outright (lgwan's read-only would wait for a disk this fake
  // kernel only creates when it runs).
  const compiled = policy([], 'mynumber');
  const control = new DeviceControl({
    source: new LinuxUsbDeviceSource({ sysfsRoot: sysfs.root }),
    enforcer: new LinuxUsbEnforcer({ sysfsRoot: sysfs.root, commands: new FakeCommandRunner() }),
    events: new ManualEvents(),
    journal,
    logger: silent,
    reconcileMs,
    decide: (device) => {
      const decision = decideUsb({ device: device.identity, policy: compiled, now: new Date() });
      return { target: decision.target, rule: { ...decision.rule }, audit: decision.audit, flags: decision.flags };
    },
  });
  await control.start();
  return {
    sysfs,
    control,
    close: async (): Promise<void> => {
      await control.dispose();
      await journal.close();
      await sysfs.dispose();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

async function benchHotplug(): Promise<void> {
  const { sysfs, control, close } = await rig(3_600_000);
  const latencies: number[] = [];
  const raw: number[] = [];
  const insertions = 1000;
  for (let i = 0; i < insertions; i += 1) {
    const port = `1-${(i % 8) + 1}`;
    await sysfs.plug(i % 2 === 0 ? keyboard : usbStick, port);
    const start = performance.now();
    await control.attached(port); // the event's work: read, decide, write `authorized`, journal
    latencies.push(performance.now() - start);
    // Ceiling: the bare write of the attribute the enforcer must write.
    const rawStart = performance.now();
    await fs.writeFile(path.join(sysfs.deviceDir(port), 'authorized'), i % 2 === 0 ? '1' : '0');
    raw.push(performance.now() - rawStart);
    await sysfs.unplug(port);
    await control.reconcile(); // forget it, as a detach would
  }
  await close();
  latencies.sort((a, b) => a - b);
  raw.sort((a, b) => a - b);
  rows.push([
    `hotplug event → authorized written (${insertions} insertions)`,
    `p50 ${fmt(percentile(latencies, 50), 2)} ms, p99 ${fmt(percentile(latencies, 99), 2)} ms`,
    `bare write p50 ${fmt(percentile(raw, 50), 3)} ms, p99 ${fmt(percentile(raw, 99), 3)} ms`,
    '',
    'p99 < 20 ms',
  ]);
}

async function benchNoEvent(): Promise<void> {
  const reconcileMs = 250;
  const { sysfs, close } = await rig(reconcileMs);
  const detections: number[] = [];
  for (let i = 0; i < 20; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, Math.random() * reconcileMs));
    const port = `1-${(i % 8) + 1}`;
    await sysfs.plug(keyboard, port); // arrives unauthorised; only the reconcile pass can allow it
    const start = performance.now();
    for (;;) {
      if ((await sysfs.attribute(port, 'authorized')).trim() === '1') break;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    detections.push(performance.now() - start);
    await sysfs.unplug(port);
  }
  await close();
  rows.push([
    'detection with no hotplug event (20 insertions at random moments)',
    `worst ${fmt(Math.max(...detections), 0)} ms, mean ${fmt(detections.reduce((a, b) => a + b, 0) / detections.length, 0)} ms`,
    `reconcile interval ${reconcileMs} ms`,
    `${fmt((Math.max(...detections) / reconcileMs) * 100)}%`,
    '≈ the interval, not more',
  ]);
}

console.log(`sekimori USB bench — node ${process.version}, ${os.cpus().length} cores`);
benchDecisions();
await benchHotplug();
await benchNoEvent();
console.log('\n| measure | value | ceiling / reference (same run) | of it | target |\n|---|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
