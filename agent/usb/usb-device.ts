import type { UsbDeviceIdentity } from '../../shared/usb-rules/index.js';

/**
 * One USB device as the agent sees it on this OS: the identity rules match against, plus what the
 * enforcer needs to act on it. Built by a platform `UsbDeviceSource`; everything in it came from
 * the device or the OS and is attacker-controlled text (a stick can name itself anything).
 */
export interface ObservedUsbDevice {
  /**
   * Stable key of this attachment on this OS: the sysfs device name on Linux (`1-1.2`), the device
   * instance id on Windows. Also how a hotplug event names the device.
   */
  readonly key: string;
  readonly identity: UsbDeviceIdentity;
  /** iManufacturer string, `''` when none (for people: journal, UI). */
  readonly manufacturer: string;
  /** A hub (device class 09): hubs are how other devices attach; policy still decides them. */
  readonly isHub: boolean;
  /** Whether the OS currently lets the device work (Linux `authorized`); null when unknown. */
  readonly authorized: boolean | null;
  /** Block devices (e.g. `sdb`) this device provides right now, for read-only enforcement. */
  readonly blockDevices: readonly string[];
}

/** Reads the devices present from the OS. Implementations: one file per platform. */
export interface UsbDeviceSource {
  /** Every USB device present now (root hubs excluded), in a stable order. Never throws for one bad device: it is skipped and reported through `onDidFail`-style logging by the caller. */
  list(): Promise<ObservedUsbDevice[]>;
  /** One device by key, or null when it is gone. */
  read(key: string): Promise<ObservedUsbDevice | null>;
}

/** What the policy decided for a device. `read-only` is Sekimori's extension for storage. */
export type UsbTarget = 'allow' | 'block' | 'reject' | 'read-only';

/** What an enforcer did, for the journal: each OS action taken, and whether all succeeded. */
export interface EnforceOutcome {
  readonly ok: boolean;
  /** Human- and auditor-readable actions, in order, e.g. `authorized=0 (1-1)`, `blockdev --setro /dev/sdb`. */
  readonly actions: readonly string[];
  /** The OS error when `ok` is false. */
  readonly error?: string;
}

/**
 * Makes the OS obey decisions (DESIGN.md §4). Contract:
 * - `prepare()` sets default-deny so a device that appears is unusable until decided
 *   (Linux: `authorized_default=0` on every root hub). Called at start and on every reconcile
 *   (a new root hub, e.g. a Thunderbolt dock, must be covered too).
 * - `apply()` is idempotent: applying the current state again changes nothing and succeeds.
 * - Never throws for OS errors: returns `{ ok: false, error }`, so the caller journals it and
 *   keeps the device blocked (fail closed).
 */
export interface UsbEnforcer {
  /** `linux`, `win32`, `darwin`. */
  readonly platform: string;
  /** False until this enforcer has been proven on a real OS (reported to the server as such). */
  readonly verifiedOnRealOs: boolean;
  prepare(): Promise<EnforceOutcome>;
  apply(device: ObservedUsbDevice, target: UsbTarget): Promise<EnforceOutcome>;
}
