// Parser for the raw USB descriptors Linux exposes in sysfs (`/sys/bus/usb/devices/X/descriptors`):
// the 18-byte device descriptor, then every configuration's full descriptor set as the device sent it
// (configuration → interface → endpoint / class-specific …). Under default-deny an unauthorised device
// has no interface directories, so this is the only place its interface classes can be read.
//
// The semantics follow USBGuard's USBDescriptorParser + DevicePrivate loaders (libusbguard 1.1), so that
// `interfaces` is exactly the list USBGuard matches `with-interface` against and a device USBGuard would
// refuse to parse (and therefore reject) is refused here too:
// - descriptors are read back to back by bLength; bLength < 2 or past the end of the data is an error;
// - device descriptors must be 18 bytes, configuration and interface descriptors 9, endpoints 7 or 9
//   (audio); any other type (string, IAD, class-specific, BOS …) is skipped by its bLength;
// - a second device descriptor, a configuration before the device descriptor, an interface before a
//   configuration or an endpoint before an interface (of the current configuration) is an error;
// - every interface descriptor counts, alternate settings and duplicates included, in order;
// - wTotalLength and bNumConfigurations are NOT trusted (USBGuard ignores them too): lies are reported
//   as warnings, never used to index the buffer.
// Pure: Buffer in, result out; never throws; every loop advances by at least 2 bytes.
import type { Result } from '../../shared/result.js';

const DEVICE = 0x01;
const CONFIGURATION = 0x02;
const INTERFACE = 0x04;
const ENDPOINT = 0x05;

const DEVICE_LENGTH = 18;
const CONFIGURATION_LENGTH = 9;
const INTERFACE_LENGTH = 9;
/** Standard endpoint (7) and the USB Audio 1.0 endpoint with bRefresh/bSynchAddress (9). */
const ENDPOINT_LENGTHS: ReadonlySet<number> = new Set([7, 9]);

/** Larger than any real device's descriptors (a few KiB); bounds work on hostile input. */
export const MAX_DESCRIPTORS_BYTES = 64 * 1024;
/** Same bound as UsbDeviceIdentity.interfaces: more cannot be journaled, so it is refused. */
export const MAX_INTERFACES = 256;

/** One interface descriptor (one alternate setting of one interface of one configuration). */
export interface InterfaceDescriptorInfo {
  /** `cc:ss:pp`, lower-case hex: class, subclass, protocol. */
  readonly code: string;
  /** bConfigurationValue of the configuration it belongs to. */
  readonly configurationValue: number;
  readonly interfaceNumber: number;
  readonly alternateSetting: number;
  /** iInterface: index of its string descriptor, 0 when none. */
  readonly stringIndex: number;
}

/** What the descriptors say about a device. */
export interface ParsedDescriptors {
  /** bcdUSB, e.g. 0x0200 for USB 2.0. */
  readonly bcdUsb: number;
  readonly deviceClass: number;
  readonly deviceSubClass: number;
  readonly deviceProtocol: number;
  /** idVendor / idProduct from the device descriptor (little-endian), 4 lower-case hex digits. */
  readonly vendorId: string;
  readonly productId: string;
  readonly bcdDevice: number;
  /** bNumConfigurations as the device claims it. */
  readonly numConfigurations: number;
  /** Configuration descriptors actually present. */
  readonly configurationCount: number;
  /** Every interface descriptor of every configuration, alternate settings included, in order. */
  readonly interfaces: readonly InterfaceDescriptorInfo[];
  /** Inconsistencies that USBGuard tolerates too (wTotalLength, bNumConfigurations). */
  readonly warnings: readonly string[];
}

export type DescriptorErrorCode =
  | 'too-large'
  | 'too-short'
  | 'bad-length'
  | 'truncated'
  | 'missing-device'
  | 'duplicate-device'
  | 'out-of-order'
  | 'too-many-interfaces';

export type DescriptorParseResult = Result<ParsedDescriptors, DescriptorErrorCode>;

const hex2 = (value: number): string => value.toString(16).padStart(2, '0');
const hex4 = (value: number): string => value.toString(16).padStart(4, '0');

function fail(code: DescriptorErrorCode, message: string): DescriptorParseResult {
  return { ok: false, error: { code, message } };
}

/** Mutable state while walking; kept apart so the walk itself stays short. */
interface WalkState {
  device: Omit<ParsedDescriptors, 'configurationCount' | 'interfaces' | 'warnings'> | null;
  configurationCount: number;
  interfaces: InterfaceDescriptorInfo[];
  warnings: string[];
  /** bConfigurationValue of the current configuration, null before the first. */
  configurationValue: number | null;
  /** Whether the current configuration has had an interface yet (endpoints need one). */
  inInterface: boolean;
  /** Where the current configuration started and the length it claimed, for the wTotalLength check. */
  configurationStart: number;
  configurationTotalLength: number;
}

function readDevice(data: Buffer, offset: number): NonNullable<WalkState['device']> {
  return {
    bcdUsb: data.readUInt16LE(offset + 2),
    deviceClass: data[offset + 4] ?? 0,
    deviceSubClass: data[offset + 5] ?? 0,
    deviceProtocol: data[offset + 6] ?? 0,
    vendorId: hex4(data.readUInt16LE(offset + 8)),
    productId: hex4(data.readUInt16LE(offset + 10)),
    bcdDevice: data.readUInt16LE(offset + 12),
    numConfigurations: data[offset + 17] ?? 0,
  };
}

function closeConfiguration(state: WalkState, end: number): void {
  if (state.configurationValue === null) return;
  const actual = end - state.configurationStart;
  if (actual !== state.configurationTotalLength) {
    state.warnings.push(
      `configuration ${state.configurationValue}: wTotalLength says ${state.configurationTotalLength} bytes, ${actual} present`,
    );
  }
}

/** Handles one descriptor; returns an error result or null to go on. */
function visit(state: WalkState, data: Buffer, offset: number, length: number, type: number): DescriptorParseResult | null {
  switch (type) {
    case DEVICE:
      if (length !== DEVICE_LENGTH) return fail('bad-length', `device descriptor at ${offset} has bLength ${length}, expected 18`);
      if (state.device !== null) return fail('duplicate-device', `second device descriptor at ${offset}`);
      state.device = readDevice(data, offset);
      return null;
    case CONFIGURATION:
      if (length !== CONFIGURATION_LENGTH) return fail('bad-length', `configuration descriptor at ${offset} has bLength ${length}, expected 9`);
      if (state.device === null) return fail('out-of-order', `configuration descriptor at ${offset} before the device descriptor`);
      closeConfiguration(state, offset);
      state.configurationCount += 1;
      state.configurationValue = data[offset + 5] ?? 0;
      state.configurationStart = offset;
      state.configurationTotalLength = data.readUInt16LE(offset + 2);
      state.inInterface = false;
      return null;
    case INTERFACE:
      if (length !== INTERFACE_LENGTH) return fail('bad-length', `interface descriptor at ${offset} has bLength ${length}, expected 9`);
      if (state.configurationValue === null) return fail('out-of-order', `interface descriptor at ${offset} before any configuration descriptor`);
      if (state.interfaces.length >= MAX_INTERFACES) return fail('too-many-interfaces', `more than ${MAX_INTERFACES} interface descriptors`);
      state.inInterface = true;
      state.interfaces.push({
        code: `${hex2(data[offset + 5] ?? 0)}:${hex2(data[offset + 6] ?? 0)}:${hex2(data[offset + 7] ?? 0)}`,
        configurationValue: state.configurationValue,
        interfaceNumber: data[offset + 2] ?? 0,
        alternateSetting: data[offset + 3] ?? 0,
        stringIndex: data[offset + 8] ?? 0,
      });
      return null;
    case ENDPOINT:
      if (!ENDPOINT_LENGTHS.has(length)) return fail('bad-length', `endpoint descriptor at ${offset} has bLength ${length}, expected 7 or 9`);
      if (!state.inInterface) return fail('out-of-order', `endpoint descriptor at ${offset} outside an interface`);
      return null;
    default:
      // String, interface association, class-specific (HID, CDC functional, UVC …), BOS: skipped by
      // bLength, exactly like USBGuard's USBParseUnknownDescriptor.
      return null;
  }
}

/**
 * Parses the sysfs `descriptors` attribute. Never throws: malformed input gives
 * `{ ok: false, error: { code, message } }` with the byte offset in the message. A device whose
 * descriptors fail here is one USBGuard would also fail on (and reject); the caller must fail closed.
 */
export function parseDescriptors(data: Buffer): DescriptorParseResult {
  if (data.length > MAX_DESCRIPTORS_BYTES) return fail('too-large', `${data.length} bytes of descriptors (limit ${MAX_DESCRIPTORS_BYTES})`);
  if (data.length < DEVICE_LENGTH) return fail('too-short', `${data.length} bytes of descriptors, less than one device descriptor`);
  const state: WalkState = {
    device: null,
    configurationCount: 0,
    interfaces: [],
    warnings: [],
    configurationValue: null,
    inInterface: false,
    configurationStart: 0,
    configurationTotalLength: 0,
  };
  let offset = 0;
  // Each pass consumes bLength >= 2 bytes, so at most data.length / 2 passes.
  while (offset < data.length) {
    if (offset + 2 > data.length) return fail('truncated', `partial descriptor header at ${offset}`);
    const length = data[offset] ?? 0;
    const type = data[offset + 1] ?? 0;
    if (length < 2) return fail('bad-length', `descriptor at ${offset} has bLength ${length} (less than its own header)`);
    if (offset + length > data.length) return fail('truncated', `descriptor at ${offset} claims ${length} bytes, ${data.length - offset} left`);
    const problem = visit(state, data, offset, length, type);
    if (problem !== null) return problem;
    offset += length;
  }
  closeConfiguration(state, offset);
  if (state.device === null) return fail('missing-device', 'no device descriptor');
  if (state.device.numConfigurations !== state.configurationCount) {
    state.warnings.push(`bNumConfigurations says ${state.device.numConfigurations}, ${state.configurationCount} present`);
  }
  return {
    ok: true,
    value: { ...state.device, configurationCount: state.configurationCount, interfaces: state.interfaces, warnings: state.warnings },
  };
}
