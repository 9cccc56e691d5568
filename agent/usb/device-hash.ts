// USBGuard-compatible device hashes (the `hash` and `parent-hash` rule attributes), so rules written
// with `usbguard generate-policy` / `usbguard list-devices` keep matching under Sekimori.
//
// What USBGuard 1.1 computes (src/Library/DevicePrivate.cpp initializeHash/updateHash/finalizeHash,
// src/Library/Hash.cpp, src/Library/UEventDeviceManager.cpp UEventDevice):
//   SHA-256 over, back to back and with no separators or lengths:
//     1. the `product` sysfs attribute as raw bytes minus its last byte (the kernel's newline),
//        '' when the attribute is absent;
//     2. the `idVendor` attribute minus its last byte (4 hex digits as the kernel prints them);
//     3. the `idProduct` attribute, likewise;
//     4. the `serial` attribute, likewise ('' when absent);
//     5. every descriptor of the `descriptors` attribute as parsed (bLength bytes each, back to back:
//        for a well-formed file that is the whole file), except that the device descriptor of a Linux
//        root hub (idVendor 1d6b, idProduct 0001/0002/0003) is hashed with bcdDevice zeroed, because
//        that field carries the running kernel's version and would change the hash on every update.
//   then standard base64 (with padding) of the 32-byte digest.
//   `parent-hash` is the parent USB device's hash; for a root hub, whose parent is the host controller
//   (not a USB device), it is SHA-256/base64 of the controller's sysfs path relative to the sysfs root,
//   e.g. `/devices/pci0000:00/0000:00:14.0`.
// The strings are hashed as the bytes sysfs returned, not as decoded text: a name with invalid UTF-8
// hashes exactly as USBGuard hashes it.
import { createHash } from 'node:crypto';

/** USBGuard reads an attribute with one read(2) of at most 4096 bytes. */
const ATTRIBUTE_READ_LIMIT = 4096;
const LINUX_FOUNDATION = 0x1d6b;
const ROOT_HUB_PRODUCTS: ReadonlySet<number> = new Set([0x0001, 0x0002, 0x0003]);
const DEVICE_DESCRIPTOR_LENGTH = 18;

/** Raw sysfs attribute contents, exactly as read (trailing newline included); null when absent. */
export interface DeviceHashInput {
  readonly product: Buffer | null;
  readonly idVendor: Buffer;
  readonly idProduct: Buffer;
  readonly serial: Buffer | null;
  /** The whole `descriptors` attribute; must have parsed (see parseDescriptors) for the hash to mean anything. */
  readonly descriptors: Buffer;
}

/** USBGuard's readAttribute(strip_last_null=true): first 4096 bytes, minus the last one. */
export function usbguardAttributeBytes(raw: Buffer | null): Buffer {
  if (raw === null || raw.length === 0) return Buffer.alloc(0);
  const read = raw.subarray(0, ATTRIBUTE_READ_LIMIT);
  return read.subarray(0, read.length - 1);
}

/** Whether a device descriptor is the one Linux synthesises for its root hubs. */
export function isLinuxRootHubDescriptor(descriptors: Buffer): boolean {
  if (descriptors.length < DEVICE_DESCRIPTOR_LENGTH || descriptors[0] !== DEVICE_DESCRIPTOR_LENGTH || descriptors[1] !== 0x01) return false;
  return descriptors.readUInt16LE(8) === LINUX_FOUNDATION && ROOT_HUB_PRODUCTS.has(descriptors.readUInt16LE(10));
}

/**
 * The device's USBGuard `hash` (base64 of SHA-256, 44 characters). Pure; never throws.
 * Only call it for descriptors that `parseDescriptors` accepted: USBGuard hashes descriptor by
 * descriptor and refuses (rejects) devices whose descriptors do not parse.
 */
export function usbguardDeviceHash(input: DeviceHashInput): string {
  const hash = createHash('sha256');
  for (const field of [input.product, input.idVendor, input.idProduct, input.serial]) hash.update(usbguardAttributeBytes(field));
  if (isLinuxRootHubDescriptor(input.descriptors)) {
    const device = Buffer.from(input.descriptors.subarray(0, DEVICE_DESCRIPTOR_LENGTH));
    device.writeUInt16LE(0, 12); // bcdDevice = the kernel version, see above
    hash.update(device);
    hash.update(input.descriptors.subarray(DEVICE_DESCRIPTOR_LENGTH));
  } else {
    hash.update(input.descriptors);
  }
  return hash.digest('base64');
}

/** USBGuard's `hashString`: base64 of SHA-256 of the UTF-8 bytes (root hubs' parent-hash). */
export function usbguardStringHash(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64');
}
