import { describe, expect, it } from 'vitest';
import type { ObservedUsbDevice } from '../../../../agent/usb/usb-device.js';
import { DarwinUsbEnforcer, NOT_ENFORCEABLE, isBsdDiskName, parseDiskInfo } from '../../../../agent/usb/usb-enforcer.darwin.js';
import { FakeCommandRunner } from '../../../fakes/fake-command-runner.js';

const DISKUTIL = '/usr/sbin/diskutil';

function device(overrides: Partial<ObservedUsbDevice> = {}, interfaces = ['08:06:50']): ObservedUsbDevice {
  return {
    key: '0x14200000',
    identity: { vendorId: '0930', productId: '6545', serial: 'A1B2C3D4', name: 'DataTraveler', hash: 'h', parentHash: 'p', viaPort: '1-2', connectType: 'hotplug', interfaces },
    manufacturer: 'Kingston',
    isHub: false,
    authorized: null,
    blockDevices: ['disk4', 'disk4s1'],
    ...overrides,
  };
}

/** `diskutil info -plist` output for a volume, trimmed to what matters plus some noise. */
function infoPlist(volume: { mountPoint?: string; writable?: boolean; filesystem?: string }): { code: number; stdout: string; stderr: string } {
  const stdout = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<plist version="1.0">',
    '<dict>',
    '\t<key>DeviceIdentifier</key>',
    '\t<string>disk4s1</string>',
    ...(volume.filesystem === undefined ? [] : ['\t<key>FilesystemType</key>', `\t<string>${volume.filesystem}</string>`]),
    '\t<key>MountPoint</key>',
    `\t<string>${volume.mountPoint ?? ''}</string>`,
    '\t<key>WritableVolume</key>',
    `\t<${volume.writable ? 'true' : 'false'}/>`,
    '</dict>',
    '</plist>',
  ].join('\n');
  return { code: 0, stdout, stderr: '' };
}

const GONE = { code: 1, stdout: 'Could not find disk: /dev/disk4\n', stderr: '' };

function setup(): { runner: FakeCommandRunner; enforcer: DarwinUsbEnforcer } {
  const runner = new FakeCommandRunner();
  return { runner, enforcer: new DarwinUsbEnforcer({ runner }) };
}

describe('DarwinUsbEnforcer', () => {
  it('says it has no default-deny instead of pretending', async () => {
    const { enforcer, runner } = setup();
    const outcome = await enforcer.prepare();
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toContain(NOT_ENFORCEABLE);
    expect(runner.calls).toEqual([]);
    expect(enforcer.verifiedOnRealOs).toBe(false);
  });

  it('blocks a USB stick: unmountDisk force, then eject, on the whole disk, with exact argv', async () => {
    const { enforcer, runner } = setup();
    runner.on(['info'], infoPlist({ mountPoint: '/Volumes/STICK', writable: true, filesystem: 'msdos' }));
    const outcome = await enforcer.apply(device(), 'block');
    expect(outcome).toEqual({ ok: true, actions: ['diskutil unmountDisk force /dev/disk4', 'diskutil eject /dev/disk4'] });
    expect(runner.calls.every((call) => call.file === DISKUTIL)).toBe(true);
    expect(runner.argvs()).toEqual([
      ['info', '-plist', '/dev/disk4'],
      ['unmountDisk', 'force', '/dev/disk4'],
      ['eject', '/dev/disk4'],
    ]);
  });

  it('rejects a stick the same way (eject is the closest macOS has to removal)', async () => {
    const { enforcer } = setup();
    expect((await enforcer.apply(device(), 'reject')).actions).toEqual(['diskutil unmountDisk force /dev/disk4', 'diskutil eject /dev/disk4']);
  });

  it('blocks idempotently: a disk already ejected is left alone and the outcome is ok', async () => {
    const { enforcer, runner } = setup();
    runner.on(['info'], GONE);
    expect(await enforcer.apply(device(), 'block')).toEqual({ ok: true, actions: [] });
    expect(runner.argvs()).toEqual([['info', '-plist', '/dev/disk4']]);
  });

  it('allows by doing nothing', async () => {
    const { enforcer, runner } = setup();
    expect(await enforcer.apply(device(), 'allow')).toEqual({ ok: true, actions: [] });
    expect(runner.calls).toEqual([]);
  });

  it('makes a mounted writable volume read-only: unmount, then mount readOnly', async () => {
    const { enforcer, runner } = setup();
    runner.on(['info'], infoPlist({ mountPoint: '/Volumes/STICK', writable: true, filesystem: 'msdos' }));
    const outcome = await enforcer.apply(device(), 'read-only');
    expect(outcome).toEqual({ ok: true, actions: ['diskutil unmount force /dev/disk4s1', 'diskutil mount readOnly /dev/disk4s1'] });
    expect(runner.argvs()).toEqual([
      ['info', '-plist', '/dev/disk4s1'],
      ['unmount', 'force', '/dev/disk4s1'],
      ['mount', 'readOnly', '/dev/disk4s1'],
    ]);
  });

  it('read-only is idempotent: a volume already mounted read-only is not touched', async () => {
    const { enforcer, runner } = setup();
    runner.on(['info'], infoPlist({ mountPoint: '/Volumes/STICK', writable: false, filesystem: 'msdos' }));
    expect(await enforcer.apply(device(), 'read-only')).toEqual({ ok: true, actions: [] });
    expect(runner.argvs()).toEqual([['info', '-plist', '/dev/disk4s1']]);
  });

  it('mounts an unmounted volume read-only, and skips a slice with no file system', async () => {
    const { enforcer, runner } = setup();
    runner.on((_file, args) => args[2] === '/dev/disk4s1', infoPlist({ filesystem: 'exfat' }));
    runner.on((_file, args) => args[2] === '/dev/disk4s2', infoPlist({}));
    const outcome = await enforcer.apply(device({ blockDevices: ['disk4', 'disk4s1', 'disk4s2'] }), 'read-only');
    expect(outcome).toEqual({ ok: true, actions: ['diskutil mount readOnly /dev/disk4s1'] });
  });

  it('treats an unpartitioned whole disk as the volume', async () => {
    const { enforcer, runner } = setup();
    runner.on(['info'], infoPlist({ mountPoint: '/Volumes/CARD', writable: true, filesystem: 'msdos' }));
    const outcome = await enforcer.apply(device({ blockDevices: ['disk6'] }), 'read-only');
    expect(outcome.actions).toEqual(['diskutil unmount force /dev/disk6', 'diskutil mount readOnly /dev/disk6']);
  });

  it('reports a phone or network adapter block as not enforceable, with no command run', async () => {
    const { enforcer, runner } = setup();
    for (const interfaces of [['06:01:01'], ['ff:ff:00'], ['02:06:00', '0a:00:00'], ['e0:01:01']]) {
      const outcome = await enforcer.apply(device({ blockDevices: [] }, interfaces), 'block');
      expect(outcome.ok).toBe(false);
      expect(outcome.error).toContain(NOT_ENFORCEABLE);
    }
    expect(runner.calls).toEqual([]);
  });

  it('ejects the storage of a BadUSB stick but reports its keyboard function unenforced', async () => {
    const { enforcer } = setup();
    const outcome = await enforcer.apply(device({}, ['08:06:50', '03:01:01']), 'reject');
    expect(outcome.ok).toBe(false);
    expect(outcome.actions).toEqual(['diskutil unmountDisk force /dev/disk4', 'diskutil eject /dev/disk4']);
    expect(outcome.error).toBe(`reject of a non-storage function (interfaces 08:06:50, 03:01:01) is ${NOT_ENFORCEABLE}`);
  });

  it('reports a diskutil failure as ok:false with its output and stops, without throwing', async () => {
    const { enforcer, runner } = setup();
    runner.on(['info'], infoPlist({ mountPoint: '/Volumes/STICK', writable: true }));
    runner.on(['unmountDisk'], { code: 1, stdout: '', stderr: 'Unmount of disk4 failed: at least one volume could not be unmounted\n' });
    const outcome = await enforcer.apply(device(), 'block');
    expect(outcome).toEqual({
      ok: false,
      actions: [],
      error: 'diskutil unmountDisk force /dev/disk4 failed: exit 1: Unmount of disk4 failed: at least one volume could not be unmounted',
    });
    expect(runner.callsTo('eject')).toEqual([]);
  });

  it('reports a diskutil that cannot run (timeout) as ok:false', async () => {
    const { enforcer, runner } = setup();
    runner.on(() => true, { code: null, stdout: '', stderr: '', error: 'timed out after 30000 ms (SIGKILL)' });
    const outcome = await enforcer.apply(device(), 'block');
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toContain('timed out');
  });

  it.each(['disk4; rm -rf /', '-force', '../disk4', 'disk4s1 disk5', '/dev/disk4', 'disk', 'sda', `disk${'1'.repeat(50)}`])(
    'refuses a hostile BSD name %j and runs nothing',
    async (name) => {
      const { enforcer, runner } = setup();
      for (const target of ['allow', 'block', 'reject', 'read-only'] as const) {
        const outcome = await enforcer.apply(device({ blockDevices: [name] }), target);
        expect(outcome).toMatchObject({ ok: false, actions: [], error: expect.stringMatching(/^refused: not a BSD disk name/) });
      }
      expect(runner.calls).toEqual([]);
    },
  );

  it('accepts whole disks, slices and APFS snapshot slices', () => {
    for (const name of ['disk0', 'disk4s1', 'disk5s1s1']) expect(isBsdDiskName(name)).toBe(true);
  });

  it('parses a single-line plist too', () => {
    expect(parseDiskInfo('<dict><key>FilesystemType</key><string>apfs</string><key>MountPoint</key><string>/Volumes/X</string><key>WritableVolume</key><true/></dict>')).toEqual({
      kind: 'present',
      mountPoint: '/Volumes/X',
      writable: true,
      hasFilesystem: true,
    });
  });
});
