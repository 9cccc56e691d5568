// Reads the USB devices present from Linux sysfs (`<root>/bus/usb/devices`), including devices that
// default-deny keeps unauthorised: those are enumerated (strings, `descriptors`) but not configured,
// so they have no interface directories and their interface classes come from the raw descriptors.
// Everything read here is attacker-controlled (a device names itself), so text is length-capped and
// decoded with replacement, and a device that fails to parse is skipped and reported, never guessed.
import fs from 'node:fs';
import path from 'node:path';
import type { UsbDeviceIdentity } from '../../shared/usb-rules/index.js';
import { parseDescriptors, type ParsedDescriptors } from './descriptors.js';
import { usbguardDeviceHash, usbguardStringHash } from './device-hash.js';
import type { ObservedUsbDevice, UsbDeviceSource } from './usb-device.js';

/** `1-1`, `1-1.2`, `3-2.4.1`: a USB device (not an interface `1-1:1.0`, not a root hub `usb1`). */
export const LINUX_DEVICE_NAME = /^[1-9]\d{0,2}-[1-9]\d{0,2}(?:\.[1-9]\d{0,2}){0,6}$/;
/** `usb1`: a root hub (one per bus). */
export const ROOT_HUB_NAME = /^usb[1-9]\d{0,2}$/;
const HEX4 = /^[0-9a-f]{4}$/;
/** USBGuard reads one page per attribute; a USB string descriptor holds at most 126 UTF-16 units. */
const TEXT_READ_LIMIT = 4096;
/** UsbDeviceIdentity's bound for strings. */
const TEXT_MAX_CHARS = 1024;
/** sysfs never serves more than a page for `descriptors` on old kernels; 64 KiB is generous. */
const DESCRIPTORS_READ_LIMIT = 64 * 1024;
/** Bounds the walk for block devices (hosts × targets × LUNs × disks). */
const BLOCK_WALK_LIMIT = 64;

/** Why a present device was left out of `list()`; the caller journals it and keeps it blocked. */
export interface SkippedDevice {
  readonly key: string;
  readonly reason: string;
}

export interface LinuxUsbDeviceSourceOptions {
  /** sysfs mount point; tests pass a FakeSysfs root. */
  readonly sysfsRoot?: string;
  /** Told about every device that is present but unreadable (bad descriptors, EACCES, …). */
  readonly onSkip?: (skipped: SkippedDevice) => void;
}

/** Raw attribute bytes of one USB device, as sysfs returned them. */
interface RawDevice {
  readonly realDir: string;
  readonly idVendor: Buffer;
  readonly idProduct: Buffer;
  readonly product: Buffer | null;
  readonly manufacturer: Buffer | null;
  readonly serial: Buffer | null;
  readonly descriptors: Buffer;
  readonly authorized: Buffer | null;
  readonly connectType: Buffer | null;
}

class DeviceGone extends Error {}

const isMissing = (error: unknown): boolean => {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENODEV' || code === 'ENOTDIR';
};

/**
 * Reads at most `limit` bytes of a file (sysfs attributes report size 4096 whatever they hold).
 * Synchronous on purpose: sysfs attributes are served from kernel memory, never from a disk, so a
 * read cannot stall, while async reads would queue behind libuv's 4 shared threads and turn a
 * 50-device pass from ~5 ms into ~100 ms.
 */
function readBytes(file: string, limit: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(limit); // only the filled prefix is ever returned
    let filled = 0;
    // Bounded: each read either fills more of the buffer or returns 0 (EOF).
    while (filled < limit) {
      const bytesRead = fs.readSync(fd, buffer, filled, limit - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    fs.closeSync(fd);
  }
}

function optional(file: string, limit = TEXT_READ_LIMIT): Buffer | null {
  try {
    return readBytes(file, limit);
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
}

function required(file: string, limit = TEXT_READ_LIMIT): Buffer {
  const bytes = optional(file, limit);
  if (bytes === null) throw new DeviceGone(file);
  return bytes;
}

function listDir(dir: string, pattern: RegExp): string[] {
  try {
    return fs.readdirSync(dir).filter((entry) => pattern.test(entry)).slice(0, BLOCK_WALK_LIMIT);
  } catch {
    return [];
  }
}

/** sysfs text → string: one trailing newline stripped, UTF-8 with U+FFFD for bad bytes, capped. */
export function sysfsText(raw: Buffer | null): string {
  if (raw === null) return '';
  const body = raw[raw.length - 1] === 0x0a ? raw.subarray(0, raw.length - 1) : raw;
  const text = new TextDecoder('utf-8', { fatal: false }).decode(body);
  return text.length > TEXT_MAX_CHARS ? text.slice(0, TEXT_MAX_CHARS) : text;
}

/** Parent of a device name: `1-1.2` → `1-1`, `1-1` → `usb1`. */
export function parentDeviceName(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot >= 0) return name.slice(0, dot);
  return `usb${name.slice(0, name.indexOf('-'))}`;
}

/** Orders `1-2` before `1-10`, parents before children: the order people expect. */
function compareNames(a: string, b: string): number {
  const parts = (name: string): number[] => name.split(/[-.]/).map(Number);
  const left = parts(a);
  const right = parts(b);
  for (let index = 0; index < Math.max(left.length, right.length); index += 1) {
    const difference = (left[index] ?? -1) - (right[index] ?? -1);
    if (difference !== 0) return difference;
  }
  return 0;
}

/**
 * `UsbDeviceSource` over Linux sysfs. `list()` reads 50 devices in a few milliseconds. A device that
 * disappears while being read is simply absent; one that is present but unreadable is skipped and
 * reported through `onSkip` (the caller should keep it blocked or reject it: USBGuard rejects
 * devices it cannot parse).
 */
export class LinuxUsbDeviceSource implements UsbDeviceSource {
  private readonly root: string;
  private readonly onSkip: (skipped: SkippedDevice) => void;

  constructor(options: LinuxUsbDeviceSourceOptions | string = {}) {
    const resolved = typeof options === 'string' ? { sysfsRoot: options } : options;
    this.root = resolved.sysfsRoot ?? '/sys';
    this.onSkip = resolved.onSkip ?? (() => undefined);
  }

  private get busDir(): string {
    return path.join(this.root, 'bus', 'usb', 'devices');
  }

  list(): Promise<ObservedUsbDevice[]> {
    let names: string[];
    try {
      names = fs.readdirSync(this.busDir);
    } catch (error) {
      if (isMissing(error)) return Promise.resolve([]); // no USB bus at all (containers, some VMs)
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const hashes = new Map<string, string | null>();
    const devices = names
      .filter((name) => LINUX_DEVICE_NAME.test(name))
      .sort(compareNames)
      .map((key) => this.readOrSkip(key, hashes))
      .filter((device): device is ObservedUsbDevice => device !== null);
    return Promise.resolve(devices);
  }

  read(key: string): Promise<ObservedUsbDevice | null> {
    if (!LINUX_DEVICE_NAME.test(key)) return Promise.resolve(null); // keys come from events: never a path
    return Promise.resolve(this.readOrSkip(key, new Map()));
  }

  private readOrSkip(key: string, hashes: Map<string, string | null>): ObservedUsbDevice | null {
    try {
      return this.readDevice(key, hashes);
    } catch (error) {
      if (error instanceof DeviceGone || isMissing(error)) return null;
      this.onSkip({ key, reason: error instanceof Error ? error.message : String(error) });
      return null;
    }
  }

  private readRaw(name: string): RawDevice {
    const dir = path.join(this.busDir, name);
    let realDir: string;
    try {
      realDir = fs.realpathSync(dir);
    } catch (error) {
      throw isMissing(error) ? new DeviceGone(dir) : error;
    }
    return {
      realDir,
      idVendor: required(path.join(realDir, 'idVendor')),
      idProduct: required(path.join(realDir, 'idProduct')),
      product: optional(path.join(realDir, 'product')),
      manufacturer: optional(path.join(realDir, 'manufacturer')),
      serial: optional(path.join(realDir, 'serial')),
      descriptors: required(path.join(realDir, 'descriptors'), DESCRIPTORS_READ_LIMIT),
      authorized: optional(path.join(realDir, 'authorized')),
      connectType: optional(path.join(realDir, 'port', 'connect_type')),
    };
  }

  /** The hash of a device (memoised per pass: siblings share a parent); null when unreadable. */
  private hashOf(name: string, hashes: Map<string, string | null>): string | null {
    const known = hashes.get(name);
    if (known !== undefined) return known;
    let hash: string | null = null;
    try {
      const raw = this.readRaw(name);
      hash = parseDescriptors(raw.descriptors).ok ? usbguardDeviceHash(raw) : null;
    } catch (error) {
      if (!(error instanceof DeviceGone || isMissing(error))) throw error;
    }
    hashes.set(name, hash);
    return hash;
  }

  private readDevice(key: string, hashes: Map<string, string | null>): ObservedUsbDevice {
    const raw = this.readRaw(key);
    const parsed = parseDescriptors(raw.descriptors);
    if (!parsed.ok) throw new Error(`descriptors: ${parsed.error.message} (${parsed.error.code})`);
    const vendorId = sysfsText(raw.idVendor);
    const productId = sysfsText(raw.idProduct);
    if (!HEX4.test(vendorId) || !HEX4.test(productId)) throw new Error('idVendor/idProduct are not 4 hex digits');
    const hash = usbguardDeviceHash(raw);
    hashes.set(key, hash);
    const parent = parentDeviceName(key);
    const parentHash = this.hashOf(parent, hashes);
    // USBGuard cannot place a device whose parent it could not read either; never invent a hash.
    if (parentHash === null) throw new Error(`parent ${parent} is unreadable`);
    const identity: UsbDeviceIdentity = {
      vendorId,
      productId,
      serial: sysfsText(raw.serial),
      name: sysfsText(raw.product),
      hash,
      parentHash,
      viaPort: key,
      connectType: sysfsText(raw.connectType),
      interfaces: parsed.value.interfaces.map((entry) => entry.code),
      interfaceNames: interfaceNames(key, raw.realDir, parsed.value),
    };
    const authorized = sysfsText(raw.authorized);
    return {
      key,
      identity,
      manufacturer: sysfsText(raw.manufacturer),
      isHub: parsed.value.deviceClass === 0x09 || parsed.value.interfaces.some((entry) => entry.code.startsWith('09:')),
      authorized: authorized === '1' ? true : authorized === '0' ? false : null,
      blockDevices: blockDevices(raw.realDir),
    };
  }
}

/**
 * The iInterface string of each descriptor entry, read from the interface directories of the
 * active configuration's current alternate settings. An unauthorised device has no interface
 * directories, so every name is '' until it is authorised (see agent/usb/README.md: MTP).
 */
function interfaceNames(key: string, realDir: string, parsed: ParsedDescriptors): string[] {
  const names = new Map<string, string>();
  const prefix = `${key}:`;
  for (const entry of listDir(realDir, /:\d+\.\d+$/)) {
    if (!entry.startsWith(prefix)) continue;
    const [configuration = '', number = ''] = entry.slice(prefix.length).split('.');
    const dir = path.join(realDir, entry);
    const alternate = optional(path.join(dir, 'bAlternateSetting'));
    const alternateSetting = alternate === null ? 0 : Number.parseInt(sysfsText(alternate).trim(), 10) || 0;
    names.set(`${Number(configuration)}.${Number(number)}.${alternateSetting}`, sysfsText(optional(path.join(dir, 'interface'))));
  }
  return parsed.interfaces.map((entry) => names.get(`${entry.configurationValue}.${entry.interfaceNumber}.${entry.alternateSetting}`) ?? '');
}

/** `sdX` names under `<interface>/hostN/targetN:C:T/<h:c:t:l>/block/` (the kernel SCSI layout). */
function blockDevices(realDir: string): string[] {
  const found: string[] = [];
  for (const entry of listDir(realDir, /:\d+\.\d+$/)) {
    for (const host of listDir(path.join(realDir, entry), /^host\d+$/)) {
      for (const target of listDir(path.join(realDir, entry, host), /^target\d+:\d+:\d+$/)) {
        for (const lun of listDir(path.join(realDir, entry, host, target), /^\d+:\d+:\d+:\d+$/)) {
          found.push(...listDir(path.join(realDir, entry, host, target, lun, 'block'), /^sd[a-z]{1,3}$/));
        }
      }
    }
  }
  return [...new Set(found)].sort();
}

/** A root hub's parent-hash as USBGuard computes it: the hash of the host controller's sysfs path. */
export function rootHubParentHash(sysfsRoot: string, rootHubName: string): string {
  const real = fs.realpathSync(path.join(sysfsRoot, 'bus', 'usb', 'devices', rootHubName));
  const rootReal = fs.realpathSync(sysfsRoot);
  return usbguardStringHash(`/${path.relative(rootReal, path.dirname(real)).split(path.sep).join('/')}`);
}
