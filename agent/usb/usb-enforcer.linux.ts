// Enforces decisions on Linux through sysfs and the block layer (see agent/usb/README.md for exactly
// what is and is not enforced):
//   default-deny  `usbN/authorized_default` = 0 on every root hub
//   allow         `X/authorized` = 1
//   block         `X/authorized` = 0            (drivers unbound, interfaces gone; stays enumerated)
//   reject        `X/authorized` = 0, then `X/remove` = 1 (logical disconnect until replugged)
//   read-only     `X/authorized` = 1, wait for its disks, `blockdev --setro /dev/sdX` on each disk
//                 and partition; if no disk appears in time, `authorized` = 0 again (fail closed)
// Writes open the attribute with O_WRONLY|O_TRUNC and never O_CREAT, so a missing attribute is an
// error (ENOENT) rather than a stray file, and nothing here is ever created in sysfs.
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { assertNever } from '../../shared/result.js';
import type { CommandRunner } from '../platform/command-runner.js';
import { LINUX_DEVICE_NAME, ROOT_HUB_NAME } from './usb-device-source.linux.js';
import type { EnforceOutcome, ObservedUsbDevice, UsbEnforcer, UsbTarget } from './usb-device.js';

export interface LinuxUsbEnforcerOptions {
  /** sysfs mount point (default `/sys`); tests pass a FakeSysfs root. */
  readonly sysfsRoot?: string;
  /** Runs `blockdev`; the agent passes its NodeCommandRunner, tests a recording fake. */
  readonly commands: CommandRunner;
  /** Where `blockdev` device nodes live (default `/dev`). */
  readonly devRoot?: string;
  /** How long read-only waits for the authorised device's disks to appear (default 5000 ms). */
  readonly blockDeviceTimeoutMs?: number;
  /** Poll interval while waiting for disks (default 20 ms). */
  readonly pollIntervalMs?: number;
}

/** Thrown inside this module only, to stop a sequence of actions at the first OS error. */
class EnforceError extends Error {}

const errorText = (error: unknown): string => {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.startsWith(code) ? `${code}: ${message}` : message;
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `UsbEnforcer` over Linux sysfs. Never throws for OS errors; every call is idempotent. */
export class LinuxUsbEnforcer implements UsbEnforcer {
  readonly platform = 'linux';
  /** Proven on a real kernel: `npm run test:vm` (Debian 6.1 under QEMU, hot-plugged sticks never get a disk). */
  readonly verifiedOnRealOs = true;

  private readonly root: string;
  private readonly devRoot: string;
  private readonly commands: CommandRunner;
  private readonly blockDeviceTimeoutMs: number;
  private readonly pollIntervalMs: number;

  constructor(options: LinuxUsbEnforcerOptions) {
    this.root = options.sysfsRoot ?? '/sys';
    this.devRoot = options.devRoot ?? '/dev';
    this.commands = options.commands;
    this.blockDeviceTimeoutMs = options.blockDeviceTimeoutMs ?? 5000;
    this.pollIntervalMs = options.pollIntervalMs ?? 20;
  }

  private get busDir(): string {
    return path.join(this.root, 'bus', 'usb', 'devices');
  }

  /**
   * `authorized_default` = 0 on every root hub present (call again on reconcile: a dock can add a
   * bus). Tries every hub even when one fails; `ok` is false if any failed.
   */
  async prepare(): Promise<EnforceOutcome> {
    let hubs: string[];
    try {
      hubs = (await fs.readdir(this.busDir)).filter((name) => ROOT_HUB_NAME.test(name)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
    } catch (error) {
      return { ok: false, actions: [], error: `cannot list root hubs in ${this.busDir}: ${errorText(error)}` };
    }
    const actions: string[] = [];
    const errors: string[] = [];
    for (const hub of hubs) {
      try {
        await this.write(hub, 'authorized_default', '0', actions);
      } catch (error) {
        errors.push(errorText(error));
      }
    }
    if (hubs.length === 0) actions.push('no root hubs (no USB bus)');
    return errors.length === 0 ? { ok: true, actions } : { ok: false, actions, error: errors.join('; ') };
  }

  async apply(device: ObservedUsbDevice, target: UsbTarget): Promise<EnforceOutcome> {
    const actions: string[] = [];
    if (!LINUX_DEVICE_NAME.test(device.key)) return { ok: false, actions, error: `not a Linux USB device name: ${JSON.stringify(device.key)}` };
    try {
      switch (target) {
        case 'allow':
          await this.write(device.key, 'authorized', '1', actions);
          break;
        case 'block':
          await this.write(device.key, 'authorized', '0', actions);
          break;
        case 'reject':
          await this.reject(device.key, actions);
          break;
        case 'read-only':
          await this.readOnly(device, actions);
          break;
        default:
          assertNever(target, 'USB target');
      }
      return { ok: true, actions };
    } catch (error) {
      return { ok: false, actions, error: errorText(error) };
    }
  }

  /** Writes one attribute; records `name=value (device)` only once the write succeeded. */
  private async write(device: string, attribute: string, value: string, actions: string[]): Promise<void> {
    const file = path.join(this.busDir, device, attribute);
    try {
      const handle = await fs.open(file, constants.O_WRONLY | constants.O_TRUNC);
      try {
        await handle.write(value);
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw new EnforceError(`${attribute}=${value} (${device}) failed: ${errorText(error)}`);
    }
    actions.push(`${attribute}=${value} (${device})`);
  }

  private async reject(key: string, actions: string[]): Promise<void> {
    try {
      await this.write(key, 'authorized', '0', actions);
    } catch (error) {
      // Already removed (a repeated reject): nothing left to enforce.
      if (!(await this.exists(key))) {
        actions.push(`already removed (${key})`);
        return;
      }
      throw error;
    }
    if (!(await this.exists(key, 'remove'))) {
      // Kernels without the attribute: de-authorised is the strongest state available.
      actions.push(`remove attribute absent; left de-authorised (${key})`);
      return;
    }
    await this.write(key, 'remove', '1', actions);
  }

  private async readOnly(device: ObservedUsbDevice, actions: string[]): Promise<void> {
    await this.write(device.key, 'authorized', '1', actions);
    const disks = await this.waitForDisks(device.key);
    if (disks.length === 0) {
      // No disk means nothing can be made read-only; a disk that shows up later would be writable.
      await this.write(device.key, 'authorized', '0', actions);
      throw new EnforceError(`read-only: no block device appeared within ${this.blockDeviceTimeoutMs} ms (${device.key}); de-authorised`);
    }
    for (const disk of disks) {
      for (const node of [disk.name, ...disk.partitions]) {
        const devicePath = path.join(this.devRoot, node);
        const result = await this.commands.run('blockdev', ['--setro', devicePath], { timeoutMs: 10_000 });
        if (result.code !== 0) {
          const why = result.error ?? (result.stderr.trim() || `exit code ${String(result.code)}`);
          // Fail closed: a disk we could not make read-only must not stay usable.
          await this.write(device.key, 'authorized', '0', actions).catch(() => undefined);
          throw new EnforceError(`blockdev --setro ${devicePath} failed: ${why}`);
        }
        actions.push(`blockdev --setro ${devicePath}`);
      }
    }
  }

  /** The device's disks (and their partitions), polling until some appear or the timeout passes. */
  private async waitForDisks(key: string): Promise<{ name: string; partitions: string[] }[]> {
    const deadline = Date.now() + this.blockDeviceTimeoutMs;
    for (;;) {
      const disks = await this.disksOf(key);
      if (disks.length > 0 || Date.now() >= deadline) return disks;
      await sleep(this.pollIntervalMs);
    }
  }

  private async disksOf(key: string): Promise<{ name: string; partitions: string[] }[]> {
    const list = async (dir: string, pattern: RegExp): Promise<string[]> =>
      (await fs.readdir(dir).catch(() => [] as string[])).filter((entry) => pattern.test(entry)).sort();
    const dir = path.join(this.busDir, key);
    const disks: { name: string; partitions: string[] }[] = [];
    for (const entry of await list(dir, /:\d+\.\d+$/)) {
      for (const host of await list(path.join(dir, entry), /^host\d+$/)) {
        for (const target of await list(path.join(dir, entry, host), /^target\d+:\d+:\d+$/)) {
          for (const lun of await list(path.join(dir, entry, host, target), /^\d+:\d+:\d+:\d+$/)) {
            const blockDir = path.join(dir, entry, host, target, lun, 'block');
            for (const disk of await list(blockDir, /^sd[a-z]{1,3}$/)) {
              disks.push({ name: disk, partitions: await list(path.join(blockDir, disk), new RegExp(`^${disk}\\d+$`)) });
            }
          }
        }
      }
    }
    return disks;
  }

  private async exists(key: string, attribute = ''): Promise<boolean> {
    return fs.access(path.join(this.busDir, key, attribute)).then(
      () => true,
      () => false,
    );
  }
}
