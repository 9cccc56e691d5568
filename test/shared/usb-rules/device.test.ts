import { describe, expect, it } from 'vitest';
import { UsbDeviceIdentitySchema } from '../../../shared/usb-rules/device.js';
import { device } from './support.js';

describe('UsbDeviceIdentitySchema', () => {
  it('accepts a device identity as the matcher expects it', () => {
    expect(UsbDeviceIdentitySchema.safeParse(device()).success).toBe(true);
  });

  it('accepts interface names given index for index', () => {
    const android = device({ interfaces: ['ff:ff:00', 'ff:42:01'], interfaceNames: ['MTP', 'ADB Interface'] });
    expect(UsbDeviceIdentitySchema.safeParse(android).success).toBe(true);
  });

  it('accepts a device without interfaces and with empty strings', () => {
    expect(UsbDeviceIdentitySchema.safeParse(device({ interfaces: [], serial: '', name: '', connectType: '' })).success).toBe(true);
  });

  it.each([
    ['an upper-case vendor id', { vendorId: '0A5C' }],
    ['a short product id', { productId: '654' }],
    ['an interface without a protocol', { interfaces: ['08:06'] }],
    ['a wildcard interface', { interfaces: ['08:*:*'] }],
    ['an upper-case interface', { interfaces: ['0E:01:00'] }],
    ['more than 256 interfaces', { interfaces: Array.from({ length: 257 }, () => '08:06:50') }],
    ['a 1025-character name', { name: 'n'.repeat(1025) }],
    ['interface names that do not line up with interfaces', { interfaceNames: ['MTP', 'extra'] }],
  ])('refuses %s', (_what, overrides) => {
    expect(UsbDeviceIdentitySchema.safeParse(device(overrides)).success).toBe(false);
  });

  it('refuses unknown fields, like every boundary schema', () => {
    expect(UsbDeviceIdentitySchema.safeParse({ ...device(), vid: '0930' }).success).toBe(false);
  });
});
