import path from 'node:path';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import { listBlockMedia } from '../../../agent/export/block-media.linux.js';
import { MediaControl } from '../../../agent/export/media-control.linux.js';
import { decideAsStorage } from '../../../agent/export/storage-decision.js';
import { listThunderboltDevices } from '../../../agent/export/thunderbolt.linux.js';
import { Journal } from '../../../agent/journal/journal.js';
import { builtInPolicy, builtInPolicyDocument } from '../../../agent/policy/profiles.js';
import { validatePolicy, type Tier, type ValidatedPolicy } from '../../../shared/policy.js';
import { FakeCommandRunner } from '../../fakes/fake-command-runner.js';
import { useTempDirs } from '../../helpers/temp-dir.js';
import { FakeExportSysfs } from './fake-export-sysfs.js';

const tempDir = useTempDirs();
const silent = winston.createLogger({ silent: true });
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- journal data is free-form JSON; the assertions read deep into it
type LooseEntry = { type: string; data: Record<string, any> };

/** A PC with every non-USB export channel: DVD writer, SD card (and eMMC), Thunderbolt SSD, internal card reader, a USB stick. */
async function pc(): Promise<FakeExportSysfs> {
  const tree = await FakeExportSysfs.create();
  cleanup.push(() => tree.dispose());
  await tree.opticalDrive('sr0', 'sg1');
  await tree.mmc('mmcblk0', 'mmc0:aaaa', 'SD');
  await tree.mmc('mmcblk1', 'mmc1:0001', 'MMC');
  await tree.externalNvme('nvme1n1');
  await tree.block('sdc', 'pci0000:00/0000:00:17.0/ata3/host2/target2:0:0/2:0:0:0', { removable: true, model: 'Multi-Card Reader', deviceFiles: { delete: '' } });
  await tree.block('sdb', 'pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host0/target0:0:0/0:0:0:0', { removable: true, model: 'Cruzer Blade' });
  await tree.block('nvme0n1', 'pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0', { model: 'SAMSUNG MZVL2512HCJQ' });
  await tree.block('loop0', 'virtual/block', {});
  await tree.thunderboltDomain(0, 'user', true);
  await tree.thunderboltDevice('0-1', '0');
  return tree;
}

async function rig(tree: FakeExportSysfs, policy: ValidatedPolicy) {
  const { journal } = await Journal.open(path.join(await tempDir(), 'journal.jsonl'));
  cleanup.push(() => journal.close());
  const commands = new FakeCommandRunner();
  let current = policy;
  const control = new MediaControl({
    sysfsRoot: tree.root,
    devRoot: tree.devRoot,
    commands,
    journal,
    logger: silent,
    decide: (channel, device) =>
      device.kind === 'thunderbolt' ? decideAsStorage(channel, device.device.deviceName, device.device.uniqueId, current, new Date()) : decideAsStorage(channel, device.medium.model, device.medium.serial, current, new Date()),
  });
  cleanup.push(() => control.dispose());
  const entries = async (): Promise<LooseEntry[]> => await journal.read(1, 10_000);
  return { control, commands, entries, setPolicy: (next: ValidatedPolicy) => (current = next) };
}

const exportEntries = (entries: LooseEntry[]) => entries.filter((entry) => entry.type.startsWith('export.'));
const byName = (entries: LooseEntry[], name: string) => exportEntries(entries).filter((entry) => entry.data.device.name === name);

describe('non-USB export channels on Linux (sysfs / device-node / block-layer boundary)', () => {
  it('finds optical drives, SD cards, external PCIe disks and removable disks; not eMMC, internal NVMe, loop or USB-backed disks', async () => {
    const tree = await pc();
    const media = await listBlockMedia(tree.root);
    expect(media.map((medium) => [medium.name, medium.channel, medium.viaUsb])).toEqual([
      ['mmcblk0', 'sd-card', false],
      ['nvme1n1', 'external-pcie', false],
      ['sdb', 'removable-media', true],
      ['sdc', 'removable-media', false],
      ['sr0', 'optical', false],
    ]);
    expect(media.find((medium) => medium.name === 'sr0')).toMatchObject({ scsiGeneric: 'sg1', model: 'DVD+-RW DU-8A6SH' });
    expect(media.find((medium) => medium.name === 'mmcblk0')).toMatchObject({ mmcCard: 'mmc0:aaaa', partitions: ['mmcblk0p1'] });
    expect(media.find((medium) => medium.name === 'nvme1n1')?.pciDevice).toBe('devices/pci0000:00/0000:00:07.0/0000:20:00.0/0000:21:01.0/0000:2b:00.0');
    expect(listThunderboltDevices(tree.root)).toEqual([
      { name: '0-1', domain: 'domain0', authorized: '0', vendorName: 'OWC', deviceName: 'Envoy Express', uniqueId: 'dc010000-0000-8508-a22d-32ca6421cb16', security: 'user', canDeauthorize: true },
    ]);
  });

  it('on the My Number tier blocks every channel: optical writing denied, SD card unbound, external disk removed, card reader deleted, Thunderbolt tunnel kept closed', async () => {
    const tree = await pc();
    const { control, commands, entries } = await rig(tree, builtInPolicy('mynumber'));
    await control.reconcile();
    expect(await tree.nodeMode('sr0')).toBe('600');
    expect(await tree.nodeMode('sg1')).toBe('600');
    expect(commands.argvs()).toEqual([['--setro', path.join(tree.devRoot, 'sr0')]]);
    expect(await tree.read('bus/mmc/drivers/mmcblk/unbind')).toBe('mmc0:aaaa');
    expect(await tree.read('devices/pci0000:00/0000:00:07.0/0000:20:00.0/0000:21:01.0/0000:2b:00.0/remove')).toBe('1');
    expect(await tree.read('devices/pci0000:00/0000:00:17.0/ata3/host2/target2:0:0/2:0:0:0/delete')).toBe('1');
    expect(await tree.read('bus/thunderbolt/devices/0-1/authorized')).toBe('0');

    const journaled = await entries();
    expect(exportEntries(journaled).map((entry) => [entry.type, entry.data.channel, entry.data.device.name, entry.data.decision, entry.data.enforced.ok])).toEqual([
      ['export.blocked', 'thunderbolt', '0-1', 'block', true],
      ['export.blocked', 'sd-card', 'mmcblk0', 'block', true],
      ['export.blocked', 'external-pcie', 'nvme1n1', 'block', true],
      ['export.blocked', 'removable-media', 'sdc', 'block', true],
      ['export.blocked', 'optical', 'sr0', 'block', true],
    ]);
    const optical = byName(journaled, 'sr0')[0];
    expect(optical?.data.rule).toMatchObject({ kind: 'rule', label: 'removable storage', treatedAs: 'removable storage' });
    expect(optical?.data.enforced.actions).toEqual([`chmod 600 ${path.join(tree.devRoot, 'sr0')}`, `chmod 600 ${path.join(tree.devRoot, 'sg1')}`, `blockdev --setro ${path.join(tree.devRoot, 'sr0')}`]);
    expect(optical?.data.notEnforced.join(' ')).toMatch(/root/);
    expect(byName(journaled, 'mmcblk0')[0]?.data.enforced.actions).toEqual(['bus/mmc/drivers/mmcblk/unbind=mmc0:aaaa']);
  });

  it('on the LGWAN tier makes storage read-only (BLKROSET on disk and partitions) and lets the cdrom group read discs but not write', async () => {
    const tree = await pc();
    const { control, commands, entries } = await rig(tree, builtInPolicy('lgwan'));
    await control.reconcile();
    expect(await tree.nodeMode('sr0')).toBe('640');
    expect(commands.argvs()).toEqual(
      expect.arrayContaining([
        ['--setro', path.join(tree.devRoot, 'mmcblk0')],
        ['--setro', path.join(tree.devRoot, 'mmcblk0p1')],
        ['--setro', path.join(tree.devRoot, 'nvme1n1')],
        ['--setro', path.join(tree.devRoot, 'nvme1n1p1')],
        ['--setro', path.join(tree.devRoot, 'sdc')],
        ['--setro', path.join(tree.devRoot, 'sr0')],
      ]),
    );
    // The Thunderbolt PCIe tunnel is authorised so the disk appears; the disk is then read-only.
    expect(await tree.read('bus/thunderbolt/devices/0-1/authorized')).toBe('1');
    expect(exportEntries(await entries()).every((entry) => entry.type === 'export.blocked' && entry.data.decision === 'read-only')).toBe(true);
  });

  it('journals each decision once; drift is re-enforced and journaled as tampering', async () => {
    const tree = await pc();
    const { control, commands, entries } = await rig(tree, builtInPolicy('lgwan'));
    await control.reconcile();
    // The kernel applied BLKROSET.
    for (const name of ['mmcblk0', 'nvme1n1', 'sdc', 'sr0']) await tree.write(`block/${name}/ro`, '1');
    const count = (await entries()).length;
    commands.clear();
    await control.reconcile();
    expect((await entries()).length).toBe(count);
    expect(commands.calls).toEqual([]);

    await tree.write('block/mmcblk0/ro', '0');
    const { chmod } = await import('node:fs/promises');
    await chmod(path.join(tree.devRoot, 'sr0'), 0o666);
    await control.reconcile();
    const tamper = (await entries()).filter((entry) => entry.type === 'tamper.detected');
    expect(tamper.map((entry) => [entry.data.kind, entry.data.channel, entry.data.found])).toEqual([
      ['export-channel-drift', 'sd-card', 'ro=0'],
      ['export-channel-drift', 'optical', 'mode 666'],
    ]);
    expect(await tree.nodeMode('sr0')).toBe('640');
    expect(commands.argvs()).toContainEqual(['--setro', path.join(tree.devRoot, 'mmcblk0')]);
  });

  it('a removed device that comes back is decided and enforced again; one still present after its removal is tampering', async () => {
    const tree = await pc();
    const { control, entries } = await rig(tree, builtInPolicy('mynumber'));
    await control.reconcile();
    await tree.removeBlock('mmcblk0');
    await control.reconcile();
    await tree.reattachBlock('mmcblk0');
    await control.reconcile();
    const sd = (await entries()).filter((entry) => entry.data.channel === 'sd-card');
    expect(sd.map((entry) => [entry.type, entry.data.enforced.actions])).toEqual([
      ['export.blocked', ['bus/mmc/drivers/mmcblk/unbind=mmc0:aaaa']],
      ['export.blocked', ['bus/mmc/drivers/mmcblk/unbind=mmc0:aaaa']],
    ]);
    // The fake kernel never removed nvme1n1 and sdc: present after their removal, reported as drift and removed again.
    const drift = (await entries()).filter((entry) => entry.type === 'tamper.detected');
    expect(drift.map((entry) => [entry.data.device.name, entry.data.found])).toEqual(expect.arrayContaining([['nvme1n1', 'present again'], ['sdc', 'present again']]));
  });

  it('in audit mode journals what it would block and changes nothing', async () => {
    const tree = await pc();
    const document = { ...builtInPolicyDocument('mynumber'), mode: 'audit' as const };
    const audit = validatePolicy(document);
    if (!audit.ok) throw new Error(audit.error.message);
    const { control, commands, entries } = await rig(tree, audit.value);
    await control.reconcile();
    expect(commands.calls).toEqual([]);
    expect(await tree.nodeMode('sr0')).toBe('660');
    expect(await tree.read('bus/mmc/drivers/mmcblk/unbind')).toBe('');
    expect(exportEntries(await entries()).every((entry) => entry.data.audit === true && entry.data.decision === 'block' && entry.data.enforced.target === 'allow')).toBe(true);
  });

  it('says so when a Thunderbolt domain cannot de-authorize (security none) and when only USB/DP tunnels exist', async () => {
    const tree = await FakeExportSysfs.create();
    cleanup.push(() => tree.dispose());
    await tree.thunderboltDomain(0, 'none', false);
    await tree.thunderboltDevice('0-1', '1', 'CalDigit', 'TS4');
    await tree.thunderboltDomain(1, 'usbonly', false);
    await tree.thunderboltDevice('1-1', '1', 'Dell', 'WD19TB');
    const { control, entries } = await rig(tree, builtInPolicy('mynumber'));
    await control.reconcile();
    const [none, usbonly] = exportEntries(await entries());
    expect(none?.data).toMatchObject({ channel: 'thunderbolt', decision: 'block', enforced: { ok: false, error: 'the domain0 domain (security none) cannot de-authorize 0-1' } });
    expect(none?.data.notEnforced).toEqual(['the PCIe tunnel stays up; disks behind it are removed at the block layer instead']);
    expect(usbonly?.data).toMatchObject({ enforced: { ok: true, actions: ['no PCIe tunnels at security level usbonly'] } });
  });

  it.each<[Tier, string]>([
    ['mynumber', 'block'],
    ['lgwan', 'read-only'],
    ['internet', 'block'],
  ])('decides non-USB storage on the %s tier like an unregistered stick: %s', (tier, expected) => {
    for (const channel of ['optical', 'sd-card', 'external-pcie', 'removable-media', 'thunderbolt'] as const) {
      expect(decideAsStorage(channel, 'x', 'y', builtInPolicy(tier), new Date()).target).toBe(expected);
    }
  });
});
