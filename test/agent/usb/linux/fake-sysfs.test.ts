import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { keyboard, usbStick } from '../../../fixtures/usb-devices/devices.js';
import { useFakeSysfs } from './support.js';

const fakeSysfs = useFakeSysfs();

describe('FakeSysfs (the kernel behaviour tests rely on)', () => {
  it('lays devices out under the controller with relative symlinks in bus/usb/devices', async () => {
    const sysfs = await fakeSysfs();
    await sysfs.plug(usbStick, '1-1');
    const link = path.join(sysfs.root, 'bus/usb/devices/1-1');
    expect((await fs.lstat(link)).isSymbolicLink()).toBe(true);
    expect(await fs.readlink(link)).toBe('../../../devices/pci0000:00/0000:00:14.0/usb1/1-1');
    expect((await fs.readdir(path.join(sysfs.root, 'bus/usb/devices'))).sort()).toEqual(['1-0:1.0', '1-1', '1-1:1.0', 'usb1']);
    expect(await fs.readFile(path.join(sysfs.deviceDir('1-1'), 'descriptors'))).toEqual(usbStick.descriptors);
    expect(await sysfs.attribute('1-1', 'port/connect_type')).toBe('hotplug');
  });

  it.each([
    [1, 'hotplug', '1'],
    [-1, 'hotplug', '1'],
    [0, 'hotplug', '0'],
    [2, 'hotplug', '0'],
    [2, 'hardwired', '1'],
  ] as const)('starts a device with authorized derived from authorized_default=%s on a %s port', async (authorizedDefault, connectType, authorized) => {
    const sysfs = await fakeSysfs([{ bus: 1, authorizedDefault, hardwiredPorts: connectType === 'hardwired' ? [1] : [] }]);
    await sysfs.plug(keyboard, '1-1');
    expect(await sysfs.attribute('1-1', 'authorized')).toBe(authorized);
    expect((await fs.readdir(sysfs.deviceDir('1-1'))).some((entry) => entry.startsWith('1-1:'))).toBe(authorized === '1');
  });

  it('creates interfaces and the disk when authorized becomes 1, removes them at 0, and drops the device on remove', async () => {
    const sysfs = await fakeSysfs([{ bus: 1, authorizedDefault: 0 }]);
    await sysfs.plug(usbStick, '1-1');
    await sysfs.writeAttribute('1-1', 'authorized', '1');
    await sysfs.syncKernel();
    expect(await sysfs.attribute('1-1', '1-1:1.0/bInterfaceClass')).toBe('08');
    expect(sysfs.blockDevicesOf('1-1')).toEqual(['sdb']);
    await sysfs.writeAttribute('1-1', 'authorized', '0');
    await sysfs.syncKernel();
    expect(sysfs.blockDevicesOf('1-1')).toEqual([]);
    await sysfs.writeAttribute('1-1', 'remove', '1');
    await sysfs.syncKernel();
    expect(sysfs.has('1-1')).toBe(false);
    await expect(fs.lstat(path.join(sysfs.root, 'bus/usb/devices/1-1'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses to plug behind a hub that is absent or unauthorised', async () => {
    const sysfs = await fakeSysfs();
    await expect(sysfs.plug(usbStick, '1-1.1')).rejects.toThrow(/not configured/);
  });
});
