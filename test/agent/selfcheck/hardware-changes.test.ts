import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hardwareChangesCheck, readHardwareInventory } from '../../../agent/selfcheck/checks/hardware-changes.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();

/** A sysfs-shaped tree with class/net and block entries as the kernel lays them out (symlinks into devices/). */
class HardwareTree {
  constructor(readonly root: string) {}

  static async create(): Promise<HardwareTree> {
    const tree = new HardwareTree(await tempDir());
    await fs.mkdir(path.join(tree.root, 'class/net'), { recursive: true });
    await fs.mkdir(path.join(tree.root, 'block'), { recursive: true });
    return tree;
  }

  async nic(name: string, mac: string, device: string | null): Promise<void> {
    const real = device === null ? path.join(this.root, 'devices/virtual/net', name) : path.join(this.root, 'devices/pci0000:00', device, 'net', name);
    await fs.mkdir(real, { recursive: true });
    await fs.writeFile(path.join(real, 'address'), `${mac}\n`);
    if (device !== null) await fs.symlink('../..', path.join(real, 'device'));
    await fs.symlink(path.relative(path.join(this.root, 'class/net'), real), path.join(this.root, 'class/net', name));
  }

  async disk(name: string, parent: string, attributes: { model: string; serial: string; removable?: boolean }): Promise<void> {
    const deviceDir = path.join(this.root, 'devices', parent);
    const real = path.join(deviceDir, 'block', name);
    await fs.mkdir(real, { recursive: true });
    await fs.writeFile(path.join(real, 'removable'), attributes.removable ? '1\n' : '0\n');
    await fs.writeFile(path.join(real, 'size'), '1000215216\n');
    await fs.writeFile(path.join(deviceDir, 'model'), `${attributes.model}\n`);
    await fs.writeFile(path.join(deviceDir, 'serial'), `${attributes.serial}\n`);
    await fs.symlink('../..', path.join(real, 'device'));
    await fs.symlink(path.relative(path.join(this.root, 'block'), real), path.join(this.root, 'block', name));
  }

  async remove(kind: 'class/net' | 'block', name: string): Promise<void> {
    await fs.rm(path.join(this.root, kind, name));
  }
}

async function laptop(): Promise<HardwareTree> {
  const tree = await HardwareTree.create();
  await tree.nic('lo', '00:00:00:00:00:00', null);
  await tree.nic('enp0s31f6', '8c:16:45:aa:bb:cc', '0000:00:1f.6');
  await tree.nic('docker0', '02:42:ac:11:00:01', null);
  await tree.disk('nvme0n1', 'pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0', { model: 'SAMSUNG MZVL2512HCJQ', serial: 'S675NX0T123456' });
  await tree.disk('loop0', 'virtual', { model: '', serial: '' });
  await tree.disk('sdb', 'pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host0/target0:0:0/0:0:0:0', { model: 'Cruzer Blade', serial: '4C53', removable: true });
  return tree;
}

describe('hardware-changes', () => {
  it('inventories physical NICs and fixed disks only (no loopback, bridges, loop devices, USB sticks)', async () => {
    const tree = await laptop();
    const inventory = await readHardwareInventory(tree.root, '2026-11-25T00:00:00.000Z');
    expect(inventory.nics).toEqual([{ name: 'enp0s31f6', mac: '8c:16:45:aa:bb:cc', bus: '0000:00:1f.6' }]);
    expect(inventory.disks).toEqual([{ name: 'nvme0n1', model: 'SAMSUNG MZVL2512HCJQ', serial: 'S675NX0T123456', sizeSectors: '1000215216' }]);
  });

  it('records a baseline, passes while nothing changes, fails once for a new NIC and a removed disk, then takes the new baseline', async () => {
    const tree = await laptop();
    const stateFile = path.join(await tempDir(), 'hardware-inventory.json');
    const check = hardwareChangesCheck({ sysfsRoot: tree.root, stateFile, nowMs: () => Date.parse('2026-11-25T00:00:00Z') });
    expect(await check.run()).toMatchObject({ result: 'pass', evidence: { baseline: true } });
    expect(await check.run()).toMatchObject({ result: 'pass', evidence: { added: [], removed: [] } });

    await tree.nic('wlp2s0', 'a4:c3:f0:11:22:33', '0000:02:00.0');
    await tree.remove('block', 'nvme0n1');
    const changed = await check.run();
    expect(changed).toMatchObject({
      result: 'fail',
      evidence: { added: ['NIC wlp2s0 a4:c3:f0:11:22:33 (0000:02:00.0)'], removed: ['disk nvme0n1 SAMSUNG MZVL2512HCJQ S675NX0T123456'], previousAt: '2026-11-25T00:00:00.000Z' },
    });
    expect((await check.run()).result).toBe('pass');
  });

  it('replaces an unreadable previous inventory and says so (unknown)', async () => {
    const tree = await laptop();
    const stateFile = path.join(await tempDir(), 'hardware-inventory.json');
    await fs.writeFile(stateFile, '{"version":1,"nics":"garbage"}');
    const check = hardwareChangesCheck({ sysfsRoot: tree.root, stateFile, nowMs: () => 0 });
    expect((await check.run()).result).toBe('unknown');
    expect((await check.run()).result).toBe('pass');
  });
});
