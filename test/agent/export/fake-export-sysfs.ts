// A sysfs-shaped tree for the non-USB export channels: /sys/block entries as relative symlinks into
// devices/ (as the kernel lays them out), an mmc bus with the mmcblk driver's unbind attribute, PCI
// functions with the `removable` attribute of external-facing ports, SCSI `device/delete`, and a
// thunderbolt bus. Attributes hold what the kernel prints (trailing newline). A /dev directory
// holds plain files standing in for device nodes (their mode is what the agent changes).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export class FakeExportSysfs {
  private constructor(
    readonly root: string,
    readonly devRoot: string,
  ) {}

  static async create(): Promise<FakeExportSysfs> {
    const base = await fs.mkdtemp(path.join(os.tmpdir(), 'sekimori-export-'));
    const tree = new FakeExportSysfs(path.join(base, 'sys'), path.join(base, 'dev'));
    await fs.mkdir(path.join(tree.root, 'block'), { recursive: true });
    await fs.mkdir(tree.devRoot, { recursive: true });
    await fs.mkdir(path.join(tree.root, 'bus/mmc/drivers/mmcblk'), { recursive: true });
    await fs.writeFile(path.join(tree.root, 'bus/mmc/drivers/mmcblk/unbind'), '');
    return tree;
  }

  async dispose(): Promise<void> {
    await fs.rm(path.dirname(this.root), { recursive: true, force: true });
  }

  /** A block device at `devices/<parent>/block/<name>` with its partitions and a /dev node per name. */
  async block(name: string, parent: string, options: { removable?: boolean; model?: string; serial?: string; partitions?: string[]; deviceFiles?: Record<string, string>; ro?: boolean } = {}): Promise<string> {
    const deviceDir = path.join(this.root, 'devices', parent);
    const real = path.join(deviceDir, 'block', name);
    await fs.mkdir(real, { recursive: true });
    await fs.writeFile(path.join(real, 'removable'), options.removable ? '1\n' : '0\n');
    await fs.writeFile(path.join(real, 'ro'), options.ro ? '1\n' : '0\n');
    await fs.writeFile(path.join(real, 'size'), '3911680\n');
    if (options.model !== undefined) await fs.writeFile(path.join(deviceDir, 'model'), `${options.model}\n`);
    if (options.serial !== undefined) await fs.writeFile(path.join(deviceDir, 'serial'), `${options.serial}\n`);
    for (const [file, content] of Object.entries(options.deviceFiles ?? {})) {
      await fs.mkdir(path.dirname(path.join(deviceDir, file)), { recursive: true });
      await fs.writeFile(path.join(deviceDir, file), content);
    }
    await fs.symlink('../..', path.join(real, 'device'));
    for (const partition of options.partitions ?? []) {
      await fs.mkdir(path.join(real, partition), { recursive: true });
      await fs.writeFile(path.join(real, partition, 'ro'), '0\n');
      await fs.writeFile(path.join(this.devRoot, partition), '', { mode: 0o660 });
    }
    await fs.symlink(path.relative(path.join(this.root, 'block'), real), path.join(this.root, 'block', name));
    await fs.writeFile(path.join(this.devRoot, name), '', { mode: 0o660 });
    await fs.chmod(path.join(this.devRoot, name), 0o660);
    return real;
  }

  /** An internal SATA optical drive `srN` with its SCSI generic node `sgM`. */
  async opticalDrive(name = 'sr0', sg = 'sg1'): Promise<void> {
    await this.block(name, 'pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0', { removable: true, model: 'DVD+-RW DU-8A6SH', deviceFiles: { [`scsi_generic/${sg}/dev`]: '21:1\n' } });
    await fs.writeFile(path.join(this.devRoot, sg), '', { mode: 0o660 });
    await fs.chmod(path.join(this.devRoot, sg), 0o660);
  }

  /** An SD card (`type` SD) or eMMC (`MMC`) in the built-in reader. */
  async mmc(name: string, card: string, type: 'SD' | 'MMC'): Promise<void> {
    await this.block(name, `pci0000:00/0000:00:14.5/mmc_host/mmc0/${card}`, { removable: false, deviceFiles: { type: `${type}\n`, name: type === 'SD' ? 'SD32G\n' : 'BJTD4R\n', serial: '0x1234abcd\n' }, partitions: [`${name}p1`] });
  }

  /** An NVMe disk behind a PCI function on an external-facing (Thunderbolt / USB4) port. */
  async externalNvme(name = 'nvme1n1'): Promise<string> {
    const pci = 'pci0000:00/0000:00:07.0/0000:20:00.0/0000:21:01.0/0000:2b:00.0';
    await fs.mkdir(path.join(this.root, 'devices', pci), { recursive: true });
    await fs.writeFile(path.join(this.root, 'devices', 'pci0000:00/0000:00:07.0', 'removable'), 'fixed\n');
    await fs.writeFile(path.join(this.root, 'devices', pci, 'removable'), 'removable\n');
    await fs.writeFile(path.join(this.root, 'devices', pci, 'remove'), '');
    await this.block(name, `${pci}/nvme/nvme1`, { model: 'Samsung Portable SSD T7', serial: 'S5SXNG0R123456', partitions: [`${name}p1`] });
    return `devices/${pci}`;
  }

  /** A thunderbolt domain (security level, de-authorisation support) with its host router. */
  async thunderboltDomain(domain: number, security: string, deauthorization: boolean): Promise<void> {
    const bus = path.join(this.root, 'bus/thunderbolt/devices');
    await fs.mkdir(path.join(bus, `domain${domain}`), { recursive: true });
    await fs.writeFile(path.join(bus, `domain${domain}`, 'security'), `${security}\n`);
    await fs.writeFile(path.join(bus, `domain${domain}`, 'deauthorization'), deauthorization ? '1\n' : '0\n');
    await fs.mkdir(path.join(bus, `${domain}-0`), { recursive: true });
    await fs.writeFile(path.join(bus, `${domain}-0`, 'authorized'), '1\n');
  }

  async thunderboltDevice(name: string, authorized: string, vendor = 'OWC', device = 'Envoy Express'): Promise<void> {
    const dir = path.join(this.root, 'bus/thunderbolt/devices', name);
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'authorized'), `${authorized}\n`);
    await fs.writeFile(path.join(dir, 'vendor_name'), `${vendor}\n`);
    await fs.writeFile(path.join(dir, 'device_name'), `${device}\n`);
    await fs.writeFile(path.join(dir, 'unique_id'), 'dc010000-0000-8508-a22d-32ca6421cb16\n');
  }

  async read(relative: string): Promise<string> {
    return (await fs.readFile(path.join(this.root, relative), 'utf8')).trim();
  }

  async write(relative: string, value: string): Promise<void> {
    await fs.writeFile(path.join(this.root, relative), `${value}\n`);
  }

  async nodeMode(name: string): Promise<string> {
    return ((await fs.stat(path.join(this.devRoot, name))).mode & 0o777).toString(8);
  }

  private readonly detached = new Map<string, string>();

  /** What the kernel does on `remove`/`unbind`/`delete`: the block device goes away. */
  async removeBlock(name: string): Promise<void> {
    const link = path.join(this.root, 'block', name);
    this.detached.set(name, await fs.readlink(link));
    await fs.rm(link);
  }

  /** The device comes back (card re-inserted, driver re-bound, PCI rescan). */
  async reattachBlock(name: string): Promise<void> {
    const target = this.detached.get(name);
    if (target === undefined) throw new Error(`${name} was not removed`);
    await fs.symlink(target, path.join(this.root, 'block', name));
  }
}
