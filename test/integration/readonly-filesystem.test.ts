import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaControl } from '../../agent/export/media-control.linux.js';
import { decideAsStorage } from '../../agent/export/storage-decision.js';
import { Journal } from '../../agent/journal/journal.js';
import { NodeCommandRunner } from '../../agent/platform/command-runner.js';
import { builtInPolicy } from '../../agent/policy/profiles.js';
import { FakeExportSysfs } from '../agent/export/fake-export-sysfs.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
const silent = winston.createLogger({ silent: true });
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function run(file: string, ...args: string[]): string {
  return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** Whether this machine lets the test attach a loop device and mount it (root, loop devices, mount). */
function canMount(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  try {
    run('losetup', '--version');
    run('mkfs.ext4', '-V');
    return true;
  } catch {
    return false;
  }
}

describe('read-only storage on a real file system (loop device, ext4)', { timeout: 60_000 }, () => {
  it.skipIf(!canMount())(`refuses create, modify, delete and rename once the agent has set the disk read-only${canMount() ? '' : ' — skipped: needs root, losetup and mkfs.ext4'}`, async () => {
    const work = await tempDir();
    const image = path.join(work, 'card.img');
    const mountPoint = path.join(work, 'mnt');
    await fs.mkdir(mountPoint);
    await fs.writeFile(image, Buffer.alloc(16 * 1024 * 1024));
    run('mkfs.ext4', '-q', '-F', image);
    const loop = run('losetup', '-f', '--show', image);
    cleanup.push(() => void execFileSync('losetup', ['-d', loop], { stdio: 'ignore' }));
    // The read-only flag belongs to the block device and outlives a detach: start writable, leave writable.
    run('blockdev', '--setrw', loop);
    cleanup.push(() => void execFileSync('blockdev', ['--setrw', loop], { stdio: 'ignore' }));
    // A file written before the card reaches the agent.
    run('mount', loop, mountPoint);
    try {
      await fs.writeFile(path.join(mountPoint, '住民票.txt'), 'before\n');
    } finally {
      run('umount', mountPoint);
    }

    // The kernel-shaped tree shows a removable disk `sdz` (no SCSI delete attribute) whose device node
    // is the real loop device: the agent's block-layer action (blockdev --setro) is what is under test.
    const tree = await FakeExportSysfs.create();
    cleanup.push(() => tree.dispose());
    await tree.block('sdz', 'pci0000:00/0000:00:17.0/ata4/host3/target3:0:0/3:0:0:0', { removable: true, model: 'Card Reader' });
    const node = path.join(tree.devRoot, 'sdz');
    await fs.rm(node);
    await fs.symlink(loop, node);
    const { journal } = await Journal.open(path.join(work, 'journal.jsonl'));
    cleanup.push(() => journal.close());
    const control = new MediaControl({
      sysfsRoot: tree.root,
      devRoot: tree.devRoot,
      commands: new NodeCommandRunner(),
      journal,
      logger: silent,
      decide: (channel, device) => decideAsStorage(channel, device.kind === 'block' ? device.medium.model : '', '', builtInPolicy('lgwan'), new Date()),
    });
    cleanup.push(() => control.dispose());
    await control.reconcile();
    expect(run('blockdev', '--getro', loop)).toBe('1');
    const [decision] = await journal.read(1, 10);
    expect(decision).toMatchObject({ type: 'export.blocked', data: { decision: 'read-only', enforced: { ok: true, actions: [`blockdev --setro ${node}`] } } });

    // Mounted now (the kernel mounts a read-only device read-only): every kind of change is refused.
    execFileSync('mount', [loop, mountPoint], { stdio: 'ignore' });
    cleanup.push(() => void execFileSync('umount', [mountPoint], { stdio: 'ignore' }));
    expect(run('findmnt', '-n', '-o', 'OPTIONS', mountPoint).split(',')).toContain('ro');
    const file = path.join(mountPoint, '住民票.txt');
    expect(await fs.readFile(file, 'utf8')).toBe('before\n');
    await expect(fs.writeFile(path.join(mountPoint, 'new.txt'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    await expect(fs.appendFile(file, 'changed')).rejects.toMatchObject({ code: 'EROFS' });
    await expect(fs.unlink(file)).rejects.toMatchObject({ code: 'EROFS' });
    await expect(fs.rename(file, path.join(mountPoint, 'renamed.txt'))).rejects.toMatchObject({ code: 'EROFS' });
    await expect(fs.mkdir(path.join(mountPoint, 'dir'))).rejects.toMatchObject({ code: 'EROFS' });
    // A remount read-write is refused too: the block layer holds the flag.
    expect(() => execFileSync('mount', ['-o', 'remount,rw', mountPoint], { stdio: 'ignore' })).toThrow();
    expect(await fs.readFile(file, 'utf8')).toBe('before\n');
  });
});
