import { describe, expect, it } from 'vitest';
import { applyOpticalPolicy, CD_DVD_KEY } from '../../../agent/export/optical.win32.js';
import { FakeRegistry } from '../../fakes/fake-registry.js';

describe('optical drives on Windows (Removable Storage Access: CD and DVD, at the registry boundary)', () => {
  it('names the documented policy key of the CD/DVD class', () => {
    expect(CD_DVD_KEY).toBe('HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\RemovableStorageDevices\\{53f56308-b6bf-11d0-94f2-00a0c91efb8b}');
  });

  it('read-only denies writing (burning) and leaves reading; a second pass writes nothing', async () => {
    const registry = new FakeRegistry();
    expect(await applyOpticalPolicy(registry, 'read-only')).toEqual({ ok: true, actions: [`set ${CD_DVD_KEY}\\Deny_Write=1`], error: null });
    expect(registry.get(CD_DVD_KEY, 'Deny_Write')).toBe(1);
    expect(registry.get(CD_DVD_KEY, 'Deny_Read')).toBeUndefined();
    registry.writes.length = 0;
    expect(await applyOpticalPolicy(registry, 'read-only')).toEqual({ ok: true, actions: [], error: null });
    expect(registry.writes).toEqual([]);
  });

  it('block denies reading and writing; allow removes both', async () => {
    const registry = new FakeRegistry();
    await applyOpticalPolicy(registry, 'block');
    expect([registry.get(CD_DVD_KEY, 'Deny_Write'), registry.get(CD_DVD_KEY, 'Deny_Read')]).toEqual([1, 1]);
    const allowed = await applyOpticalPolicy(registry, 'allow');
    expect(allowed.actions).toEqual([`delete ${CD_DVD_KEY}\\Deny_Write`, `delete ${CD_DVD_KEY}\\Deny_Read`]);
    expect(registry.get(CD_DVD_KEY, 'Deny_Write')).toBeUndefined();
  });

  it('repairs a value someone changed to 0 and reports a registry failure without throwing', async () => {
    const registry = new FakeRegistry();
    await registry.setDword(CD_DVD_KEY, 'Deny_Write', 0);
    expect((await applyOpticalPolicy(registry, 'read-only')).actions).toEqual([`set ${CD_DVD_KEY}\\Deny_Write=1`]);
    const denied = new FakeRegistry().failOn('setDword', CD_DVD_KEY);
    expect(await applyOpticalPolicy(denied, 'block')).toMatchObject({ ok: false, error: 'ERROR: Access is denied.; ERROR: Access is denied.' });
    const unreadable = new FakeRegistry().failOn('readValues', CD_DVD_KEY);
    expect((await applyOpticalPolicy(unreadable, 'block')).ok).toBe(false);
  });
});
