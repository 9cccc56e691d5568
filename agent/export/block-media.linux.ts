// Removable media that are not (only) USB devices, as the kernel shows them under /sys/block:
// optical drives (`sr*`), SD cards in a built-in reader (`mmcblk*` of type SD), disks behind an
// external PCIe port (Thunderbolt / USB4 enclosures: a PCI ancestor whose `removable` attribute
// reads `removable`), and any other disk the kernel flags `removable`. Disks behind a USB device are
// listed with `viaUsb` (USB device control already decided that device). Reads only.
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';

/** The export channel a block device belongs to. */
export type MediaChannel = 'optical' | 'sd-card' | 'external-pcie' | 'removable-media';

export interface BlockMedium {
  /** Kernel name, `sr0`, `mmcblk0`, `nvme1n1`, `sdc`. */
  readonly name: string;
  readonly channel: MediaChannel;
  /** Behind a USB device (decided by USB device control; listed for the journal only). */
  readonly viaUsb: boolean;
  readonly model: string;
  readonly serial: string;
  /** Partition names (`mmcblk0p1`). */
  readonly partitions: readonly string[];
  /** `/sys/block/X/ro` = 1. */
  readonly readOnly: boolean;
  /** SCSI generic node of the same device (`sg1`), for optical drives: SG_IO writes go through it too. */
  readonly scsiGeneric: string | null;
  /** SD card: the card's name on the mmc bus (`mmc0:aaaa`), for unbinding it from `mmcblk`. */
  readonly mmcCard: string | null;
  /** External PCIe: the sysfs path (under the root) of the nearest PCI function flagged removable. */
  readonly pciDevice: string | null;
  /** Real sysfs path relative to the root, for the journal (`devices/pci0000:00/…/block/sr0`). */
  readonly sysfsPath: string;
}

const VIRTUAL = /^(loop|ram|zram|dm-|md|nbd|zd|fd)/;

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Every block device under `sysfsRoot/block` that is an export channel (fixed internal disks are left out). */
export function listBlockMedia(sysfsRoot: string): Promise<BlockMedium[]> {
  return Promise.resolve(new BlockMediaSource(sysfsRoot).list());
}

/**
 * Lists the export-channel block devices on every reconcile pass. Reads are synchronous (sysfs is
 * kernel memory, as in the USB source), and a device found to be a fixed internal disk is not
 * classified again while it keeps its sysfs path: a pass then costs one readdir and one realpath
 * per internal disk.
 */
export class BlockMediaSource {
  private readonly fixed = new Map<string, string>();

  constructor(private readonly sysfsRoot: string) {}

  list(): BlockMedium[] {
    const blockDir = path.join(this.sysfsRoot, 'block');
    let names: string[];
    try {
      names = readdirSync(blockDir).sort();
    } catch {
      return [];
    }
    const media: BlockMedium[] = [];
    const seen = new Set<string>();
    for (const name of names) {
      if (VIRTUAL.test(name)) continue;
      seen.add(name);
      let real: string;
      try {
        real = realpathSync(path.join(blockDir, name));
      } catch {
        continue;
      }
      if (this.fixed.get(name) === real) continue;
      const medium = readMedium(this.sysfsRoot, name, real);
      if (medium === null) this.fixed.set(name, real);
      else media.push(medium);
    }
    for (const name of [...this.fixed.keys()]) if (!seen.has(name)) this.fixed.delete(name);
    return media;
  }
}

function readMedium(sysfsRoot: string, name: string, real: string): BlockMedium | null {
  const entry = path.join(sysfsRoot, 'block', name);
  const relative = path.relative(sysfsRoot, real);
  if (relative.split(path.sep).includes('virtual')) return null;
  const viaUsb = /(^|\/)usb\d+\//.test(relative);
  const removable = readText(path.join(entry, 'removable')) === '1';
  const deviceDir = path.join(entry, 'device');
  let channel: MediaChannel | null = null;
  let mmcCard: string | null = null;
  let pciDevice: string | null = null;
  if (/^sr\d+$/.test(name)) channel = 'optical';
  else if (/^mmcblk\d+$/.test(name)) {
    // eMMC (`MMC`) is the PC's own soldered disk; only SD cards (`SD`) are removable media.
    if (readText(path.join(deviceDir, 'type')) !== 'SD') return null;
    channel = 'sd-card';
    try {
      mmcCard = path.basename(realpathSync(deviceDir));
    } catch {
      mmcCard = null;
    }
  } else {
    pciDevice = viaUsb ? null : externalPciAncestor(sysfsRoot, real);
    if (pciDevice !== null) channel = 'external-pcie';
    else if (removable || viaUsb) channel = 'removable-media';
  }
  if (channel === null) return null;
  let children: string[];
  try {
    children = readdirSync(entry);
  } catch {
    children = [];
  }
  let scsiGeneric: string | null = null;
  if (channel === 'optical') {
    try {
      scsiGeneric = readdirSync(path.join(deviceDir, 'scsi_generic'))[0] ?? null;
    } catch {
      scsiGeneric = null;
    }
  }
  return {
    name,
    channel,
    viaUsb,
    model: readText(path.join(deviceDir, 'model')) || readText(path.join(deviceDir, 'name')),
    serial: readText(path.join(deviceDir, 'serial')) || readText(path.join(deviceDir, 'wwid')),
    partitions: children.filter((child) => child.startsWith(name) && child !== name).sort(),
    readOnly: readText(path.join(entry, 'ro')) === '1',
    scsiGeneric,
    mmcCard,
    pciDevice,
    sysfsPath: relative,
  };
}

/**
 * The nearest PCI function above a block device whose `removable` attribute reads `removable`
 * (Linux ≥ 5.12 sets it for devices behind an external-facing port: Thunderbolt / USB4), relative
 * to the sysfs root; null for internal devices.
 */
function externalPciAncestor(sysfsRoot: string, real: string): string | null {
  let dir = path.dirname(real);
  const root = path.resolve(sysfsRoot);
  while (dir.startsWith(root) && dir !== root) {
    if (/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(path.basename(dir)) && readText(path.join(dir, 'removable')) === 'removable') {
      return path.relative(sysfsRoot, dir);
    }
    dir = path.dirname(dir);
  }
  return null;
}
