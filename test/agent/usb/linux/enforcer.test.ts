import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ObservedUsbDevice } from '../../../../agent/usb/usb-device.js';
import { LinuxUsbDeviceSource } from '../../../../agent/usb/usb-device-source.linux.js';
import { LinuxUsbEnforcer } from '../../../../agent/usb/usb-enforcer.linux.js';
import { FakeCommandRunner } from '../../../fakes/fake-command-runner.js';
import type { FakeSysfs } from '../../../fakes/fake-sysfs.js';
import { badUsb, hub, keyboard, usbStick } from '../../../fixtures/usb-devices/devices.js';
import { useFakeSysfs } from './support.js';

const fakeSysfs = useFakeSysfs();

async function setup(buses?: Parameters<typeof fakeSysfs>[0]): Promise<{ sysfs: FakeSysfs; runner: FakeCommandRunner; enforcer: LinuxUsbEnforcer; source: LinuxUsbDeviceSource }> {
  const sysfs = await fakeSysfs(buses ?? [{ bus: 1, authorizedDefault: 0 }]);
  const runner = new FakeCommandRunner();
  const enforcer = new LinuxUsbEnforcer({ sysfsRoot: sysfs.root, commands: runner, blockDeviceTimeoutMs: 1000, pollIntervalMs: 2 });
  return { sysfs, runner, enforcer, source: new LinuxUsbDeviceSource(sysfs.root) };
}

async function observed(source: LinuxUsbDeviceSource, key: string): Promise<ObservedUsbDevice> {
  const device = await source.read(key);
  if (!device) throw new Error(`${key} is not present`);
  return device;
}

const interfaceDirs = async (sysfs: FakeSysfs, key: string): Promise<string[]> => (await fs.readdir(sysfs.deviceDir(key))).filter((entry) => entry.includes(':'));

describe('LinuxUsbEnforcer', () => {
  it('says it is the Linux enforcer, verified on a real kernel by the VM test', async () => {
    const { enforcer } = await setup();
    expect(enforcer.platform).toBe('linux');
    expect(enforcer.verifiedOnRealOs).toBe(true);
  });

  it('sets authorized_default=0 on every root hub, including a second bus, so new devices arrive unauthorised', async () => {
    const { sysfs, enforcer } = await setup([{ bus: 1 }, { bus: 2, superSpeed: true, authorizedDefault: -1 }]);
    expect(await enforcer.prepare()).toEqual({ ok: true, actions: ['authorized_default=0 (usb1)', 'authorized_default=0 (usb2)'] });
    await sysfs.syncKernel();
    expect(await sysfs.attribute('usb1', 'authorized_default')).toBe('0');
    expect(await sysfs.attribute('usb2', 'authorized_default')).toBe('0');
    await sysfs.plug(usbStick, '2-1');
    expect(await sysfs.attribute('2-1', 'authorized')).toBe('0');
    expect(await interfaceDirs(sysfs, '2-1')).toEqual([]);
  });

  it('covers a root hub that appears later (a dock) on the next prepare', async () => {
    const { sysfs, enforcer } = await setup();
    await enforcer.prepare();
    await sysfs.addBus({ bus: 3, controller: '0000:3c:00.0' });
    expect((await enforcer.prepare()).actions).toContain('authorized_default=0 (usb3)');
    await sysfs.syncKernel();
    expect(await sysfs.attribute('usb3', 'authorized_default')).toBe('0');
  });

  it('allows a device by writing authorized=1, after which its interfaces appear', async () => {
    const { sysfs, enforcer, source } = await setup();
    await sysfs.plug(keyboard, '1-1');
    expect(await enforcer.apply(await observed(source, '1-1'), 'allow')).toEqual({ ok: true, actions: ['authorized=1 (1-1)'] });
    await sysfs.syncKernel();
    expect(await sysfs.attribute('1-1', 'authorized')).toBe('1');
    expect(await interfaceDirs(sysfs, '1-1')).toEqual(['1-1:1.0', '1-1:1.1']);
  });

  it('blocks an authorised device by writing authorized=0: interfaces and disk go, the device stays enumerated', async () => {
    const { sysfs, enforcer, source } = await setup([{ bus: 1 }]);
    await sysfs.plug(usbStick, '1-2');
    expect(sysfs.blockDevicesOf('1-2')).toEqual(['sdb']);
    expect(await enforcer.apply(await observed(source, '1-2'), 'block')).toEqual({ ok: true, actions: ['authorized=0 (1-2)'] });
    await sysfs.syncKernel();
    expect(await sysfs.attribute('1-2', 'authorized')).toBe('0');
    expect(await interfaceDirs(sysfs, '1-2')).toEqual([]);
    expect(sysfs.has('1-2')).toBe(true);
  });

  it('rejects a device by de-authorising it and then writing remove=1, which makes it disappear', async () => {
    const { sysfs, enforcer, source } = await setup();
    await sysfs.plug(badUsb, '1-3');
    const device = await observed(source, '1-3');
    expect(await enforcer.apply(device, 'reject')).toEqual({ ok: true, actions: ['authorized=0 (1-3)', 'remove=1 (1-3)'] });
    await sysfs.syncKernel();
    expect(sysfs.has('1-3')).toBe(false);
    expect(await source.read('1-3')).toBeNull();
    // Applying it again finds nothing left to do and still succeeds.
    expect(await enforcer.apply(device, 'reject')).toEqual({ ok: true, actions: ['already removed (1-3)'] });
  });

  it('rejecting on a kernel without the remove attribute leaves the device de-authorised and says so', async () => {
    const { sysfs, enforcer, source } = await setup();
    await sysfs.plug(usbStick, '1-1');
    await fs.rm(path.join(sysfs.deviceDir('1-1'), 'remove'));
    expect(await enforcer.apply(await observed(source, '1-1'), 'reject')).toEqual({
      ok: true,
      actions: ['authorized=0 (1-1)', 'remove attribute absent; left de-authorised (1-1)'],
    });
  });

  it('makes a stick read-only: authorises it, waits for its disk, and runs blockdev --setro on the disk and its partition', async () => {
    const { sysfs, enforcer, source, runner } = await setup();
    await sysfs.plug(usbStick, '1-1');
    const kernel = sysfs.runKernel(2);
    try {
      const outcome = await enforcer.apply(await observed(source, '1-1'), 'read-only');
      expect(outcome).toEqual({ ok: true, actions: ['authorized=1 (1-1)', 'blockdev --setro /dev/sdb', 'blockdev --setro /dev/sdb1'] });
    } finally {
      await kernel.stop();
    }
    expect(runner.calls.map(({ file, args }) => ({ file, args }))).toEqual([
      { file: 'blockdev', args: ['--setro', '/dev/sdb'] },
      { file: 'blockdev', args: ['--setro', '/dev/sdb1'] },
    ]);
    expect(await sysfs.attribute('1-1', 'authorized')).toBe('1');
  });

  it('fails closed when blockdev fails: the stick is de-authorised again and the error reported', async () => {
    const sysfs = await fakeSysfs([{ bus: 1 }]);
    const runner = new FakeCommandRunner().on(['--setro'], { code: 1, stdout: '', stderr: 'blockdev: cannot open /dev/sdb: Permission denied\n' });
    const enforcer = new LinuxUsbEnforcer({ sysfsRoot: sysfs.root, commands: runner, blockDeviceTimeoutMs: 200, pollIntervalMs: 2 });
    await sysfs.plug(usbStick, '1-1');
    const outcome = await enforcer.apply((await new LinuxUsbDeviceSource(sysfs.root).read('1-1'))!, 'read-only');
    expect(outcome).toEqual({
      ok: false,
      actions: ['authorized=1 (1-1)', 'authorized=0 (1-1)'],
      error: 'blockdev --setro /dev/sdb failed: blockdev: cannot open /dev/sdb: Permission denied',
    });
  });

  it('fails closed when a read-only device never shows a disk', async () => {
    const { sysfs, enforcer, source, runner } = await setup();
    await sysfs.plug(keyboard, '1-1');
    const outcome = await enforcer.apply(await observed(source, '1-1'), 'read-only');
    expect(outcome.ok).toBe(false);
    expect(outcome.actions).toEqual(['authorized=1 (1-1)', 'authorized=0 (1-1)']);
    expect(outcome.error).toMatch(/no block device appeared within 1000 ms \(1-1\); de-authorised/);
    expect(runner.calls).toEqual([]);
  });

  it('is idempotent: applying the same decision again leaves the same state and succeeds', async () => {
    const { sysfs, enforcer, source } = await setup();
    await sysfs.plug(hub, '1-1');
    const device = await observed(source, '1-1');
    for (const target of ['allow', 'allow', 'block', 'block'] as const) {
      expect((await enforcer.apply(device, target)).ok).toBe(true);
      await sysfs.syncKernel();
    }
    expect(await sysfs.attribute('1-1', 'authorized')).toBe('0');
    expect((await enforcer.prepare()).ok).toBe(true);
    expect((await enforcer.prepare()).ok).toBe(true);
  });

  it('de-authorising a hub takes the devices behind it away too', async () => {
    const { sysfs, enforcer, source } = await setup([{ bus: 1 }]);
    await sysfs.plug(hub, '1-1');
    await sysfs.plug(usbStick, '1-1.2');
    await enforcer.apply(await observed(source, '1-1'), 'block');
    await sysfs.syncKernel();
    expect(sysfs.has('1-1.2')).toBe(false);
  });

  it('returns ok:false with the OS error, without throwing, when sysfs refuses the write', async () => {
    const { sysfs, enforcer, source } = await setup();
    await sysfs.plug(usbStick, '1-1');
    const device = await observed(source, '1-1');
    // A directory where the attribute should be: opening it for writing fails (EISDIR), as a
    // read-only sysfs (EACCES/EROFS) would for a non-root agent.
    const attribute = path.join(sysfs.deviceDir('1-1'), 'authorized');
    await fs.rm(attribute);
    await fs.mkdir(attribute);
    const outcome = await enforcer.apply(device, 'allow');
    expect(outcome.ok).toBe(false);
    expect(outcome.actions).toEqual([]);
    expect(outcome.error).toMatch(/^authorized=1 \(1-1\) failed: EISDIR/);
  });

  it('reports a root hub it cannot prepare, and still prepares the others', async () => {
    const { sysfs, enforcer } = await setup([{ bus: 1 }, { bus: 2 }]);
    await fs.rm(path.join(sysfs.deviceDir('usb1'), 'authorized_default'));
    const outcome = await enforcer.prepare();
    expect(outcome.ok).toBe(false);
    expect(outcome.actions).toEqual(['authorized_default=0 (usb2)']);
    expect(outcome.error).toMatch(/^authorized_default=0 \(usb1\) failed: ENOENT/);
  });

  it('never creates an attribute file that does not exist', async () => {
    const { sysfs, enforcer, source } = await setup();
    await sysfs.plug(usbStick, '1-1');
    const device = await observed(source, '1-1');
    await fs.rm(path.join(sysfs.deviceDir('1-1'), 'authorized'));
    expect((await enforcer.apply(device, 'block')).ok).toBe(false);
    await expect(fs.access(path.join(sysfs.deviceDir('1-1'), 'authorized'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses a key that is not a device name', async () => {
    const { enforcer, source, sysfs } = await setup();
    await sysfs.plug(usbStick, '1-1');
    const device = await observed(source, '1-1');
    expect(await enforcer.apply({ ...device, key: '../../../etc' }, 'allow')).toMatchObject({ ok: false, actions: [] });
    expect(await enforcer.apply({ ...device, key: 'usb1' }, 'block')).toMatchObject({ ok: false, actions: [] });
  });
});
