// Differential test against USBGuard itself: libusbguard's UEventDeviceManager (what usbguard-daemon
// runs) reads the same FakeSysfs tree as LinuxUsbDeviceSource, and both must agree on every device's
// hash, parent-hash, name, serial, id, port, connect type and interface list. The harness is
// test/fixtures/usb-devices/usbguard-device-harness.cpp, compiled into a temp dir with g++ and
// pkg-config (Debian: libusbguard-dev). Skipped, with the reason in the test name, when unavailable.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usbguardStringHash } from '../../../../agent/usb/device-hash.js';
import { LinuxUsbDeviceSource, rootHubParentHash } from '../../../../agent/usb/usb-device-source.linux.js';
import { FakeSysfs } from '../../../fakes/fake-sysfs.js';
import { ALL_FIXTURES, hub, usbStick } from '../../../fixtures/usb-devices/devices.js';

const succeeds = (command: string, args: readonly string[]): boolean => spawnSync(command, args, { stdio: 'ignore' }).status === 0;

// The harness reaches the temp tree as "/sys/../tmp/…" (the public API cannot move USBGuard's sysfs
// root), so /sys must exist and no path component may start with "usb" (USBGuard's scan starts there).
const available =
  succeeds('g++', ['--version']) && succeeds('pkg-config', ['--exists', 'libusbguard']) && existsSync('/sys') && !/\/usb/.test(tmpdir());
const skipped = available ? '' : ' (skipped: g++, pkg-config, libusbguard-dev or /sys not available)';
const harnessSource = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../fixtures/usb-devices/usbguard-device-harness.cpp');

let workDir = '';
let harness = '';
let sysfs: FakeSysfs | null = null;

beforeAll(async () => {
  if (!available) return;
  workDir = mkdtempSync(path.join(tmpdir(), 'sekimori-usbguard-device-'));
  harness = path.join(workDir, 'usbguard-device-harness');
  const flags = spawnSync('pkg-config', ['--cflags', '--libs', 'libusbguard'], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
  const build = spawnSync('g++', ['-std=c++17', '-O1', '-o', harness, harnessSource, ...flags], { encoding: 'utf8', timeout: 180_000 });
  if (build.status !== 0) throw new Error(`the USBGuard device harness did not compile:\n${build.stderr}`);

  // Every fixture, unauthorised (default-deny) on bus 1, plus a hub with a stick behind it on bus 2.
  sysfs = await FakeSysfs.create([
    { bus: 1, authorizedDefault: 0, ports: ALL_FIXTURES.length, hardwiredPorts: [2] },
    { bus: 2, superSpeed: true },
  ]);
  for (const [index, fixture] of ALL_FIXTURES.entries()) await sysfs.plug(fixture, `1-${index + 1}`);
  await sysfs.plug(hub, '2-1');
  await sysfs.plug(usbStick, '2-1.4');
}, 200_000);

afterAll(async () => {
  if (workDir !== '') rmSync(workDir, { recursive: true, force: true });
  await sysfs?.dispose();
});

interface UsbguardDevice {
  readonly port: string;
  readonly id: string;
  readonly name: Buffer;
  readonly serial: Buffer;
  readonly hash: string;
  readonly parentHash: string;
  readonly connectType: string;
  readonly interfaces: readonly string[];
}

const unhex = (text: string): Buffer => (text === '-' ? Buffer.alloc(0) : Buffer.from(text, 'hex'));

/** What USBGuard makes of the devices at these real paths, by port (each path's ancestors included). */
function usbguardRead(tree: FakeSysfs, keys: readonly string[]): Map<string, UsbguardDevice> {
  const devpaths = keys.map((key) => `/..${tree.deviceDir(key)}`);
  const run = spawnSync(harness, devpaths, { encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0) throw new Error(`the USBGuard device harness failed: ${run.stdout}${run.stderr}`);
  const devices = new Map<string, UsbguardDevice>();
  for (const line of run.stdout.split('\n').filter((text) => text !== '')) {
    const fields = line.split(' ');
    if (fields[0] === 'ERR') throw new Error(`USBGuard: ${unhex(fields[1] ?? '-').toString()}`);
    const [, port = '', id = '', name = '-', serial = '-', hash = '', parentHash = '-', connectType = '-', interfaces = '-'] = fields;
    devices.set(port, {
      port,
      id,
      name: unhex(name),
      serial: unhex(serial),
      hash,
      parentHash: unhex(parentHash).toString(),
      connectType: unhex(connectType).toString(),
      interfaces: interfaces === '-' ? [] : interfaces.split(','),
    });
  }
  return devices;
}

describe('USBGuard differential (device reading)', () => {
  it.skipIf(!available)(`reads every fixture exactly as libusbguard does: hash, parent-hash, strings, port, interfaces${skipped}`, async () => {
    const tree = sysfs!;
    const ours = await new LinuxUsbDeviceSource(tree.root).list();
    expect(ours).toHaveLength(ALL_FIXTURES.length + 2);
    const theirs = usbguardRead(
      tree,
      ours.map((device) => device.key),
    );
    for (const device of ours) {
      const reference = theirs.get(device.key);
      expect(reference, device.key).toBeDefined();
      expect({
        port: device.key,
        id: `${device.identity.vendorId}:${device.identity.productId}`,
        name: device.identity.name,
        serial: device.identity.serial,
        hash: device.identity.hash,
        parentHash: device.identity.parentHash,
        connectType: device.identity.connectType,
        interfaces: device.identity.interfaces,
      }).toEqual({
        port: reference!.port,
        id: reference!.id,
        // USBGuard keeps raw bytes; we decode them (U+FFFD for invalid UTF-8).
        name: new TextDecoder().decode(reference!.name),
        serial: new TextDecoder().decode(reference!.serial),
        hash: reference!.hash,
        parentHash: reference!.parentHash,
        connectType: reference!.connectType,
        interfaces: reference!.interfaces,
      });
    }
  });

  it.skipIf(!available)(`computes a root hub parent-hash from the host controller path as libusbguard does${skipped}`, () => {
    const tree = sysfs!;
    const theirs = usbguardRead(tree, ['usb1']);
    // Through "/sys/.." USBGuard sees the controller at "/../<temp>/devices/…", so that is the string it hashed.
    const controller = `/..${path.dirname(tree.deviceDir('usb1'))}`;
    expect(theirs.get('usb1')?.parentHash).toBe(usbguardStringHash(controller));
    // Through a real sysfs root the same rule gives "/devices/pci0000:00/0000:00:14.0".
    expect(rootHubParentHash(tree.root, 'usb1')).toBe(usbguardStringHash('/devices/pci0000:00/0000:00:14.0'));
  });
});
