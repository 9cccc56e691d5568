import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_DESCRIPTORS_BYTES, parseDescriptors } from '../../../../agent/usb/descriptors.js';
import { buildDescriptors } from '../../../fixtures/usb-devices/builder.js';
import { ALL_FIXTURES, bluetoothDongle, iphone, rootHub, usbStick } from '../../../fixtures/usb-devices/devices.js';

const parsed = (bytes: Buffer) => {
  const result = parseDescriptors(bytes);
  if (!result.ok) throw new Error(`${result.error.code}: ${result.error.message}`);
  return result.value;
};

const errorCode = (bytes: Buffer): string => {
  const result = parseDescriptors(bytes);
  if (result.ok) throw new Error('expected a parse error');
  return result.error.code;
};

describe('parseDescriptors', () => {
  it.each(ALL_FIXTURES.map((fixture) => [fixture.slug, fixture] as const))('reads the identity and every interface of %s', (_slug, fixture) => {
    const value = parsed(fixture.descriptors);
    expect(value.vendorId).toBe(fixture.expected.vendorId);
    expect(value.productId).toBe(fixture.expected.productId);
    expect(value.interfaces.map((entry) => entry.code)).toEqual(fixture.expected.interfaces);
    expect(value.numConfigurations).toBe(fixture.spec.configurations.length);
    expect(value.configurationCount).toBe(fixture.spec.configurations.length);
    expect(value.warnings).toEqual([]);
  });

  it('reads the device descriptor fields little-endian', () => {
    const value = parsed(usbStick.descriptors);
    expect(value).toMatchObject({ bcdUsb: 0x0200, deviceClass: 0, deviceSubClass: 0, deviceProtocol: 0, bcdDevice: 0x0100, numConfigurations: 1 });
    const hub = parsed(rootHub(true).descriptors);
    expect(hub).toMatchObject({ bcdUsb: 0x0300, deviceClass: 9, deviceProtocol: 3, vendorId: '1d6b', productId: '0003' });
  });

  it('lists every alternate setting of every configuration, in descriptor order, with duplicates', () => {
    const value = parsed(iphone.descriptors);
    expect(value.interfaces.filter((entry) => entry.code === '06:01:01').map((entry) => entry.configurationValue)).toEqual([1, 3, 4]);
    const dongle = parsed(bluetoothDongle.descriptors);
    expect(dongle.interfaces.filter((entry) => entry.interfaceNumber === 1).map((entry) => entry.alternateSetting)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('keeps the string index of each interface for name lookup', () => {
    const [mtp] = parsed(buildDescriptors({ vendorId: 1, productId: 2, configurations: [{ value: 1, interfaces: [{ number: 0, code: 'ff:ff:00', name: 'MTP' }] }] }).bytes).interfaces;
    expect(mtp).toEqual({ code: 'ff:ff:00', configurationValue: 1, interfaceNumber: 0, alternateSetting: 0, stringIndex: 4 });
  });

  it('refuses a descriptor whose bLength is 0 instead of looping forever', () => {
    const bytes = Buffer.concat([usbStick.descriptors.subarray(0, 18), Buffer.from([0, 2, 0, 0])]);
    expect(errorCode(bytes)).toBe('bad-length');
    expect(errorCode(Buffer.concat([usbStick.descriptors, Buffer.from([1, 0x24])]))).toBe('bad-length');
  });

  it('refuses truncated descriptors and a dangling header byte', () => {
    expect(errorCode(usbStick.descriptors.subarray(0, usbStick.descriptors.length - 3))).toBe('truncated');
    expect(errorCode(Buffer.concat([usbStick.descriptors, Buffer.from([9])]))).toBe('truncated');
    expect(errorCode(usbStick.descriptors.subarray(0, 17))).toBe('too-short');
    expect(errorCode(Buffer.alloc(0))).toBe('too-short');
  });

  it('refuses descriptors of the wrong size for their type, as USBGuard does', () => {
    const stick = Buffer.from(usbStick.descriptors);
    stick[18 + 9] = 10; // interface descriptor claims 10 bytes
    expect(errorCode(stick)).toBe('bad-length');
    const device = Buffer.from(usbStick.descriptors);
    device[0] = 17;
    expect(errorCode(device)).toBe('bad-length');
  });

  it('refuses descriptors out of order: a second device, an interface before any configuration, an endpoint outside an interface', () => {
    const device = usbStick.descriptors.subarray(0, 18);
    const configuration = usbStick.descriptors.subarray(18, 27);
    const anInterface = usbStick.descriptors.subarray(27, 36);
    const endpoint = usbStick.descriptors.subarray(36, 43);
    expect(errorCode(Buffer.concat([device, device]))).toBe('duplicate-device');
    expect(errorCode(Buffer.concat([device, anInterface]))).toBe('out-of-order');
    expect(errorCode(Buffer.concat([device, configuration, endpoint]))).toBe('out-of-order');
    expect(errorCode(Buffer.concat([configuration, device]))).toBe('out-of-order');
    expect(errorCode(Buffer.concat([Buffer.from([18, 0x0f, ...Buffer.alloc(16)])]))).toBe('missing-device');
  });

  it('does not trust wTotalLength or bNumConfigurations, and reports their lies as warnings', () => {
    const lying = Buffer.from(usbStick.descriptors);
    lying.writeUInt16LE(0xffff, 18 + 2);
    lying[17] = 5;
    const value = parsed(lying);
    expect(value.interfaces.map((entry) => entry.code)).toEqual(['08:06:50']);
    expect(value.warnings).toEqual(['configuration 1: wTotalLength says 65535 bytes, 32 present', 'bNumConfigurations says 5, 1 present']);
  });

  it('skips class-specific and unknown descriptors by their bLength', () => {
    const withExtra = Buffer.concat([usbStick.descriptors, Buffer.from([3, 0x77, 0xff]), Buffer.from([2, 0x30])]);
    expect(parsed(withExtra).interfaces.map((entry) => entry.code)).toEqual(['08:06:50']);
  });

  it('refuses absurd sizes and more interfaces than an identity can hold', () => {
    expect(errorCode(Buffer.alloc(MAX_DESCRIPTORS_BYTES + 1, 2))).toBe('too-large');
    const many = buildDescriptors({ vendorId: 1, productId: 2, configurations: [{ value: 1, interfaces: Array.from({ length: 257 }, (_, n) => ({ number: n % 8, alternate: Math.floor(n / 8), code: 'ff:00:00' })) }] });
    expect(errorCode(many.bytes)).toBe('too-many-interfaces');
  });

  it('never throws and finishes quickly on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        const started = performance.now();
        const result = parseDescriptors(Buffer.from(bytes));
        expect(typeof result.ok).toBe('boolean');
        expect(performance.now() - started).toBeLessThan(50);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on mutations of real descriptors', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ALL_FIXTURES), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), (fixture, edits) => {
        const bytes = Buffer.from(fixture.descriptors);
        for (const [position, value] of edits) bytes[position % bytes.length] = value;
        const result = parseDescriptors(bytes);
        if (result.ok) for (const entry of result.value.interfaces) expect(entry.code).toMatch(/^[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
      }),
      { numRuns: 2000 },
    );
  });
});
