import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { readJsonFile, writeJsonFileAtomic } from '../../state.js';
import { errorText, fail, pass, unknown, type CheckOutcome, type SelfCheck } from '../check.js';

/** A physical network adapter (virtual ones — bridges, veth, tunnels — are not hardware). */
const NicSchema = z.strictObject({ name: z.string().max(64), mac: z.string().max(64), bus: z.string().max(200) });
/** A fixed block device (removable media and USB disks are device control's business, journaled there). */
const DiskSchema = z.strictObject({ name: z.string().max(64), model: z.string().max(200), serial: z.string().max(200), sizeSectors: z.string().max(32) });

export const HardwareInventorySchema = z.strictObject({
  version: z.literal(1),
  takenAt: z.string(),
  nics: z.array(NicSchema).max(1000),
  disks: z.array(DiskSchema).max(1000),
});
export type HardwareInventory = z.infer<typeof HardwareInventorySchema>;

async function readText(file: string): Promise<string> {
  return (await fs.readFile(file, 'utf8').catch(() => '')).trim();
}

/**
 * Reads the hardware inventory under a sysfs root: physical NICs from `class/net` (entries that
 * have a `device` link), fixed disks from `block` (no `loop`/`ram`/`zram`/`dm-`/`md`/`nbd`, not
 * removable, not behind a USB device, not under `devices/virtual`).
 */
export async function readHardwareInventory(sysfsRoot: string, takenAt: string): Promise<HardwareInventory> {
  const nics: HardwareInventory['nics'] = [];
  const netDir = path.join(sysfsRoot, 'class', 'net');
  for (const name of (await fs.readdir(netDir).catch(() => [])).sort()) {
    const device = await fs.realpath(path.join(netDir, name, 'device')).catch(() => null);
    if (device === null) continue;
    nics.push({ name, mac: await readText(path.join(netDir, name, 'address')), bus: path.basename(device) });
  }
  const disks: HardwareInventory['disks'] = [];
  const blockDir = path.join(sysfsRoot, 'block');
  for (const name of (await fs.readdir(blockDir).catch(() => [])).sort()) {
    if (/^(loop|ram|zram|dm-|md|nbd|sr)/.test(name)) continue;
    const real = await fs.realpath(path.join(blockDir, name)).catch(() => path.join(blockDir, name));
    if (real.includes(`${path.sep}virtual${path.sep}`) || /\/usb\d+\//.test(real)) continue;
    if ((await readText(path.join(blockDir, name, 'removable'))) === '1') continue;
    const deviceDir = path.join(blockDir, name, 'device');
    const serial = (await readText(path.join(deviceDir, 'serial'))) || (await readText(path.join(deviceDir, 'wwid'))) || (await readText(path.join(blockDir, name, 'wwid')));
    disks.push({ name, model: await readText(path.join(deviceDir, 'model')), serial, sizeSectors: await readText(path.join(blockDir, name, 'size')) });
  }
  return { version: 1, takenAt, nics, disks };
}

const nicKey = (nic: HardwareInventory['nics'][number]): string => `${nic.mac}|${nic.bus}`;
const diskKey = (disk: HardwareInventory['disks'][number]): string => (disk.serial !== '' ? `${disk.model}|${disk.serial}` : `${disk.name}|${disk.model}|${disk.sizeSectors}`);

/** What was added and removed between two inventories (adapters by MAC and bus, disks by model and serial). */
export function compareInventories(previous: HardwareInventory, current: HardwareInventory): { added: string[]; removed: string[] } {
  const describeNic = (nic: HardwareInventory['nics'][number]): string => `NIC ${nic.name} ${nic.mac} (${nic.bus})`;
  const describeDisk = (disk: HardwareInventory['disks'][number]): string => `disk ${disk.name} ${disk.model} ${disk.serial}`.trim();
  const diff = <T>(a: readonly T[], b: readonly T[], key: (item: T) => string, describe: (item: T) => string): string[] => {
    const keys = new Set(b.map(key));
    return a.filter((item) => !keys.has(key(item))).map(describe);
  };
  return {
    added: [...diff(current.nics, previous.nics, nicKey, describeNic), ...diff(current.disks, previous.disks, diskKey, describeDisk)],
    removed: [...diff(previous.nics, current.nics, nicKey, describeNic), ...diff(previous.disks, current.disks, diskKey, describeDisk)],
  };
}

/**
 * `hardware-changes` (seed §6(4) パソコン等の管理): network adapters and fixed disks compared with
 * the inventory the previous inspection kept in the state directory (`hardware-inventory.json`).
 * A change fails this run once and becomes the new baseline; the first run records the baseline.
 */
export function hardwareChangesCheck(options: { readonly sysfsRoot: string; readonly stateFile: string; readonly nowMs: () => number }): SelfCheck {
  return {
    id: 'hardware-changes',
    async run(): Promise<CheckOutcome> {
      const current = await readHardwareInventory(options.sysfsRoot, new Date(options.nowMs()).toISOString());
      let previous: HardwareInventory | null;
      try {
        previous = await readJsonFile(options.stateFile, HardwareInventorySchema);
      } catch (error) {
        previous = null;
        await writeJsonFileAtomic(options.stateFile, current);
        return unknown({ nics: current.nics.length, disks: current.disks.length, detail: `the previous inventory was unreadable and is replaced: ${errorText(error)}` });
      }
      await writeJsonFileAtomic(options.stateFile, current);
      const evidence = { nics: current.nics.map((nic) => `${nic.name} ${nic.mac}`), disks: current.disks.map((disk) => `${disk.name} ${disk.model}`.trim()) };
      if (previous === null) return pass({ ...evidence, baseline: true });
      const { added, removed } = compareInventories(previous, current);
      const since = { previousAt: previous.takenAt, added, removed };
      return added.length > 0 || removed.length > 0 ? fail({ ...evidence, ...since }) : pass({ ...evidence, ...since });
    },
  };
}
