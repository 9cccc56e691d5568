import { describe, expect, it } from 'vitest';
import type { ObservedUsbDevice } from '../../../../agent/usb/usb-device.js';
import {
  ALLOW_INSTANCE_IDS_KEY,
  DENY_DEVICE_CLASSES_KEY,
  DENY_INSTANCE_IDS_KEY,
  REMOVABLE_DISKS_KEY,
  REMOVABLE_STORAGE_KEY,
  RESTRICTIONS_KEY,
  Win32UsbEnforcer,
  isPnpInstanceId,
  type Win32UsbEnforcerOptions,
} from '../../../../agent/usb/usb-enforcer.win32.js';
import { FakeCommandRunner } from '../../../fakes/fake-command-runner.js';
import { FakeRegistry } from '../../../fakes/fake-registry.js';

const PNPUTIL = 'C:\\Windows\\System32\\pnputil.exe';
const STICK_ID = 'USB\\VID_0930&PID_6545\\A1B2C3D4';
const STICK_DISK = 'USBSTOR\\DISK&VEN_KINGSTON&PROD_DATATRAVELER&REV_1.00\\A1B2C3D4&0';

function device(overrides: Partial<ObservedUsbDevice> = {}): ObservedUsbDevice {
  return {
    key: STICK_ID,
    identity: {
      vendorId: '0930',
      productId: '6545',
      serial: 'A1B2C3D4',
      name: 'DataTraveler',
      hash: 'h',
      parentHash: 'p',
      viaPort: '1-2',
      connectType: 'hotplug',
      interfaces: ['08:06:50'],
    },
    manufacturer: 'Kingston',
    isHub: false,
    authorized: true,
    blockDevices: [],
    ...overrides,
  };
}

function setup(options: Partial<Win32UsbEnforcerOptions> = {}): { runner: FakeCommandRunner; registry: FakeRegistry; enforcer: Win32UsbEnforcer } {
  const runner = new FakeCommandRunner();
  const registry = new FakeRegistry();
  return { runner, registry, enforcer: new Win32UsbEnforcer({ runner, registry, ...options }) };
}

describe('Win32UsbEnforcer.prepare', () => {
  it('turns on layered evaluation, denies new installs of the blocked setup classes and enables the instance-id lists', async () => {
    const { enforcer, registry, runner } = setup();
    const outcome = await enforcer.prepare();
    expect(outcome.ok).toBe(true);
    expect(outcome.actions).toEqual([
      `reg add ${RESTRICTIONS_KEY}\\AllowDenyLayered=1`,
      `reg add ${RESTRICTIONS_KEY}\\DenyDeviceClasses=1`,
      `reg add ${RESTRICTIONS_KEY}\\DenyDeviceClassesRetroactive=0`,
      `reg add ${RESTRICTIONS_KEY}\\DenyInstanceIDs=1`,
      `reg add ${RESTRICTIONS_KEY}\\DenyInstanceIDsRetroactive=0`,
      `reg add ${RESTRICTIONS_KEY}\\AllowInstanceIDs=1`,
      `reg add ${DENY_DEVICE_CLASSES_KEY}\\1="{4d36e967-e325-11ce-bfc1-08002be10318}"`,
      `reg add ${DENY_DEVICE_CLASSES_KEY}\\2="{4d36e965-e325-11ce-bfc1-08002be10318}"`,
      `reg add ${DENY_DEVICE_CLASSES_KEY}\\3="{eec5ad98-8080-425f-922a-dabf3de3f69a}"`,
      `reg add ${DENY_DEVICE_CLASSES_KEY}\\4="{6bdd1fc6-810f-11d0-bec7-08002be2092f}"`,
      `reg add ${DENY_DEVICE_CLASSES_KEY}\\5="{4d36e972-e325-11ce-bfc1-08002be10318}"`,
      `reg add ${DENY_DEVICE_CLASSES_KEY}\\6="{e0cbf06c-cd8b-4647-bb8a-263b43f0f974}"`,
    ]);
    expect(registry.get(RESTRICTIONS_KEY, 'DenyDeviceClassesRetroactive')).toBe(0);
    expect(registry.get(REMOVABLE_STORAGE_KEY, 'Deny_All')).toBeUndefined();
    expect(runner.calls).toEqual([]);
  });

  it('writes nothing on a second pass (reconcile calls it every few seconds)', async () => {
    const { enforcer, registry } = setup();
    await enforcer.prepare();
    const written = registry.writes.length;
    expect(await enforcer.prepare()).toEqual({ ok: true, actions: [] });
    expect(registry.writes.length).toBe(written);
  });

  it("keeps an administrator's own class entries and fills the next free number", async () => {
    const { enforcer, registry } = setup({ denySetupClasses: ['{4d36e967-e325-11ce-bfc1-08002be10318}', '{36fc9e60-c465-11cf-8056-444553540000}'] });
    await registry.setString(DENY_DEVICE_CLASSES_KEY, '1', '{4D36E967-E325-11CE-BFC1-08002BE10318}');
    const outcome = await enforcer.prepare();
    expect(outcome.actions.filter((action) => action.includes('DenyDeviceClasses\\'))).toEqual([`reg add ${DENY_DEVICE_CLASSES_KEY}\\2="{36fc9e60-c465-11cf-8056-444553540000}"`]);
    expect(registry.list(DENY_DEVICE_CLASSES_KEY)).toEqual({ '1': '{4D36E967-E325-11CE-BFC1-08002BE10318}', '2': '{36fc9e60-c465-11cf-8056-444553540000}' });
  });

  it('sets Deny_All for every removable storage class when the strict baseline is chosen', async () => {
    const { enforcer, registry } = setup({ denyAllRemovableStorage: true });
    const outcome = await enforcer.prepare();
    expect(outcome.actions).toContain(`reg add ${REMOVABLE_STORAGE_KEY}\\Deny_All=1`);
    expect(registry.get(REMOVABLE_STORAGE_KEY, 'Deny_All')).toBe(1);
  });

  it('reports a registry failure as ok:false with the error, without throwing', async () => {
    const { enforcer, registry } = setup();
    registry.failOn('setDword', RESTRICTIONS_KEY, 'ERROR: Access is denied.');
    expect(await enforcer.prepare()).toMatchObject({ ok: false, error: expect.stringContaining('Access is denied') });
  });
});

describe('Win32UsbEnforcer.apply', () => {
  it('blocks: out of the allow list, into the deny list, pnputil /disable-device with the exact instance id', async () => {
    const { enforcer, registry, runner } = setup();
    await registry.setString(ALLOW_INSTANCE_IDS_KEY, '1', STICK_ID);
    const outcome = await enforcer.apply(device(), 'block');
    expect(outcome).toEqual({
      ok: true,
      actions: [
        `reg delete ${ALLOW_INSTANCE_IDS_KEY}\\1 ("${STICK_ID}")`,
        `reg add ${DENY_INSTANCE_IDS_KEY}\\1="${STICK_ID}"`,
        `pnputil /disable-device "${STICK_ID}"`,
      ],
    });
    expect(runner.calls).toEqual([{ file: PNPUTIL, args: ['/disable-device', STICK_ID], options: undefined }]);
    expect(registry.list(DENY_INSTANCE_IDS_KEY)).toEqual({ '1': STICK_ID });
    expect(registry.list(ALLOW_INSTANCE_IDS_KEY)).toEqual({});
  });

  it('blocks idempotently: a device already disabled and listed gets no command and no write', async () => {
    const { enforcer, registry, runner } = setup();
    await enforcer.apply(device(), 'block');
    runner.clear();
    const writes = registry.writes.length;
    expect(await enforcer.apply(device({ authorized: false }), 'block')).toEqual({ ok: true, actions: [] });
    expect(runner.calls).toEqual([]);
    expect(registry.writes.length).toBe(writes);
  });

  it('rejects: blocks, then pnputil /remove-device (reinstall is refused by the instance-id deny list)', async () => {
    const { enforcer, runner } = setup();
    const outcome = await enforcer.apply(device(), 'reject');
    expect(outcome.ok).toBe(true);
    expect(outcome.actions).toEqual([`reg add ${DENY_INSTANCE_IDS_KEY}\\1="${STICK_ID}"`, `pnputil /disable-device "${STICK_ID}"`, `pnputil /remove-device "${STICK_ID}"`]);
    expect(runner.argvs()).toEqual([
      ['/disable-device', STICK_ID],
      ['/remove-device', STICK_ID],
    ]);
  });

  it('allows: out of the deny list, into the allow list, pnputil /enable-device', async () => {
    const { enforcer, registry, runner } = setup();
    await enforcer.apply(device(), 'block');
    runner.clear();
    const outcome = await enforcer.apply(device({ authorized: false }), 'allow');
    expect(outcome).toEqual({
      ok: true,
      actions: [`reg delete ${DENY_INSTANCE_IDS_KEY}\\1 ("${STICK_ID}")`, `reg add ${ALLOW_INSTANCE_IDS_KEY}\\1="${STICK_ID}"`, `pnputil /enable-device "${STICK_ID}"`],
    });
    expect(runner.argvs()).toEqual([['/enable-device', STICK_ID]]);
    expect(registry.list(DENY_INSTANCE_IDS_KEY)).toEqual({});
  });

  it('allows a storage device together with its disk child and rescans so the denied child install is retried', async () => {
    const { enforcer, runner } = setup();
    const outcome = await enforcer.apply(device({ blockDevices: [STICK_DISK], authorized: true }), 'allow');
    expect(outcome.actions).toEqual([`reg add ${ALLOW_INSTANCE_IDS_KEY}\\1="${STICK_ID}"`, `reg add ${ALLOW_INSTANCE_IDS_KEY}\\2="${STICK_DISK}"`, 'pnputil /scan-devices']);
    expect(runner.argvs()).toEqual([['/scan-devices']]);
  });

  it('allows idempotently: an enabled, listed device gets nothing', async () => {
    const { enforcer, runner } = setup();
    await enforcer.apply(device({ blockDevices: [STICK_DISK] }), 'allow');
    runner.clear();
    expect(await enforcer.apply(device({ blockDevices: [STICK_DISK] }), 'allow')).toEqual({ ok: true, actions: [] });
    expect(runner.calls).toEqual([]);
  });

  it('read-only: allows the device, sets Deny_Write on the removable-disk class and restarts the device once so it remounts', async () => {
    const { enforcer, registry, runner } = setup();
    const outcome = await enforcer.apply(device(), 'read-only');
    expect(outcome).toEqual({
      ok: true,
      actions: [`reg add ${ALLOW_INSTANCE_IDS_KEY}\\1="${STICK_ID}"`, `reg add ${REMOVABLE_DISKS_KEY}\\Deny_Write=1`, `pnputil /restart-device "${STICK_ID}"`],
    });
    expect(REMOVABLE_DISKS_KEY).toBe('HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\RemovableStorageDevices\\{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}');
    expect(registry.get(REMOVABLE_DISKS_KEY, 'Deny_Write')).toBe(1);
    runner.clear();
    expect(await enforcer.apply(device(), 'read-only')).toEqual({ ok: true, actions: [] });
    expect(runner.calls).toEqual([]);
  });

  it('keeps the class-wide Deny_Write while a read-only device is present, and lifts it when none is', async () => {
    const present = new Set([STICK_ID]);
    const { enforcer, registry } = setup({ isPresent: (key) => Promise.resolve(present.has(key)) });
    const other = device({ key: 'USB\\VID_0781&PID_5581\\4C530001' });
    await enforcer.apply(device(), 'read-only');
    const whileReadOnly = await enforcer.apply(other, 'allow');
    expect(whileReadOnly.actions).not.toContain(`reg delete ${REMOVABLE_DISKS_KEY}\\Deny_Write`);
    expect(registry.get(REMOVABLE_DISKS_KEY, 'Deny_Write')).toBe(1);
    present.delete(STICK_ID);
    const afterRemoval = await enforcer.apply(other, 'allow');
    expect(afterRemoval.actions).toEqual([`reg delete ${REMOVABLE_DISKS_KEY}\\Deny_Write`]);
    expect(registry.get(REMOVABLE_DISKS_KEY, 'Deny_Write')).toBeUndefined();
  });

  it('lifts Deny_Write when the read-only device itself is decided allow', async () => {
    const { enforcer, registry } = setup();
    await enforcer.apply(device(), 'read-only');
    const outcome = await enforcer.apply(device(), 'allow');
    expect(outcome.actions).toEqual([`reg delete ${REMOVABLE_DISKS_KEY}\\Deny_Write`]);
    expect(registry.get(REMOVABLE_DISKS_KEY, 'Deny_Write')).toBeUndefined();
  });

  it('reports a pnputil failure as ok:false with its output, keeping the actions that did happen', async () => {
    const { enforcer, runner } = setup();
    runner.on(['/disable-device'], { code: 1, stdout: 'Failed to disable device: Access is denied.', stderr: '' });
    const outcome = await enforcer.apply(device(), 'block');
    expect(outcome).toEqual({
      ok: false,
      actions: [`reg add ${DENY_INSTANCE_IDS_KEY}\\1="${STICK_ID}"`],
      error: `pnputil /disable-device "${STICK_ID}" failed: exit 1: Failed to disable device: Access is denied.`,
    });
  });

  it('still disables a device to block when the deny-list write fails (more blocking is safer)', async () => {
    const { enforcer, registry, runner } = setup();
    registry.failOn('setString', DENY_INSTANCE_IDS_KEY);
    const outcome = await enforcer.apply(device(), 'block');
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toContain('Access is denied');
    expect(runner.argvs()).toEqual([['/disable-device', STICK_ID]]);
  });

  it('does not enable a device to allow when its allow-list write fails (fail closed)', async () => {
    const { enforcer, registry, runner } = setup();
    registry.failOn('setString', ALLOW_INSTANCE_IDS_KEY);
    const outcome = await enforcer.apply(device({ authorized: false }), 'allow');
    expect(outcome.ok).toBe(false);
    expect(runner.calls).toEqual([]);
  });

  it('counts pnputil exit 3010 as done and says a reboot is needed', async () => {
    const { enforcer, runner } = setup();
    runner.on(['/disable-device'], { code: 3010, stdout: 'System reboot is needed to complete the operation.', stderr: '' });
    const outcome = await enforcer.apply(device(), 'block');
    expect(outcome.ok).toBe(true);
    expect(outcome.actions).toContain(`pnputil /disable-device "${STICK_ID}" (reboot required)`);
  });

  it('reports a timed-out or missing pnputil without throwing', async () => {
    const { enforcer, runner } = setup();
    runner.on(() => true, { code: null, stdout: '', stderr: '', error: 'ENOENT: spawn pnputil.exe ENOENT' });
    const outcome = await enforcer.apply(device(), 'reject');
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toContain('ENOENT');
  });

  /** Nothing Windows can produce: refused for every target, nothing run. */
  const impossible = [
    'USB\\VID_0930&PID_6545\\"; rm -rf /',
    'USB\\VID_0930&PID_6545\\A1 B2',
    'USB\\VID_0930&PID_6545\\A1,B2',
    '/remove-device',
    '-remove-device',
    '/remove-device\\x\\y',
    'USB\\VID_0930&PID_6545',
    'USB\\VID_0930&PID_6545\\A\\B',
    'USB\\VID_0930&PID_6545\\',
    'USB\\VID_0930&PID_6545\\A1B2\r\nC3',
    'USB\\VID_0930&PID_6545\\A1B2\u0000',
    'USB\\VID_0930&PID_6545\\ＡＢＣ',
    `USB\\VID_0930&PID_6545\\${'A'.repeat(300)}`,
    '',
  ];

  it.each(impossible)('refuses an instance id Windows cannot produce, %j, with ok:false and touches nothing', async (key) => {
    const { enforcer, registry, runner } = setup();
    for (const target of ['allow', 'block', 'reject', 'read-only'] as const) {
      const outcome = await enforcer.apply(device({ key }), target);
      expect(outcome.ok).toBe(false);
      expect(outcome.actions).toEqual([]);
      expect(outcome.error).toMatch(/^refused: not a PnP device instance id/);
    }
    expect(runner.calls).toEqual([]);
    expect(registry.writes).toEqual([]);
  });

  /** Legal in a serial, so a real stick can carry them: blocked like any other, as one argv element. */
  const legalButHostile = [
    'USB\\VID_0930&PID_6545\\A1B2"C3D4',
    'USB\\VID_0930&PID_6545\\";rm&-rf&/',
    'USB\\VID_0930&PID_6545\\A1|calc.exe>x',
    'USB\\VID_0930&PID_6545\\%COMSPEC%$(id)`id`',
    "USB\\VID_0930&PID_6545\\'/f'",
  ];

  it.each(legalButHostile)('blocks a device whose serial is %j, passing the id as exactly one argv element', async (key) => {
    const { enforcer, registry, runner } = setup();
    const outcome = await enforcer.apply(device({ key }), 'block');
    expect(outcome.ok).toBe(true);
    expect(runner.calls).toEqual([{ file: PNPUTIL, args: ['/disable-device', key], options: undefined }]);
    expect(registry.list(DENY_INSTANCE_IDS_KEY)).toEqual({ '1': key });
  });

  it('blocks a device with a wildcard in its serial but refuses to allow it (an allow must never match more)', async () => {
    const key = 'USB\\VID_0930&PID_6545\\*';
    const { enforcer, runner } = setup();
    expect((await enforcer.apply(device({ key }), 'block')).ok).toBe(true);
    expect(runner.argvs()).toEqual([['/disable-device', key]]);
    runner.clear();
    for (const target of ['allow', 'read-only'] as const) {
      const outcome = await enforcer.apply(device({ key, authorized: false }), target);
      expect(outcome).toMatchObject({ ok: false, actions: [], error: expect.stringMatching(/^refused: .* wildcard/) });
    }
    expect(runner.calls).toEqual([]);
  });

  it('refuses to allow a device whose storage child id is impossible, but still disables it to block', async () => {
    const bad = 'USBSTOR\\DISK\\x" /f & del';
    const { enforcer, runner } = setup();
    const allowed = await enforcer.apply(device({ blockDevices: [bad], authorized: false }), 'allow');
    expect(allowed).toMatchObject({ ok: false, actions: [] });
    expect(runner.calls).toEqual([]);
    const blocked = await enforcer.apply(device({ blockDevices: [bad] }), 'block');
    expect(blocked.ok).toBe(false);
    expect(blocked.error).toContain('refused child');
    expect(runner.argvs()).toEqual([['/disable-device', STICK_ID]]);
  });

  it('passes a legitimate instance id with & and generated parts as exactly one argv element', async () => {
    const id = 'USB\\VID_045E&PID_00DB\\6&870CE29&0&1';
    const { enforcer, runner } = setup();
    await enforcer.apply(device({ key: id }), 'block');
    expect(runner.calls.map((call) => call.args)).toEqual([['/disable-device', id]]);
  });
});

describe('isPnpInstanceId', () => {
  it.each([
    'USB\\VID_0930&PID_6545\\A1B2C3D4',
    'USB\\VID_045E&PID_00DB\\6&870CE29&0&1',
    'USBSTOR\\DISK&VEN_SANDISK&PROD_CRUZER&REV_1.00\\4C530001&0',
    'HID\\VID_046D&PID_C52B&MI_00\\7&1E5D3568&0&0000',
    'SWD\\WPDBUSENUM\\{0E1B2C3D-0000-1111-2222-333344445555}#0000000000100000',
    'SWD\\WPDBUSENUM\\_??_USBSTOR#DISK&VEN_KINGSTON&PROD_DT#A1B2C3D4&0#{53F56307-B6BF-11D0-94F2-00A0C91EFB8B}',
  ])('accepts %s', (id) => {
    expect(isPnpInstanceId(id)).toBe(true);
  });
});
