// The real agent on a real Linux kernel (issue 8): a Debian 6.1 kernel under QEMU (TCG), the agent
// built from this checkout running as root in the guest, emulated USB devices hot-plugged over QMP.
// What it proves and what not: test/vm/README.md. Run: `npm run test:vm`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtInPolicyDocument } from '../../agent/policy/profiles.js';
import { policySigningKey } from '../helpers/policy-signing.js';
import { Vm, buildImage, findOnPath } from './vm.js';

const STATE = '/var/lib/sekimori';
const JOURNAL = `${STATE}/journal.jsonl`;
const AGENT_START = `cd /opt/sekimori && (node dist/agent/cli.js run --state ${STATE} >> /tmp/agent.log 2>&1 & echo $! > /tmp/agent.pid)`;

function skipReason(): string | null {
  if (process.platform !== 'linux') return 'Linux only';
  if (process.env.SEKIMORI_VM_TEST !== '1') return 'run it with npm run test:vm';
  if (findOnPath('qemu-system-x86_64') === null) return 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)';
  return null;
}
const skip = skipReason();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The parts of journal entries (agent/usb/device-control.ts, agent/policy-source.ts) the test reads. */
interface EntryData {
  readonly key?: string;
  readonly via?: string;
  readonly origin?: string;
  readonly device?: { readonly serial?: string; readonly id?: string; readonly interfaces?: readonly string[] };
  readonly rule?: { readonly kind?: string; readonly line?: number | null; readonly label?: string | null };
  readonly enforced?: { readonly ok?: boolean; readonly actions?: readonly string[] };
  readonly [field: string]: unknown;
}

interface Entry {
  readonly seq: number;
  readonly time: string;
  readonly type: string;
  readonly data: EntryData;
}

describe.skipIf(skip !== null)(`USB device control on a real kernel in QEMU${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let vm: Vm | null = null;
  let workDir = '';
  const journal: Entry[] = [];
  const timings: string[] = [];
  let plugCount = 0;

  const guest = () => vm!.shell;

  /** Reads the journal lines not seen yet (only complete, parseable lines). */
  async function readJournal(): Promise<Entry[]> {
    const result = await guest().run(`[ -f ${JOURNAL} ] && sed -n '${journal.length + 1},$p' ${JOURNAL}`);
    for (const line of result.output.split('\n')) {
      if (line.trim() === '') continue;
      try {
        journal.push(JSON.parse(line) as Entry);
      } catch {
        break; // a line still being written: read it next time
      }
    }
    return journal;
  }

  async function waitForEntry(predicate: (entry: Entry) => boolean, what: string, timeoutMs = 20_000, from = 0): Promise<Entry> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await readJournal()).slice(from).find(predicate);
      if (found) return found;
      if (Date.now() > deadline) {
        const log = await guest().run('tail -n 30 /tmp/agent.log').catch(() => ({ output: '(no log)' }));
        throw new Error(`no journal entry for ${what} within ${timeoutMs} ms; journal:\n${journal.map((entry) => `${entry.type} ${JSON.stringify(entry.data).slice(0, 300)}`).join('\n')}\nagent log:\n${log.output}`);
      }
      await sleep(150);
    }
  }

  /** Guest wall clock minus host wall clock (ms), measured over one command round trip. */
  async function clockOffset(): Promise<number> {
    const before = Date.now();
    const output = await guest().check('adjtimex');
    const after = Date.now();
    const seconds = Number(/tv_sec:\s*(\d+)/.exec(output)?.[1]);
    const micros = Number(/tv_usec:\s*(\d+)/.exec(output)?.[1]);
    return seconds * 1000 + micros / 1000 - (before + after) / 2;
  }

  const scsiAttached = async (): Promise<number> => Number((await guest().run('dmesg | grep -cE "Attached SCSI (removable )?disk"')).output.trim());
  /** The kernel's USB/SCSI log lines, for failure messages and the report. */
  const kernelLog = async (lines = 40): Promise<string> =>
    (await guest().run(`dmesg | grep -iE "usb|scsi|sd[a-z]|uas|authoriz" | tail -n ${lines}`)).output;
  /** "Never got a block device": no new `Attached SCSI` line in the kernel log (not /sys/block afterwards). */
  async function expectNoNewDisk(before: number, what: string): Promise<void> {
    const now = await scsiAttached();
    if (now !== before) {
      const attached = (await guest().run('dmesg | grep -E "Attached SCSI (removable )?disk"')).output;
      throw new Error(`${what}: "Attached SCSI" lines went from ${before} to ${now}:\n${attached}\nkernel log:\n${await kernelLog()}`);
    }
  }
  const usbKeyOf = async (serial: string): Promise<string> =>
    (await guest().run(`for d in /sys/bus/usb/devices/*; do [ -f $d/serial ] && [ "$(cat $d/serial)" = "${serial}" ] && basename $d; done`)).output.trim();
  const sysfs = async (key: string, attribute: string): Promise<string> => (await guest().check(`cat /sys/bus/usb/devices/${key}/${attribute}`)).trim();

  function diskImage(name: string, fat: boolean): string {
    const file = path.join(workDir, `${name}.img`);
    if (fat) {
      execFileSync('mkfs.vfat', ['-C', '-n', name.slice(0, 11).toUpperCase(), file, '8192'], { stdio: 'ignore' });
      const hello = path.join(workDir, 'hello.txt');
      fs.writeFileSync(hello, `hello from ${name}\n`);
      execFileSync('mcopy', ['-i', file, hello, '::HELLO.TXT']);
    } else {
      fs.writeFileSync(file, '');
      fs.truncateSync(file, 8 * 1024 * 1024);
    }
    return file;
  }

  /**
   * Hot-plugs one device over QMP, waits for the agent's decision on it and reports the time from
   * `device_add` to the decision (`device.attached`) and to the journaled enforcement (after the
   * `authorized` write), both converted from guest to host time.
   */
  async function plug(
    label: string,
    device: Record<string, unknown>,
    options: { serial?: string; disk?: string; uas?: boolean; expect?: string; waitForAgent?: boolean } = {},
  ): Promise<{ decision: Entry | null; attached: Entry | null; key: string | null; hostStart: number }> {
    plugCount++;
    const qmp = vm!.qmp;
    const id = `dev${plugCount}`;
    if (options.disk) {
      await qmp.execute('blockdev-add', { driver: 'raw', 'node-name': `disk${plugCount}`, file: { driver: 'file', filename: options.disk } });
    }
    const offset = await clockOffset();
    const from = journal.length;
    const hostStart = Date.now();
    if (options.uas) {
      // usb-uas stays detached until it has a disk: add the SCSI disk on its bus, then attach it.
      await qmp.execute('device_add', { driver: 'usb-uas', bus: 'xhci.0', id, ...device });
      await qmp.execute('device_add', { driver: 'scsi-hd', bus: `${id}.0`, drive: `disk${plugCount}`, id: `${id}-hd`, serial: options.serial });
      const attached = await qmp.execute('qom-get', { path: `/machine/peripheral/${id}`, property: 'attached' });
      if (attached !== true) await qmp.execute('qom-set', { path: `/machine/peripheral/${id}`, property: 'attached', value: true });
    } else {
      await qmp.execute('device_add', { bus: 'xhci.0', id, ...device, ...(options.disk ? { drive: `disk${plugCount}` } : {}) });
    }
    if (options.waitForAgent === false) return { decision: null, attached: null, key: null, hostStart };
    const serial = options.serial;
    const matches = (entry: Entry): boolean =>
      serial !== undefined ? entry.data.device?.serial === serial : entry.data.device?.id === options.expect;
    const decision = await waitForEntry((entry) => /^device\.(allowed|blocked|readonly)$/.test(entry.type) && matches(entry), label, 20_000, from);
    const attached = journal.slice(from).find((entry) => entry.type === 'device.attached' && matches(entry)) ?? null;
    const toHost = (entry: Entry): number => Date.parse(entry.time) - offset - hostStart;
    timings.push(
      `${label}: device_add → decision ${attached ? Math.round(toHost(attached)) : '?'} ms, → enforced (${(decision.data.enforced?.actions ?? []).join(', ')}) ${Math.round(toHost(decision))} ms (via ${decision.data.via ?? '?'})`,
    );
    return { decision, attached, key: decision.data.key as string, hostStart };
  }

  beforeAll(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sekimori-vm-'));
    const imageStarted = Date.now();
    const image = await buildImage();
    timings.push(`image build/cache: ${Date.now() - imageStarted} ms (${image})`);
    vm = await Vm.start({ image, workDir, append: ['usb_storage.delay_use=0'] });
    timings.push(`boot to the guest's command loop: ${vm.bootMs} ms`);

    // The agent's state directory: installer config (tier, pinned key) and a signed policy.
    const key = policySigningKey();
    const document = builtInPolicyDocument('mynumber');
    document.version = 2;
    document.usb.rules.unshift(
      'allow id 46f4:0001 serial "ALLOWED1" label "registered"',
      'allow id 46f4:0001 serial "RO1" label "registered (read-only)"',
    );
    document.usb.readOnly = ['serial "RO1"'];
    const config = { tier: 'mynumber', usb: { reconcileMs: 500 }, policyPublicKey: key.publicKey };
    const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64');
    await guest().check(
      `mkdir -p ${STATE} && chmod 700 ${STATE} && echo ${b64(config)} | base64 -d > ${STATE}/config.json && echo ${b64(key.sign(document))} | base64 -d > ${STATE}/policy.json`,
    );
  }, 240_000);

  afterAll(async () => {
    if (timings.length > 0) console.log(`QEMU USB test timings (host clock; guest journal times converted):\n  ${timings.join('\n  ')}`);
    if (vm) {
      const kernel = await vm.shell.run('dmesg | grep -iE "usb|scsi|sd[a-z]|authoriz" | tail -n 80', 5000).catch(() => null);
      if (kernel && process.env.SEKIMORI_VM_VERBOSE === '1') console.log(`guest kernel log (USB/SCSI):\n${kernel.output}`);
      await vm.stop();
    }
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  }, 30_000);

  it('starts the agent, which sets default-deny itself (authorized_default 1 → 0 on every root hub)', async () => {
    expect((await guest().check('cat /sys/bus/usb/devices/usb*/authorized_default')).trim().split('\n')).toEqual(['1', '1']);
    const started = Date.now();
    await guest().check(AGENT_START);
    await waitForEntry((entry) => entry.type === 'policy.applied' && entry.data.origin === 'signed', 'policy.applied (signed)', 45_000);
    await waitForEntry((entry) => entry.type === 'device.allowed' || entry.type === 'device.blocked' || entry.type === 'agent.started', 'agent start', 5000).catch(() => undefined);
    const log = await guest().check('cat /tmp/agent.log');
    expect(log).toContain('device control: enforced');
    // Default-deny is set before the first reconcile pass; wait for it rather than race it.
    for (let i = 0; i < 50 && (await guest().check('cat /sys/bus/usb/devices/usb*/authorized_default')).includes('1'); i++) await sleep(100);
    expect((await guest().check('cat /sys/bus/usb/devices/usb*/authorized_default')).trim().split('\n')).toEqual(['0', '0']);
    timings.push(`agent start to signed policy applied: ${Date.now() - started} ms`);
    const applied = journal.find((entry) => entry.type === 'policy.applied' && entry.data.origin === 'signed')!;
    expect(applied.data).toMatchObject({ version: 2, tier: 'mynumber' });
    const usbLib = /node-usb unavailable|hotplug events unavailable/.test(log) ? 'node-usb did NOT load: reconcile pass only' : 'node-usb loaded (hotplug events)';
    timings.push(`agent event source: ${usbLib}`);
  }, 90_000);

  it('a usb-storage stick (usb_storage.delay_use=0) never gets a block device; device.blocked names the rule', async () => {
    const before = await scsiAttached();
    const { decision, key } = await plug('usb-storage BLOCK1', { driver: 'usb-storage', serial: 'BLOCK1' }, { serial: 'BLOCK1', disk: diskImage('block1', false) });
    expect(decision!.type).toBe('device.blocked');
    expect(decision!.data.rule).toMatchObject({ kind: 'rule', label: 'removable storage' });
    expect(decision!.data.rule?.line).toEqual(expect.any(Number));
    expect(decision!.data.enforced).toMatchObject({ ok: true, actions: [`authorized=0 (${key})`] });
    await sleep(2500); // an authorised stick would have its sdX within ~1.2 s
    expect(await sysfs(key!, 'authorized')).toBe('0');
    await expectNoNewDisk(before, 'usb-storage BLOCK1');
    expect((await guest().run('ls /sys/block | grep "^sd"')).output.trim()).toBe('');
  });

  it('a usb-uas stick never gets a block device either', async () => {
    const before = await scsiAttached();
    const { decision, key } = await plug('usb-uas UAS1', { serial: 'UAS1' }, { serial: 'UAS1', disk: diskImage('uas1', false), uas: true });
    expect(decision!.type).toBe('device.blocked');
    expect(decision!.data.rule).toMatchObject({ kind: 'rule', label: 'removable storage' });
    expect(decision!.data.device?.interfaces).toContain('08:06:62');
    await sleep(2500);
    expect(await sysfs(key!, 'authorized')).toBe('0');
    await expectNoNewDisk(before, 'usb-uas UAS1');
  });

  it('a stick allowed by serial becomes a block device and mounts', async () => {
    const before = await scsiAttached();
    const { decision, key } = await plug('usb-storage ALLOWED1', { driver: 'usb-storage', serial: 'ALLOWED1' }, { serial: 'ALLOWED1', disk: diskImage('allowed1', true) });
    expect(decision!.type).toBe('device.allowed');
    expect(decision!.data.rule).toMatchObject({ kind: 'rule', line: 1, label: 'registered' });
    expect(decision!.data.enforced).toMatchObject({ ok: true, actions: [`authorized=1 (${key})`] });
    const disk = await waitForDisk(key!);
    expect(await scsiAttached()).toBe(before + 1);
    await guest().check(`mount -t vfat /dev/${disk} /mnt/a`);
    expect((await guest().check('cat /mnt/a/HELLO.TXT')).trim()).toBe('hello from allowed1');
    await guest().check('echo written > /mnt/a/NEW.TXT && sync && umount /mnt/a');
  });

  it('a stick allowed read-only gets a read-only block device: writes fail', async () => {
    const { decision, key } = await plug('usb-storage RO1 (read-only)', { driver: 'usb-storage', serial: 'RO1' }, { serial: 'RO1', disk: diskImage('ro1', true) });
    expect(decision!.type).toBe('device.readonly');
    expect(decision!.data.rule).toMatchObject({ kind: 'rule', line: 2 });
    const disk = await waitForDisk(key!);
    expect(decision!.data.enforced?.ok).toBe(true);
    expect(decision!.data.enforced?.actions).toContain(`blockdev --setro /dev/${disk}`);
    expect(await guest().check(`cat /sys/block/${disk}/ro`)).toBe('1\n');
    const rawWrite = await guest().run(`dd if=/dev/zero of=/dev/${disk} bs=512 count=1 conv=fsync`);
    expect(rawWrite.code).not.toBe(0);
    const mounted = await guest().run(`mount -t vfat /dev/${disk} /mnt/b`);
    expect(mounted.code).toBe(0);
    expect((await guest().check('cat /mnt/b/HELLO.TXT')).trim()).toBe('hello from ro1');
    const write = await guest().run('echo x > /mnt/b/NEW.TXT');
    expect(write.code).not.toBe(0);
    expect(write.output).toMatch(/Read-only file system/);
    timings.push(`read-only stick: raw write → "${rawWrite.output.trim().split('\n')[0]}"; file write → "${write.output.trim()}"`);
    await guest().run('umount /mnt/b');
  });

  it('a keyboard (usb-kbd) stays usable (authorised) while the stick rules apply', async () => {
    const { decision, key } = await plug('usb-kbd', { driver: 'usb-kbd' }, { expect: '0627:0001' });
    expect(decision!.type).toBe('device.allowed');
    expect(decision!.data.rule).toMatchObject({ label: 'keyboard / mouse' });
    expect(await sysfs(key!, 'authorized')).toBe('1');
    // The HID driver bound: an input device exists for it.
    for (let i = 0; i < 40 && !(await guest().run(`ls -d /sys/bus/usb/devices/${key}:1.0/*/input/input* 2>/dev/null`)).output.trim(); i++) await sleep(100);
    expect((await guest().run(`ls -d /sys/bus/usb/devices/${key}:1.0/*/input/input*`)).code).toBe(0);
  });

  it('a USB network adapter (usb-net) is blocked and no network interface appears', async () => {
    const interfacesBefore = (await guest().check('ls /sys/class/net')).trim();
    const { decision, key } = await plug('usb-net', { driver: 'usb-net' }, { expect: '0525:a4a2' });
    expect(decision!.type).toBe('device.blocked');
    expect(decision!.data.rule).toMatchObject({ kind: 'rule', label: 'USB network adapter' });
    await sleep(2000);
    expect(await sysfs(key!, 'authorized')).toBe('0');
    expect((await guest().check('ls /sys/class/net')).trim()).toBe(interfacesBefore);
  });

  it('default deny outlives the agent (SIGKILL); the restarted agent journals the device on its reconcile pass', async () => {
    await guest().check('kill -9 $(cat /tmp/agent.pid)');
    for (let i = 0; i < 20 && (await guest().run('kill -0 $(cat /tmp/agent.pid) 2>/dev/null && ! grep -q "^State:.*Z" /proc/$(cat /tmp/agent.pid)/status')).code === 0; i++) await sleep(100);
    const before = await scsiAttached();
    const from = journal.length;
    await plug('usb-storage AFTERKILL1 (agent dead)', { driver: 'usb-storage', serial: 'AFTERKILL1' }, { serial: 'AFTERKILL1', disk: diskImage('afterkill1', false), waitForAgent: false });
    let key = '';
    for (let i = 0; i < 50 && !(key = await usbKeyOf('AFTERKILL1')); i++) await sleep(100);
    expect(key).not.toBe('');
    await sleep(3000);
    expect(await sysfs(key, 'authorized')).toBe('0');
    await expectNoNewDisk(before, 'AFTERKILL1 with the agent dead');
    expect(await readJournal()).toHaveLength(from); // nobody journaled it: the kernel alone kept it out

    const restarted = Date.now();
    await guest().check(AGENT_START);
    const decision = await waitForEntry((entry) => entry.type === 'device.blocked' && entry.data.device?.serial === 'AFTERKILL1', 'AFTERKILL1 after restart', 45_000, from);
    expect(decision.data).toMatchObject({ key, via: 'reconcile', rule: { label: 'removable storage' } });
    timings.push(`agent restart to AFTERKILL1 journaled by reconcile: ${Date.now() - restarted} ms`);
    await expectNoNewDisk(before, 'AFTERKILL1 after the restart');
  }, 90_000);

  async function waitForDisk(key: string): Promise<string> {
    for (let i = 0; i < 100; i++) {
      const found = (await guest().run(`ls /sys/bus/usb/devices/${key}/${key}:1.0/host*/target*/*/block 2>/dev/null`)).output.trim();
      if (found) return found.split('\n')[0]!;
      await sleep(100);
    }
    throw new Error(`no block device for ${key}`);
  }
});
