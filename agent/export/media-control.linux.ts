// Export channels beyond USB devices on Linux (see agent/README.md "Export channels"): optical
// drives, SD cards in built-in readers, Thunderbolt/USB4 devices and the disks behind them, other
// removable disks. Each is decided like removable storage by the policy (the caller's `decide`),
// enforced at the sysfs / device-node / block-layer boundary, and journaled with what was and was
// not enforced. Sysfs writes open the attribute O_WRONLY|O_TRUNC, never O_CREAT (as the USB enforcer).
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'winston';
import type { Journal } from '../journal/journal.js';
import type { CommandRunner } from '../platform/command-runner.js';
import { BlockMediaSource, type BlockMedium, type MediaChannel } from './block-media.linux.js';
import { listThunderboltDevices, type ThunderboltDevice } from './thunderbolt.linux.js';

export type ExportChannel = MediaChannel | 'thunderbolt';
export type MediaTarget = 'allow' | 'block' | 'read-only';

/** One export device as decided: a block medium or a Thunderbolt device. */
export type ExportDevice = { readonly kind: 'block'; readonly medium: BlockMedium } | { readonly kind: 'thunderbolt'; readonly device: ThunderboltDevice };

export interface MediaDecision {
  readonly target: MediaTarget;
  readonly rule: Readonly<Record<string, unknown>>;
  readonly audit: boolean;
}

export interface MediaControlOptions {
  readonly sysfsRoot: string;
  /** Where device nodes live (`/dev`; a temp dir in tests). */
  readonly devRoot?: string;
  readonly commands: CommandRunner;
  readonly journal: Pick<Journal, 'append'>;
  readonly logger: Logger;
  /** The policy's decision for a device treated as removable storage. Throwing counts as block. */
  readonly decide: (channel: ExportChannel, device: ExportDevice) => MediaDecision;
}

interface Outcome {
  readonly ok: boolean;
  readonly actions: string[];
  readonly error: string | null;
  /** What this channel cannot enforce at this boundary, for the auditor. */
  readonly notEnforced: string[];
  /** The action removes the device from /sys/block (unbind, PCI remove, SCSI delete). */
  readonly removes?: boolean;
}

interface Applied {
  readonly fingerprint: string;
  readonly target: MediaTarget;
  readonly enforced: MediaTarget;
  readonly ok: boolean;
  readonly removes: boolean;
}

/** Optical node modes: `block` leaves the drive to root; `read-only` lets the `cdrom` group read. */
const OPTICAL_MODE: Readonly<Record<'block' | 'read-only', number>> = { block: 0o600, 'read-only': 0o640 };

/**
 * Decides, enforces and journals the non-USB export channels; `reconcile()` is called on the USB
 * reconcile period (and at start). Idempotent: a device already enforced is not journaled again
 * unless its state drifted (then it is re-enforced and `tamper.detected` is journaled). Never throws.
 */
export class MediaControl {
  private readonly devRoot: string;
  private readonly applied = new Map<string, Applied>();
  private readonly media: BlockMediaSource;
  private queue: Promise<void> = Promise.resolve();
  private disposed = false;

  constructor(private readonly options: MediaControlOptions) {
    this.devRoot = options.devRoot ?? '/dev';
    this.media = new BlockMediaSource(options.sysfsRoot);
  }

  /** One pass over every export device (serialised). */
  reconcile(force = false): Promise<void> {
    const next = this.queue.then(() => this.pass(force)).catch((error: unknown) => {
      this.options.logger.error('export channel pass failed', { error: error instanceof Error ? error.message : String(error) });
    });
    this.queue = next;
    return next;
  }

  /** Stops further passes and waits for the one running. */
  dispose(): Promise<void> {
    this.disposed = true;
    return this.queue;
  }

  private async pass(force: boolean): Promise<void> {
    if (this.disposed) return;
    const devices: ExportDevice[] = [
      ...listThunderboltDevices(this.options.sysfsRoot).map((device): ExportDevice => ({ kind: 'thunderbolt', device })),
      // Disks behind a USB device were decided with that device (USB device control).
      ...this.media.list().filter((medium) => !medium.viaUsb).map((medium): ExportDevice => ({ kind: 'block', medium })),
    ];
    const present = new Set(devices.map(keyOf));
    for (const key of [...this.applied.keys()]) if (!present.has(key)) this.applied.delete(key);
    for (const device of devices) await this.handle(device, force);
  }

  private async handle(device: ExportDevice, force: boolean): Promise<void> {
    const key = keyOf(device);
    const channel = channelOf(device);
    const fingerprint = fingerprintOf(device);
    const previous = this.applied.get(key);
    const decision = this.safeDecide(channel, device);
    const enforced: MediaTarget = decision.audit ? 'allow' : decision.target;
    const drift = previous !== undefined && previous.ok && previous.fingerprint === fingerprint ? await this.drifted(device, previous) : null;
    if (!force && drift === null && previous && previous.fingerprint === fingerprint && previous.target === decision.target && previous.ok) return;
    if (drift !== null) await this.options.journal.append('tamper.detected', { kind: 'export-channel-drift', channel, device: describe(device), expected: previous?.enforced ?? null, found: drift });
    const outcome = await this.enforce(device, enforced).catch((error: unknown): Outcome => ({ ok: false, actions: [], error: errorText(error), notEnforced: [] }));
    this.applied.set(key, { fingerprint, target: decision.target, enforced, ok: outcome.ok, removes: outcome.removes === true });
    await this.options.journal.append(decision.target === 'allow' ? 'export.allowed' : 'export.blocked', {
      channel,
      device: describe(device),
      decision: decision.target,
      rule: { ...decision.rule },
      audit: decision.audit,
      enforced: { target: enforced, ok: outcome.ok, actions: outcome.actions, error: outcome.error },
      notEnforced: outcome.notEnforced,
    });
    if (!outcome.ok) this.options.logger.error('export channel enforcement failed', { key, channel, error: outcome.error });
  }

  private safeDecide(channel: ExportChannel, device: ExportDevice): MediaDecision {
    try {
      return this.options.decide(channel, device);
    } catch (error) {
      this.options.logger.error('export decision failed; blocking', { channel, error: errorText(error) });
      return { target: 'block', rule: { kind: 'error' }, audit: false };
    }
  }

  /** What contradicts the enforced target now, or null. */
  private async drifted(device: ExportDevice, previous: Applied): Promise<string | null> {
    const { enforced } = previous;
    if (enforced === 'allow') return null;
    if (device.kind === 'thunderbolt') {
      if (enforced === 'block' && device.device.authorized !== '0' && device.device.canDeauthorize) return `authorized=${device.device.authorized ?? '?'}`;
      return null;
    }
    const { medium } = device;
    if (medium.channel === 'optical') {
      const mode = await this.nodeMode(medium.name);
      return mode !== null && (mode & ~OPTICAL_MODE[enforced] & 0o777) !== 0 ? `mode ${(mode & 0o777).toString(8)}` : null;
    }
    // A removed card or disk should be gone from /sys/block: present again means someone re-bound it.
    if (previous.removes) return 'present again';
    return medium.readOnly ? null : 'ro=0';
  }

  private async enforce(device: ExportDevice, target: MediaTarget): Promise<Outcome> {
    if (device.kind === 'thunderbolt') return this.enforceThunderbolt(device.device, target);
    const { medium } = device;
    if (target === 'allow') return { ok: true, actions: [], error: null, notEnforced: [] };
    switch (medium.channel) {
      case 'optical':
        return this.enforceOptical(medium, target);
      case 'sd-card':
        return target === 'block'
          ? this.sysfsWrite(path.join('bus', 'mmc', 'drivers', 'mmcblk', 'unbind'), medium.mmcCard ?? '', ['the card reader stays present; a card re-inserted is bound again and unbound at the next reconcile (a few seconds)'])
          : this.setReadOnly(medium, ['a file system already mounted read-write stays so until remounted']);
      case 'external-pcie':
        return target === 'block'
          ? this.sysfsWrite(path.join(medium.pciDevice ?? '', 'remove'), '1', ['the PCI device returns on a rescan or re-plug and is removed again at the next reconcile'])
          : this.setReadOnly(medium, ['a file system already mounted read-write stays so until remounted']);
      case 'removable-media': {
        if (target === 'read-only') return this.setReadOnly(medium, ['a file system already mounted read-write stays so until remounted']);
        const deleteAttribute = path.join('block', medium.name, 'device', 'delete');
        if (await exists(path.join(this.options.sysfsRoot, deleteAttribute))) return this.sysfsWrite(deleteAttribute, '1', ['the disk returns on a SCSI rescan and is deleted again at the next reconcile']);
        const outcome = await this.setReadOnly(medium, []);
        return { ...outcome, notEnforced: ['reading: this disk has no SCSI delete attribute, so it is made read-only instead of removed'] };
      }
    }
  }

  private async enforceOptical(medium: BlockMedium, target: 'block' | 'read-only'): Promise<Outcome> {
    const actions: string[] = [];
    const mode = OPTICAL_MODE[target];
    try {
      for (const node of [medium.name, ...(medium.scsiGeneric ? [medium.scsiGeneric] : [])]) {
        await fs.chmod(path.join(this.devRoot, node), mode);
        actions.push(`chmod ${mode.toString(8)} ${path.join(this.devRoot, node)}`);
      }
    } catch (error) {
      return { ok: false, actions, error: errorText(error), notEnforced: [] };
    }
    const ro = await this.setReadOnly(medium, []);
    return {
      ok: ro.ok,
      actions: [...actions, ...ro.actions],
      error: ro.error,
      notEnforced: [
        'root (CAP_SYS_RAWIO) can still send write commands',
        'udev resets the node mode when the drive is re-added; the next reconcile applies it again (a udev rule from the installer closes the gap)',
      ],
    };
  }

  private async enforceThunderbolt(device: ThunderboltDevice, target: MediaTarget): Promise<Outcome> {
    const attribute = path.join('bus', 'thunderbolt', 'devices', device.name, 'authorized');
    if (['dponly', 'usbonly', 'nopcie'].includes(device.security)) {
      return { ok: true, actions: [`no PCIe tunnels at security level ${device.security}`], error: null, notEnforced: [] };
    }
    if (target === 'block') {
      if (device.authorized === '0') return { ok: true, actions: [`authorized=0 kept (${device.name})`], error: null, notEnforced: [] };
      if (!device.canDeauthorize) {
        return {
          ok: false,
          actions: [],
          error: `the ${device.domain} domain (security ${device.security}) cannot de-authorize ${device.name}`,
          notEnforced: ['the PCIe tunnel stays up; disks behind it are removed at the block layer instead'],
        };
      }
      return this.sysfsWrite(attribute, '0', []);
    }
    // allow and read-only need the PCIe tunnel (read-only is then set on the disks at the block layer).
    if (device.authorized !== null && device.authorized !== '0') return { ok: true, actions: [], error: null, notEnforced: [] };
    return this.sysfsWrite(attribute, '1', target === 'read-only' ? ['the disk is writable between the tunnel coming up and the next reconcile setting it read-only'] : []);
  }

  private async setReadOnly(medium: BlockMedium, notEnforced: string[]): Promise<Outcome> {
    const actions: string[] = [];
    for (const name of [medium.name, ...medium.partitions]) {
      const node = path.join(this.devRoot, name);
      const result = await this.options.commands.run('blockdev', ['--setro', node], { timeoutMs: 10_000 });
      if (result.code !== 0 || result.error !== undefined) {
        return { ok: false, actions, error: `blockdev --setro ${node} failed: ${result.error ?? (result.stderr.trim() || `exit ${String(result.code)}`)}`, notEnforced };
      }
      actions.push(`blockdev --setro ${node}`);
    }
    return { ok: true, actions, error: null, notEnforced };
  }

  private async sysfsWrite(relative: string, value: string, notEnforced: string[]): Promise<Outcome> {
    if (value === '') return { ok: false, actions: [], error: `nothing to write to ${relative}`, notEnforced };
    const file = path.join(this.options.sysfsRoot, relative);
    try {
      const handle = await fs.open(file, constants.O_WRONLY | constants.O_TRUNC);
      try {
        await handle.write(value);
      } finally {
        await handle.close();
      }
      return { ok: true, actions: [`${relative}=${value}`], error: null, notEnforced, removes: !relative.endsWith('authorized') };
    } catch (error) {
      return { ok: false, actions: [], error: `${relative}: ${errorText(error)}`, notEnforced };
    }
  }

  private async nodeMode(name: string): Promise<number | null> {
    return (await fs.stat(path.join(this.devRoot, name)).catch(() => null))?.mode ?? null;
  }
}

function keyOf(device: ExportDevice): string {
  return device.kind === 'thunderbolt' ? `tb:${device.device.name}` : `block:${device.medium.name}`;
}

function channelOf(device: ExportDevice): ExportChannel {
  return device.kind === 'thunderbolt' ? 'thunderbolt' : device.medium.channel;
}

function fingerprintOf(device: ExportDevice): string {
  if (device.kind === 'thunderbolt') return `${device.device.uniqueId}|${device.device.vendorName}|${device.device.deviceName}`;
  const { medium } = device;
  return `${medium.channel}|${medium.model}|${medium.serial}|${medium.sysfsPath}`;
}

/** The device as journaled (all text from the device: attacker-controlled, shown escaped). */
function describe(device: ExportDevice): Record<string, unknown> {
  if (device.kind === 'thunderbolt') {
    const tb = device.device;
    return { name: tb.name, vendor: tb.vendorName, device: tb.deviceName, uniqueId: tb.uniqueId, authorized: tb.authorized, security: tb.security };
  }
  const { medium } = device;
  return { name: medium.name, model: medium.model, serial: medium.serial, partitions: [...medium.partitions], readOnly: medium.readOnly, sysfsPath: medium.sysfsPath };
}

async function exists(file: string): Promise<boolean> {
  return (await fs.stat(file).catch(() => null)) !== null;
}

function errorText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return (code && !message.startsWith(code) ? `${code}: ${message}` : message).slice(0, 500);
}
