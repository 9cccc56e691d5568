import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { usbguardDeviceHash } from '../../../../agent/usb/device-hash.js';
import { LinuxUsbDeviceSource, parentDeviceName, sysfsText, type SkippedDevice } from '../../../../agent/usb/usb-device-source.linux.js';
import { UsbDeviceIdentitySchema } from '../../../../shared/usb-rules/device.js';
import {
  ALL_FIXTURES,
  androidMtp,
  hostileStrings,
  hub,
  keyboard,
  noSerialStick,
  sharedSerialStickA,
  sharedSerialStickB,
  usbStick,
} from '../../../fixtures/usb-devices/devices.js';
import { useFakeSysfs } from './support.js';

const fakeSysfs = useFakeSysfs();

describe('LinuxUsbDeviceSource', () => {
  it.each(ALL_FIXTURES.map((fixture) => [fixture.slug, fixture] as const))(
    'reads %s while it is unauthorised, from its descriptors alone',
    async (_slug, fixture) => {
      const sysfs = await fakeSysfs([{ bus: 1, authorizedDefault: 0 }]);
      await sysfs.plug(fixture, '1-1');
      const entries = await fs.readdir(sysfs.deviceDir('1-1'));
      expect(entries.filter((entry) => entry.includes(':'))).toEqual([]); // the kernel's unconfigured state

      const device = await new LinuxUsbDeviceSource(sysfs.root).read('1-1');
      expect(device).not.toBeNull();
      expect(device?.identity).toMatchObject({
        vendorId: fixture.expected.vendorId,
        productId: fixture.expected.productId,
        serial: fixture.expected.serial,
        name: fixture.expected.name,
        viaPort: '1-1',
        connectType: 'hotplug',
        interfaces: fixture.expected.interfaces,
      });
      expect(device?.identity.interfaceNames).toEqual(fixture.expected.interfaces.map(() => ''));
      expect(device).toMatchObject({ key: '1-1', manufacturer: fixture.expected.manufacturer, isHub: fixture.expected.isHub, authorized: false, blockDevices: [] });
      expect(UsbDeviceIdentitySchema.safeParse(device?.identity).success).toBe(true);
    },
  );

  it('lists devices in port order, skipping root hubs and interfaces, behind hubs too', async () => {
    const sysfs = await fakeSysfs([{ bus: 1, ports: 12 }, { bus: 2, superSpeed: true }]);
    await sysfs.plug(hub, '1-10');
    await sysfs.plug(usbStick, '1-10.2');
    await sysfs.plug(keyboard, '1-2');
    await sysfs.plug(androidMtp, '2-1');
    const devices = await new LinuxUsbDeviceSource(sysfs.root).list();
    expect(devices.map((device) => device.key)).toEqual(['1-2', '1-10', '1-10.2', '2-1']);
  });

  it('gives a device its parent hub hash as parent-hash, and a device on a root port the root hub hash', async () => {
    const sysfs = await fakeSysfs();
    await sysfs.plug(hub, '1-1');
    await sysfs.plug(usbStick, '1-1.3');
    const devices = await new LinuxUsbDeviceSource(sysfs.root).list();
    const [hubDevice, stick] = devices;
    expect(stick?.identity.parentHash).toBe(hubDevice?.identity.hash);
    expect(stick?.identity.connectType).toBe('unknown');
    expect(parentDeviceName('1-1.3')).toBe('1-1');
    expect(parentDeviceName('3-2.4.1')).toBe('3-2.4');
    const rootHubHash = usbguardDeviceHash({
      product: await fs.readFile(path.join(sysfs.deviceDir('usb1'), 'product')),
      idVendor: await fs.readFile(path.join(sysfs.deviceDir('usb1'), 'idVendor')),
      idProduct: await fs.readFile(path.join(sysfs.deviceDir('usb1'), 'idProduct')),
      serial: await fs.readFile(path.join(sysfs.deviceDir('usb1'), 'serial')),
      descriptors: await fs.readFile(path.join(sysfs.deviceDir('usb1'), 'descriptors')),
    });
    expect(hubDevice?.identity.parentHash).toBe(rootHubHash);
  });

  it('reads interface names and block devices once a device is authorised', async () => {
    const sysfs = await fakeSysfs();
    await sysfs.plug(androidMtp, '1-1');
    await sysfs.plug(usbStick, '1-2');
    const source = new LinuxUsbDeviceSource(sysfs.root);
    expect((await source.read('1-1'))?.identity.interfaceNames).toEqual(['MTP', 'ADB Interface']);
    expect(await source.read('1-2')).toMatchObject({ authorized: true, blockDevices: ['sdb'] });
  });

  it('reads hostile strings as inert text: replacement characters for bad bytes, nothing interpreted', async () => {
    const sysfs = await fakeSysfs();
    await sysfs.plug(hostileStrings, '1-4');
    const device = await new LinuxUsbDeviceSource(sysfs.root).read('1-4');
    expect(device?.identity.name).toBe(hostileStrings.expected.name);
    expect(device?.identity.serial).toBe('../../../etc/passwd');
    expect(device?.manufacturer).toBe('A\u0000B');
    expect(device?.identity.interfaceNames).toEqual(['"; rm -rf / #']);
  });

  it('caps absurdly long strings and strips exactly one trailing newline', () => {
    expect(sysfsText(Buffer.from(`${'x'.repeat(5000)}\n`))).toHaveLength(1024);
    expect(sysfsText(Buffer.from('name\n\n'))).toBe('name\n');
    expect(sysfsText(null)).toBe('');
  });

  it('reports a device without a serial with an empty serial', async () => {
    const sysfs = await fakeSysfs();
    await sysfs.plug(noSerialStick, '1-1');
    expect((await new LinuxUsbDeviceSource(sysfs.root).read('1-1'))?.identity.serial).toBe('');
  });

  it('reads two sticks sharing one serial as two devices with the same identity but different ports', async () => {
    const sysfs = await fakeSysfs();
    await sysfs.plug(sharedSerialStickA, '1-1');
    await sysfs.plug(sharedSerialStickB, '1-2');
    const [first, second] = await new LinuxUsbDeviceSource(sysfs.root).list();
    expect(first?.identity.serial).toBe(second?.identity.serial);
    expect(first?.identity.hash).toBe(second?.identity.hash);
    expect([first?.identity.viaPort, second?.identity.viaPort]).toEqual(['1-1', '1-2']);
  });

  it('returns null for a device that vanished, and skips it from the list without an error', async () => {
    const sysfs = await fakeSysfs();
    await sysfs.plug(usbStick, '1-1');
    await sysfs.plug(keyboard, '1-2');
    const skipped: SkippedDevice[] = [];
    const source = new LinuxUsbDeviceSource({ sysfsRoot: sysfs.root, onSkip: (entry) => skipped.push(entry) });
    // Gone between readdir and the attribute reads: the symlink dangles, as it would mid-removal.
    await fs.rm(sysfs.deviceDir('1-1'), { recursive: true });
    expect(await source.read('1-1')).toBeNull();
    expect((await source.list()).map((device) => device.key)).toEqual(['1-2']);
    await sysfs.unplug('1-2');
    expect(await source.read('1-2')).toBeNull();
    expect(skipped).toEqual([]);
  });

  it('skips and reports a present device whose descriptors do not parse', async () => {
    const sysfs = await fakeSysfs();
    await sysfs.plug(usbStick, '1-1');
    await fs.writeFile(path.join(sysfs.deviceDir('1-1'), 'descriptors'), Buffer.from([18, 1, 0, 0]));
    const skipped: SkippedDevice[] = [];
    const source = new LinuxUsbDeviceSource({ sysfsRoot: sysfs.root, onSkip: (entry) => skipped.push(entry) });
    expect(await source.list()).toEqual([]);
    expect(skipped).toEqual([{ key: '1-1', reason: expect.stringContaining('descriptors:') }]);
  });

  it('refuses keys that are not device names, so an event can never name a path', async () => {
    const sysfs = await fakeSysfs();
    const source = new LinuxUsbDeviceSource(sysfs.root);
    for (const key of ['usb1', '1-1:1.0', '../../etc', '1-1/../..', '']) expect(await source.read(key)).toBeNull();
  });

  it('lists nothing on a machine without a USB bus', async () => {
    expect(await new LinuxUsbDeviceSource('/nonexistent-sysfs').list()).toEqual([]);
  });

  it('reads 50 devices in a few milliseconds', async () => {
    const sysfs = await fakeSysfs([1, 2, 3, 4, 5].map((bus) => ({ bus, controller: `0000:00:1${bus}.0`, ports: 10 })));
    for (let bus = 1; bus <= 5; bus += 1) for (let port = 1; port <= 10; port += 1) await sysfs.plug(ALL_FIXTURES[(bus * 10 + port) % ALL_FIXTURES.length]!, `${bus}-${port}`);
    const source = new LinuxUsbDeviceSource(sysfs.root);
    await source.list(); // warm the page cache and the JIT
    const started = performance.now();
    const devices = await source.list();
    const elapsed = performance.now() - started;
    expect(devices).toHaveLength(50);
    expect(elapsed).toBeLessThan(250); // 30-45 ms on the disk-backed dev VM temp dir; generous for CI
  });
});
