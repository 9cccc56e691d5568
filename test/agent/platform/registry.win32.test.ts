import { describe, expect, it } from 'vitest';
import { RegExeRegistry, parseRegQuery } from '../../../agent/platform/registry.win32.js';
import { FakeCommandRunner } from '../../fakes/fake-command-runner.js';

const KEY = 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\RemovableStorageDevices\\{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}';
const NOT_FOUND = { code: 1, stdout: '', stderr: 'ERROR: The system was unable to find the specified registry key or value.\r\n' };

function setup(): { runner: FakeCommandRunner; registry: RegExeRegistry } {
  const runner = new FakeCommandRunner();
  return { runner, registry: new RegExeRegistry(runner, 'C:\\Windows\\System32\\reg.exe') };
}

describe('RegExeRegistry', () => {
  it('writes a DWORD with exactly this reg.exe argv', async () => {
    const { runner, registry } = setup();
    expect(await registry.setDword(KEY, 'Deny_Write', 1)).toEqual({ ok: true });
    expect(runner.calls).toEqual([
      { file: 'C:\\Windows\\System32\\reg.exe', args: ['add', KEY, '/v', 'Deny_Write', '/t', 'REG_DWORD', '/d', '1', '/f', '/reg:64'], options: undefined },
    ]);
  });

  it('writes a string value as one argv element, whatever it contains', async () => {
    const { runner, registry } = setup();
    const id = 'USB\\VID_0930&PID_6545\\A1B2C3D4';
    await registry.setString(`${KEY}\\List`, '1', id);
    expect(runner.argvs()).toEqual([['add', `${KEY}\\List`, '/v', '1', '/t', 'REG_SZ', '/d', id, '/f', '/reg:64']]);
  });

  it('writes REG_MULTI_SZ with an explicit separator', async () => {
    const { runner, registry } = setup();
    await registry.setMultiString(KEY, 'List', ['{a}', '{b}']);
    expect(runner.argvs()).toEqual([['add', KEY, '/v', 'List', '/t', 'REG_MULTI_SZ', '/s', '\u0001', '/d', '{a}\u0001{b}', '/f', '/reg:64']]);
  });

  it('deletes a value and a key, and treats "not there" as done', async () => {
    const { runner, registry } = setup();
    runner.on(['delete'], NOT_FOUND);
    expect(await registry.deleteValue(KEY, 'Deny_Write')).toEqual({ ok: true });
    expect(await registry.deleteKey(KEY)).toEqual({ ok: true });
    expect(runner.argvs()).toEqual([
      ['delete', KEY, '/v', 'Deny_Write', '/f', '/reg:64'],
      ['delete', KEY, '/f', '/reg:64'],
    ]);
  });

  it('returns reg.exe failures as values, never throws', async () => {
    const { runner, registry } = setup();
    runner.on(['add'], { code: 1, stdout: '', stderr: 'ERROR: Access is denied.\r\n' });
    runner.on(['query'], { code: null, stdout: '', stderr: '', error: 'timed out after 30000 ms (SIGKILL)' });
    expect(await registry.setDword(KEY, 'Deny_Write', 1)).toEqual({ ok: false, error: `reg add ${KEY} failed (exit 1): ERROR: Access is denied.` });
    expect(await registry.readValues(KEY)).toEqual({ ok: false, error: `reg query ${KEY} failed (exit none): timed out after 30000 ms (SIGKILL)` });
  });

  it('reads a missing key as no values', async () => {
    const { runner, registry } = setup();
    runner.on(['query'], NOT_FOUND);
    expect(await registry.readValues(KEY)).toEqual({ ok: true, values: [] });
    expect(runner.argvs()).toEqual([['query', KEY, '/reg:64']]);
  });

  it('refuses a value that is not a DWORD (a bug, not an OS error)', () => {
    const { registry } = setup();
    expect(() => registry.setDword(KEY, 'Deny_Write', -1)).toThrow(RangeError);
  });
});

describe('parseRegQuery', () => {
  it('reads value lines and skips the key and subkey lines', () => {
    const out = [
      '',
      'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\DeviceInstall\\Restrictions',
      '    AllowDenyLayered    REG_DWORD    0x1',
      '    DenyDeviceClassesRetroactive    REG_DWORD    0x0',
      '    1    REG_SZ    USB\\VID_0930&PID_6545\\A1B2C3D4',
      '    (Default)    REG_SZ    ',
      '    Multi    REG_MULTI_SZ    a\\0b',
      '    Blob    REG_BINARY    00FF',
      '',
      'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\DeviceInstall\\Restrictions\\DenyInstanceIDs',
      '',
    ].join('\r\n');
    expect(parseRegQuery(out)).toEqual([
      { name: 'AllowDenyLayered', type: 'REG_DWORD', data: 1 },
      { name: 'DenyDeviceClassesRetroactive', type: 'REG_DWORD', data: 0 },
      { name: '1', type: 'REG_SZ', data: 'USB\\VID_0930&PID_6545\\A1B2C3D4' },
      { name: '', type: 'REG_SZ', data: '' },
      { name: 'Multi', type: 'REG_MULTI_SZ', data: ['a', 'b'] },
      { name: 'Blob', type: 'other', data: '00FF' },
    ]);
  });
});
