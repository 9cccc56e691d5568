import { assertNever } from '../../shared/result.js';
import type { CommandResult, CommandRunner } from '../platform/command-runner.js';
import type { RegistryValue, RegistryWriter } from '../platform/registry.win32.js';
import type { EnforceOutcome, ObservedUsbDevice, UsbEnforcer, UsbTarget } from './usb-device.js';

// Windows device control through documented machine policy and PnPUtil (see
// agent/usb/README-windows-macos.md for the whole mapping and what it cannot do).

/** `HKLM\SOFTWARE\Policies\Microsoft\Windows\DeviceInstall\Restrictions` (Policy CSP DeviceInstallation). */
export const RESTRICTIONS_KEY = 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\DeviceInstall\\Restrictions';
/** Numbered REG_SZ lists under the restrictions key, as the Group Policy editor writes them (`1`, `2`, …). */
export const DENY_INSTANCE_IDS_KEY = `${RESTRICTIONS_KEY}\\DenyInstanceIDs`;
export const ALLOW_INSTANCE_IDS_KEY = `${RESTRICTIONS_KEY}\\AllowInstanceIDs`;
export const DENY_DEVICE_CLASSES_KEY = `${RESTRICTIONS_KEY}\\DenyDeviceClasses`;
/** `HKLM\SOFTWARE\Policies\Microsoft\Windows\RemovableStorageDevices` (Removable Storage Access policies). */
export const REMOVABLE_STORAGE_KEY = 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\RemovableStorageDevices';
/** Removable Storage Access class GUID for removable disks (USB sticks, card readers). */
export const REMOVABLE_DISKS_CLASS = '{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}';
export const REMOVABLE_DISKS_KEY = `${REMOVABLE_STORAGE_KEY}\\${REMOVABLE_DISKS_CLASS}`;

/**
 * Device *setup* classes (not the storage-access GUIDs above) whose new installations are denied
 * by default: what the default profiles block. Installation policy is checked when Windows installs
 * a driver for a device instance it has not set up before, so this is the OS-level default-deny
 * for new devices (the counterpart of Linux `authorized_default=0`).
 */
export const DEFAULT_DENY_SETUP_CLASSES: readonly string[] = [
  '{4d36e967-e325-11ce-bfc1-08002be10318}', // DiskDrive: USB sticks, card readers, external disks
  '{4d36e965-e325-11ce-bfc1-08002be10318}', // CDROM
  '{eec5ad98-8080-425f-922a-dabf3de3f69a}', // WPD: phones in MTP mode, cameras
  '{6bdd1fc6-810f-11d0-bec7-08002be2092f}', // Image: still-image / PTP devices
  '{4d36e972-e325-11ce-bfc1-08002be10318}', // Net: USB Ethernet, RNDIS tethering, Wi-Fi sticks
  '{e0cbf06c-cd8b-4647-bb8a-263b43f0f974}', // Bluetooth radios
];

/** Longest device instance id Windows accepts (MAX_DEVICE_ID_LEN). */
export const MAX_INSTANCE_ID_LENGTH = 200;

/**
 * A PnP device instance id as Windows can build it: `ENUMERATOR\device-id\instance-id`, three
 * non-empty parts of printable ASCII without spaces or commas (the USB hub uses a serial only when
 * every character is in 0x21–0x7F and not a comma, else it generates the part, e.g.
 * `6&870CE29&0&1`), at most 200 characters, starting with a letter or digit (so never a `/switch`).
 * This mirrors what Windows produces on purpose: refusing an id a real device can have would leave
 * that device unblockable. Quotes, `&`, `|`, `%`, `;` pass — as one argv element, with no shell.
 */
const INSTANCE_ID = /^[A-Za-z0-9][\x21-\x2b\x2d-\x5b\x5d-\x7e]*\\[\x21-\x2b\x2d-\x5b\x5d-\x7e]+\\[\x21-\x2b\x2d-\x5b\x5d-\x7e]+$/;

/** Whether `id` is a device instance id this enforcer will pass to pnputil and reg.exe. */
export function isPnpInstanceId(id: string): boolean {
  return id.length <= MAX_INSTANCE_ID_LENGTH && INSTANCE_ID.test(id);
}

/**
 * `*` and `?` are legal in a serial but read as wildcards by some PnP tools and list matchers. A
 * restrictive action on such an id can at worst over-block; a permissive one could enable other
 * devices, so allow and read-only refuse it (fail closed).
 */
function hasWildcard(id: string): boolean {
  return id.includes('*') || id.includes('?');
}

/** PnPUtil's "succeeded, reboot required" exit code (ERROR_SUCCESS_REBOOT_REQUIRED). */
const REBOOT_REQUIRED = 3010;

export interface Win32UsbEnforcerOptions {
  readonly runner: CommandRunner;
  readonly registry: RegistryWriter;
  /** Full path of pnputil.exe (default under `C:\Windows\System32`; pass `%SystemRoot%`'s from the composition root). */
  readonly pnputil?: string;
  /** Setup classes whose new installations `prepare()` denies; default `DEFAULT_DENY_SETUP_CLASSES`. */
  readonly denySetupClasses?: readonly string[];
  /**
   * Strict storage baseline: `prepare()` also sets `RemovableStorageDevices\Deny_All=1`, so no
   * removable storage is readable or writable at all, including sticks installed before the agent.
   * Then no stick can be allowed (the policy is class-wide). For tiers whose policy allows no storage.
   */
  readonly denyAllRemovableStorage?: boolean;
  /**
   * Whether a device (by key) is still attached; used to drop devices that left from the set that
   * keeps the class-wide Deny_Write on. Unknown (absent) means "assume still present" (fail closed).
   */
  readonly isPresent?: (key: string) => Promise<boolean>;
}

/**
 * Windows enforcer (DESIGN.md §4), per decision:
 * - allow: instance id out of `DenyInstanceIDs`, into `AllowInstanceIDs` (layered evaluation makes
 *   it beat the class deny), `pnputil /enable-device`.
 * - block: out of `AllowInstanceIDs`, into `DenyInstanceIDs`, `pnputil /disable-device`.
 * - reject: block, then `pnputil /remove-device` (reinstall is denied by the instance-id list).
 * - read-only: allow, plus `Deny_Write=1` on the removable-disk class — class-wide, see README.
 * `device.blockDevices` on Windows holds the instance ids of the device's storage children
 * (`USBSTOR\DISK&…\…&0`); they are listed alongside the device's own id.
 * Restrictive targets try every step even when one fails (more blocking is safer); permissive ones
 * stop at the first failure (fail closed). Not verified on a real Windows.
 */
export class Win32UsbEnforcer implements UsbEnforcer {
  readonly platform = 'win32';
  readonly verifiedOnRealOs = false;
  private readonly pnputil: string;
  private readonly denySetupClasses: readonly string[];
  /** Keys decided read-only by this process; while any is present, Deny_Write stays set. */
  private readonly readOnlyKeys = new Set<string>();

  constructor(private readonly options: Win32UsbEnforcerOptions) {
    this.pnputil = options.pnputil ?? 'C:\\Windows\\System32\\pnputil.exe';
    this.denySetupClasses = options.denySetupClasses ?? DEFAULT_DENY_SETUP_CLASSES;
  }

  /**
   * Default-deny for devices Windows has not installed before: layered evaluation on, the setup
   * classes denied (not retroactively: that would uninstall the internal disk and network card),
   * the instance-id lists switched on. Writes only what differs, so a reconcile pass costs reads.
   */
  async prepare(): Promise<EnforceOutcome> {
    const log = new ActionLog();
    const switches: readonly [string, number][] = [
      ['AllowDenyLayered', 1],
      ['DenyDeviceClasses', 1],
      ['DenyDeviceClassesRetroactive', 0],
      ['DenyInstanceIDs', 1],
      ['DenyInstanceIDsRetroactive', 0],
      ['AllowInstanceIDs', 1],
    ];
    await this.ensureDwords(log, RESTRICTIONS_KEY, switches);
    for (const setupClass of this.denySetupClasses) await this.ensureListed(log, DENY_DEVICE_CLASSES_KEY, setupClass);
    if (this.options.denyAllRemovableStorage) await this.ensureDwords(log, REMOVABLE_STORAGE_KEY, [['Deny_All', 1]]);
    return log.outcome();
  }

  async apply(device: ObservedUsbDevice, target: UsbTarget): Promise<EnforceOutcome> {
    if (!isPnpInstanceId(device.key)) return refuse(`not a PnP device instance id: ${shown(device.key)}`);
    const permissive = target === 'allow' || target === 'read-only';
    const badChild = device.blockDevices.find((id) => !isPnpInstanceId(id));
    // A bad child id stops a permissive action; a restrictive one still disables the device itself.
    if (permissive && badChild !== undefined) return refuse(`not a PnP device instance id: ${shown(badChild)}`);
    const ids = [device.key, ...device.blockDevices.filter(isPnpInstanceId)];
    const wildcard = permissive ? ids.find(hasWildcard) : undefined;
    if (wildcard !== undefined) return refuse(`${target} of an instance id with a wildcard character: ${shown(wildcard)}`);
    const log = new ActionLog();
    if (badChild !== undefined) log.fail(`refused child: not a PnP device instance id: ${shown(badChild)}`);
    switch (target) {
      case 'allow':
        this.readOnlyKeys.delete(device.key);
        if (await this.allow(log, device, ids)) await this.releaseDenyWriteIfUnused(log);
        break;
      case 'read-only':
        this.readOnlyKeys.add(device.key);
        if (await this.allow(log, device, ids)) await this.denyWrite(log, device.key);
        break;
      case 'block':
        this.readOnlyKeys.delete(device.key);
        await this.block(log, device, ids);
        break;
      case 'reject':
        this.readOnlyKeys.delete(device.key);
        await this.block(log, device, ids);
        await this.pnp(log, '/remove-device', device.key);
        break;
      default:
        assertNever(target, 'USB target');
    }
    return log.outcome();
  }

  /** Stops at the first failure: nothing is enabled unless the policy lists say so first. */
  private async allow(log: ActionLog, device: ObservedUsbDevice, ids: readonly string[]): Promise<boolean> {
    let listed = false;
    for (const id of ids) if (!(await this.ensureUnlisted(log, DENY_INSTANCE_IDS_KEY, id))) return false;
    for (const id of ids) {
      const before = log.actions.length;
      if (!(await this.ensureListed(log, ALLOW_INSTANCE_IDS_KEY, id))) return false;
      listed ||= log.actions.length > before;
    }
    if (device.authorized !== true && !(await this.pnp(log, '/enable-device', device.key))) return false;
    // A child whose install the class deny stopped earlier is only retried on re-enumeration.
    if (listed && device.blockDevices.length > 0 && !(await this.pnp(log, '/scan-devices'))) return false;
    return true;
  }

  /** Tries every step: a failed list write must not stop the disable. */
  private async block(log: ActionLog, device: ObservedUsbDevice, ids: readonly string[]): Promise<void> {
    for (const id of ids) await this.ensureUnlisted(log, ALLOW_INSTANCE_IDS_KEY, id);
    for (const id of ids) await this.ensureListed(log, DENY_INSTANCE_IDS_KEY, id);
    if (device.authorized !== false) await this.pnp(log, '/disable-device', device.key);
  }

  /**
   * Removable Storage Access has no per-device form: Deny_Write covers every removable disk. The
   * policy is read when a volume is mounted, so the device is restarted once when the value changes.
   */
  private async denyWrite(log: ActionLog, key: string): Promise<void> {
    const changed = await this.ensureDwords(log, REMOVABLE_DISKS_KEY, [['Deny_Write', 1]]);
    if (changed === true) await this.pnp(log, '/restart-device', key);
  }

  /** Lifts the class-wide Deny_Write once no device decided read-only is still attached. */
  private async releaseDenyWriteIfUnused(log: ActionLog): Promise<void> {
    const isPresent = this.options.isPresent;
    if (isPresent) {
      for (const key of [...this.readOnlyKeys]) if (!(await isPresent(key).catch(() => true))) this.readOnlyKeys.delete(key);
    }
    if (this.readOnlyKeys.size > 0) return;
    const read = await this.options.registry.readValues(REMOVABLE_DISKS_KEY);
    if (!read.ok) {
      log.fail(read.error);
      return;
    }
    if (!read.values.some((value) => value.name.toLowerCase() === 'deny_write')) return;
    const result = await this.options.registry.deleteValue(REMOVABLE_DISKS_KEY, 'Deny_Write');
    if (result.ok) log.did(`reg delete ${REMOVABLE_DISKS_KEY}\\Deny_Write`);
    else log.fail(result.error);
  }

  /** Sets each DWORD that differs. Resolves whether anything was written, or null on failure. */
  private async ensureDwords(log: ActionLog, key: string, wanted: readonly (readonly [string, number])[]): Promise<boolean | null> {
    const read = await this.options.registry.readValues(key);
    if (!read.ok) {
      log.fail(read.error);
      return null;
    }
    let changed = false;
    for (const [name, value] of wanted) {
      const current = read.values.find((candidate) => candidate.name.toLowerCase() === name.toLowerCase());
      if (current?.type === 'REG_DWORD' && current.data === value) continue;
      const result = await this.options.registry.setDword(key, name, value);
      if (!result.ok) {
        log.fail(result.error);
        return null;
      }
      log.did(`reg add ${key}\\${name}=${value}`);
      changed = true;
    }
    return changed;
  }

  /** Adds `item` to a numbered policy list unless some value already holds it (ids compare case-insensitively). */
  private async ensureListed(log: ActionLog, key: string, item: string): Promise<boolean> {
    const read = await this.options.registry.readValues(key);
    if (!read.ok) return log.fail(read.error);
    if (read.values.some((value) => holds(value, item))) return true;
    const name = nextFreeName(read.values);
    const result = await this.options.registry.setString(key, name, item);
    if (!result.ok) return log.fail(result.error);
    log.did(`reg add ${key}\\${name}="${item}"`);
    return true;
  }

  /** Deletes every value of a numbered policy list that holds `item`. */
  private async ensureUnlisted(log: ActionLog, key: string, item: string): Promise<boolean> {
    const read = await this.options.registry.readValues(key);
    if (!read.ok) return log.fail(read.error);
    for (const value of read.values.filter((candidate) => holds(candidate, item))) {
      const result = await this.options.registry.deleteValue(key, value.name);
      if (!result.ok) return log.fail(result.error);
      log.did(`reg delete ${key}\\${value.name} ("${item}")`);
    }
    return true;
  }

  /** Runs `pnputil <verb> ["<instance id>"]`; 3010 (reboot required) counts as done and says so. */
  private async pnp(log: ActionLog, verb: string, instanceId?: string): Promise<boolean> {
    const args = instanceId === undefined ? [verb] : [verb, instanceId];
    const action = instanceId === undefined ? `pnputil ${verb}` : `pnputil ${verb} "${instanceId}"`;
    const result = await this.options.runner.run(this.pnputil, args);
    if (result.error === undefined && result.code === 0) return log.did(action);
    if (result.error === undefined && result.code === REBOOT_REQUIRED) return log.did(`${action} (reboot required)`);
    return log.fail(`${action} failed: ${describe(result)}`);
  }
}

/** The actions taken so far and the errors met, in order. */
class ActionLog {
  readonly actions: string[] = [];
  private readonly errors: string[] = [];

  /** Records a completed action; returns true so a step can `return log.did(…)`. */
  did(action: string): true {
    this.actions.push(action);
    return true;
  }

  /** Records a failure; returns false so a step can `return log.fail(…)`. */
  fail(error: string): false {
    this.errors.push(error);
    return false;
  }

  outcome(): EnforceOutcome {
    return this.errors.length === 0 ? { ok: true, actions: this.actions } : { ok: false, actions: this.actions, error: this.errors.join('; ') };
  }
}

function refuse(reason: string): EnforceOutcome {
  return { ok: false, actions: [], error: `refused: ${reason}` };
}

/** Attacker-controlled text as it may appear in an error: JSON-quoted and cut short. */
function shown(text: string): string {
  return JSON.stringify(text.slice(0, 120));
}

function holds(value: RegistryValue, item: string): boolean {
  return (value.type === 'REG_SZ' || value.type === 'REG_EXPAND_SZ') && value.data.toUpperCase() === item.toUpperCase();
}

/** The smallest positive integer not yet used as a value name (the Group Policy editor's numbering). */
function nextFreeName(values: readonly RegistryValue[]): string {
  const used = new Set(values.map((value) => value.name));
  let n = 1;
  while (used.has(String(n))) n += 1;
  return String(n);
}

function describe(result: CommandResult): string {
  const detail = result.error ?? (result.stdout.trim() || result.stderr.trim() || 'no output');
  return `exit ${result.code ?? 'none'}: ${detail.slice(0, 500)}`;
}
