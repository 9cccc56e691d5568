import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isLinuxRootHubDescriptor, usbguardAttributeBytes, usbguardDeviceHash, usbguardStringHash } from '../../../../agent/usb/device-hash.js';
import { hostileStrings, rootHub, usbStick, type UsbFixture } from '../../../fixtures/usb-devices/devices.js';

const line = (value: Buffer | string | null): Buffer | null => (value === null ? null : Buffer.concat([Buffer.from(value), Buffer.from('\n')]));

/** The sysfs attributes of a fixture as the kernel serves them (newline-terminated). */
const inputOf = (fixture: UsbFixture) => ({
  product: line(fixture.product),
  idVendor: line(fixture.expected.vendorId)!,
  idProduct: line(fixture.expected.productId)!,
  serial: line(fixture.serial),
  descriptors: fixture.descriptors,
});

describe('USBGuard-compatible device hash', () => {
  it('is base64 SHA-256 of name, vendor id, product id, serial and the descriptor bytes, back to back', () => {
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.from(' Cruzer Blade'), Buffer.from('0781'), Buffer.from('5567'), Buffer.from('4C530001230906117543'), usbStick.descriptors]))
      .digest('base64');
    expect(usbguardDeviceHash(inputOf(usbStick))).toBe(expected);
  });

  // Pinned values printed by libusbguard 1.1.2 (UEventDeviceManager reading a FakeSysfs tree, see
  // usbguard-differential.test.ts): they keep the algorithm honest where g++ or libusbguard is absent.
  it('matches the hash libusbguard 1.1.2 computed for the SanDisk stick fixture', () => {
    expect(usbguardDeviceHash(inputOf(usbStick))).toBe('xOZXp86NY4XA9Vi/x2u1aRHVW7y1gMtMniq5HUF5Pro=');
  });

  it('hashes strings as the raw bytes sysfs returned, so invalid UTF-8 hashes as in USBGuard', () => {
    expect(usbguardDeviceHash(inputOf(hostileStrings))).toBe('Kw42P4d6yWN/PqhaD56wA4EIMMyM8NykB/twgtUdD34=');
  });

  it('treats an absent serial and an empty one alike, and strips exactly the last byte of each attribute', () => {
    const withoutSerial = { ...inputOf(usbStick), serial: null };
    expect(usbguardDeviceHash(withoutSerial)).toBe(usbguardDeviceHash({ ...withoutSerial, serial: Buffer.from('\n') }));
    expect(usbguardAttributeBytes(Buffer.from('abc\n')).toString()).toBe('abc');
    expect(usbguardAttributeBytes(Buffer.from('abc')).toString()).toBe('ab'); // USBGuard drops the last byte blindly
    expect(usbguardAttributeBytes(Buffer.alloc(5000, 0x41))).toHaveLength(4095);
  });

  it('ignores a root hub bcdDevice (the kernel version) but not an ordinary device one', () => {
    const oldKernel = rootHub(false, '0000:00:14.0', 0x0510);
    const newKernel = rootHub(false, '0000:00:14.0', 0x0601);
    expect(isLinuxRootHubDescriptor(oldKernel.descriptors)).toBe(true);
    expect(usbguardDeviceHash(inputOf(oldKernel))).toBe(usbguardDeviceHash(inputOf(newKernel)));
    const patched = Buffer.from(usbStick.descriptors);
    patched.writeUInt16LE(0x0200, 12);
    expect(isLinuxRootHubDescriptor(patched)).toBe(false);
    expect(usbguardDeviceHash({ ...inputOf(usbStick), descriptors: patched })).not.toBe(usbguardDeviceHash(inputOf(usbStick)));
  });

  it('hashes a host controller path the way USBGuard hashes a root hub parent', () => {
    expect(usbguardStringHash('/devices/pci0000:00/0000:00:14.0')).toBe(createHash('sha256').update('/devices/pci0000:00/0000:00:14.0').digest('base64'));
  });
});
