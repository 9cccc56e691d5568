import { assertNever } from '../../shared/result.js';
import type { CommandResult, CommandRunner } from '../platform/command-runner.js';
import type { EnforceOutcome, ObservedUsbDevice, UsbEnforcer, UsbTarget } from './usb-device.js';

// macOS device control with what ships in the OS: diskutil. It reaches volumes only; everything
// else needs a system extension (see agent/usb/README-windows-macos.md).

/** Why non-storage devices and default-deny are reported unenforced on macOS. */
export const NOT_ENFORCEABLE = 'not enforceable on macOS without a system extension';

/**
 * A BSD disk name: a whole disk (`disk4`) or a slice of one (`disk4s1`, APFS `disk5s1s1`).
 * Anything else is refused before it reaches diskutil (a name starting with `-` could be a flag).
 */
const BSD_NAME = /^disk\d{1,4}(?:s\d{1,4}){0,2}$/;

/** Mass storage interface class (DESIGN.md §4 device classes). */
const STORAGE_CLASS = '08';

export function isBsdDiskName(name: string): boolean {
  return BSD_NAME.test(name);
}

export interface DarwinUsbEnforcerOptions {
  readonly runner: CommandRunner;
  /** Absolute path, so a changed PATH cannot substitute another program (default `/usr/sbin/diskutil`). */
  readonly diskutil?: string;
}

/**
 * macOS enforcer (DESIGN.md §4). `device.blockDevices` are BSD names (`disk4`, `disk4s1`);
 * slices are the volumes, whole disks are what gets unmounted and ejected.
 * - allow: nothing to do (macOS mounts removable volumes itself).
 * - block / reject: `diskutil unmountDisk force` then `diskutil eject` for each whole disk present.
 * - read-only: each writable volume is unmounted and mounted again with `diskutil mount readOnly`.
 * - a block or reject of anything that is not only storage (phone, network adapter, keyboard
 *   function of a BadUSB stick) cannot be enforced: ok:false with `NOT_ENFORCEABLE`, after doing
 *   the storage part. `prepare()` reports the same: there is no default-deny.
 * Idempotent: the current state is read first (`diskutil info -plist`). Not verified on a real macOS.
 */
export class DarwinUsbEnforcer implements UsbEnforcer {
  readonly platform = 'darwin';
  readonly verifiedOnRealOs = false;
  private readonly diskutil: string;

  constructor(private readonly options: DarwinUsbEnforcerOptions) {
    this.diskutil = options.diskutil ?? '/usr/sbin/diskutil';
  }

  /**
   * macOS mounts a new volume before any user-space agent can decide (DiskArbitration approval
   * needs a running native callback; blocking a device before it works needs a system extension).
   * So this says so instead of pretending: the caller journals it and reports default-deny missing.
   */
  prepare(): Promise<EnforceOutcome> {
    return Promise.resolve({
      ok: false,
      actions: [],
      error: `default-deny is ${NOT_ENFORCEABLE}: volumes are mounted before the agent decides, and only storage is unmounted or ejected afterwards`,
    });
  }

  async apply(device: ObservedUsbDevice, target: UsbTarget): Promise<EnforceOutcome> {
    const refused = device.blockDevices.find((name) => !isBsdDiskName(name));
    if (refused !== undefined) return { ok: false, actions: [], error: `refused: not a BSD disk name: ${JSON.stringify(refused.slice(0, 120))}` };
    const log: string[] = [];
    switch (target) {
      case 'allow':
        return { ok: true, actions: [] };
      case 'read-only':
        return this.readOnly(device, log);
      case 'block':
      case 'reject': {
        const ejected = await this.eject(device, log);
        if (!ejected.ok) return ejected;
        if (hasNonStorageFunction(device)) {
          return { ok: false, actions: log, error: `${target} of a non-storage function (interfaces ${device.identity.interfaces.join(', ') || 'unknown'}) is ${NOT_ENFORCEABLE}` };
        }
        return ejected;
      }
      default:
        return assertNever(target, 'USB target');
    }
  }

  /** Unmounts and ejects every whole disk of the device that is still there. */
  private async eject(device: ObservedUsbDevice, log: string[]): Promise<EnforceOutcome> {
    for (const disk of wholeDisks(device.blockDevices)) {
      const info = await this.info(disk);
      if (info.kind === 'gone') continue;
      if (info.kind === 'error') return { ok: false, actions: log, error: info.error };
      for (const args of [['unmountDisk', 'force', `/dev/${disk}`], ['eject', `/dev/${disk}`]]) {
        const failed = await this.run(args, log);
        if (failed !== null) return { ok: false, actions: log, error: failed };
      }
    }
    return { ok: true, actions: log };
  }

  /** Remounts each writable volume read-only; leaves read-only and unmountable ones alone. */
  private async readOnly(device: ObservedUsbDevice, log: string[]): Promise<EnforceOutcome> {
    for (const volume of volumes(device.blockDevices)) {
      const info = await this.info(volume);
      if (info.kind === 'gone') continue;
      if (info.kind === 'error') return { ok: false, actions: log, error: info.error };
      const mounted = info.mountPoint !== '';
      if (mounted && !info.writable) continue;
      if (!mounted && !info.hasFilesystem) continue;
      const steps = mounted ? [['unmount', 'force', `/dev/${volume}`], ['mount', 'readOnly', `/dev/${volume}`]] : [['mount', 'readOnly', `/dev/${volume}`]];
      for (const args of steps) {
        const failed = await this.run(args, log);
        if (failed !== null) return { ok: false, actions: log, error: failed };
      }
    }
    return { ok: true, actions: log };
  }

  private async info(name: string): Promise<DiskInfo> {
    const result = await this.options.runner.run(this.diskutil, ['info', '-plist', `/dev/${name}`]);
    if (result.error === undefined && result.code === 0) return parseDiskInfo(result.stdout);
    // diskutil says "Could not find disk" once a disk has been ejected or unplugged.
    if (result.error === undefined && /could not find disk/i.test(result.stdout + result.stderr)) return { kind: 'gone' };
    return { kind: 'error', error: `diskutil info -plist /dev/${name} failed: ${describe(result)}` };
  }

  /** Runs one diskutil command; null on success, else the error. */
  private async run(args: readonly string[], log: string[]): Promise<string | null> {
    const action = `diskutil ${args.join(' ')}`;
    const result = await this.options.runner.run(this.diskutil, args);
    if (result.error === undefined && result.code === 0) {
      log.push(action);
      return null;
    }
    return `${action} failed: ${describe(result)}`;
  }
}

type DiskInfo =
  | { readonly kind: 'present'; readonly mountPoint: string; readonly writable: boolean; readonly hasFilesystem: boolean }
  | { readonly kind: 'gone' }
  | { readonly kind: 'error'; readonly error: string };

/** Reads the three keys needed from `diskutil info -plist` (flat dict of scalars). */
export function parseDiskInfo(plist: string): DiskInfo {
  const mountPoint = /<key>MountPoint<\/key>\s*<string>([^<]*)<\/string>/.exec(plist)?.[1] ?? '';
  const writable = /<key>WritableVolume<\/key>\s*<true\/>/.test(plist);
  const filesystem = /<key>FilesystemType<\/key>\s*<string>([^<]+)<\/string>/.exec(plist)?.[1] ?? '';
  return { kind: 'present', mountPoint, writable, hasFilesystem: filesystem !== '' };
}

/** `disk4s1` → `disk4`, deduplicated, in first-seen order. */
function wholeDisks(names: readonly string[]): string[] {
  return [...new Set(names.map((name) => /^disk\d+/.exec(name)?.[0] ?? name))];
}

/** The slices; a whole disk counts as a volume only when none of its slices is listed (unpartitioned media). */
function volumes(names: readonly string[]): string[] {
  const slices = names.filter((name) => /s\d+$/.test(name));
  const sliced = new Set(wholeDisks(slices));
  return [...new Set([...slices, ...names.filter((name) => !/s\d+$/.test(name) && !sliced.has(name))])];
}

/** Anything other than mass storage, or no interface information at all (cannot prove it is only storage). */
function hasNonStorageFunction(device: ObservedUsbDevice): boolean {
  const classes = device.identity.interfaces.map((code) => code.slice(0, 2));
  return classes.length === 0 || classes.some((code) => code !== STORAGE_CLASS);
}

function describe(result: CommandResult): string {
  const detail = result.error ?? (result.stderr.trim() || result.stdout.trim() || 'no output');
  return `exit ${result.code ?? 'none'}: ${detail.slice(0, 500)}`;
}
