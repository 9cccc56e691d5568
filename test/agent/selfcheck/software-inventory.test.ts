import { describe, expect, it } from 'vitest';
import { DPKG_FORMAT, globMatcher, judgeSoftware, parseDpkgQuery, parseWindowsSoftware, softwareInventoryCheck } from '../../../agent/selfcheck/checks/software-inventory.js';
import { builtInPolicyDocument } from '../../../agent/policy/profiles.js';
import type { Policy } from '../../../shared/policy.js';
import { FakeCommandRunner } from '../../fakes/fake-command-runner.js';
import { fixture } from './fixtures.js';

const ok = (stdout: string) => ({ code: 0, stdout, stderr: '' });

describe('software-inventory', () => {
  it('reads installed Debian packages only (status ii, not removed-with-config rc)', () => {
    const installed = parseDpkgQuery(fixture('dpkg-query.txt'));
    expect(installed.map((item) => item.name)).toEqual(['adduser', 'bash', 'libreoffice-writer', 'transmission-gtk', 'anydesk', 'zstd']);
  });

  it('matches globs whole and case-insensitively, with regex characters taken literally', () => {
    expect(globMatcher('transmission*')('transmission-gtk')).toBe(true);
    expect(globMatcher('Winny*')('winny 2.0b7.1')).toBe(true);
    expect(globMatcher('lib*')('glibc')).toBe(false);
    expect(globMatcher('g++')('g++')).toBe(true);
    expect(globMatcher('g++')('gg')).toBe(false);
  });

  it('flags denied software first and unapproved software when an allow-list exists', () => {
    const installed = parseDpkgQuery(fixture('dpkg-query.txt'));
    const { denied, unapproved } = judgeSoftware(installed, { allowList: ['adduser', 'bash', 'lib*', 'zstd'], denyList: ['anydesk*', 'transmission*'] });
    expect(denied.map((item) => item.name)).toEqual(['transmission-gtk', 'anydesk']);
    expect(unapproved).toEqual([]);
    expect(judgeSoftware(installed, { allowList: ['bash'] }).unapproved.map((item) => item.name)).toEqual(['adduser', 'libreoffice-writer', 'transmission-gtk', 'anydesk', 'zstd']);
  });

  it('fails on a built-in profile when P2P or remote-control software is installed (dpkg-query through the runner)', async () => {
    const commands = new FakeCommandRunner().on(['-W'], ok(fixture('dpkg-query.txt')));
    const lists = builtInPolicyDocument('mynumber').software;
    const outcome = await softwareInventoryCheck({ platform: 'linux', commands, lists: () => lists }).run();
    expect(outcome).toMatchObject({ result: 'fail', evidence: { installed: 6, deniedCount: 2, denied: ['transmission-gtk 3.00-2.1+b1', 'anydesk 6.3.0'], unapprovedCount: 0 } });
    expect(commands.calls[0]).toMatchObject({ file: 'dpkg-query', args: ['-W', `-f=${DPKG_FORMAT}`] });
  });

  it('passes when every package is on the allow-list and none is denied', async () => {
    const commands = new FakeCommandRunner().on(['-W'], ok('ii \tbash\t5.2\nii \tzstd\t1.5\n'));
    const lists: Policy['software'] = { allowList: ['bash', 'zstd'], denyList: ['anydesk*'] };
    expect((await softwareInventoryCheck({ platform: 'linux', commands, lists: () => lists }).run()).result).toBe('pass');
  });

  it('is unknown without lists in the policy, or when dpkg-query fails', async () => {
    const commands = new FakeCommandRunner().on(['-W'], ok('ii \tbash\t5.2\n'));
    expect(await softwareInventoryCheck({ platform: 'linux', commands, lists: () => undefined }).run()).toMatchObject({ result: 'unknown', evidence: { installed: 1 } });
    const failing = new FakeCommandRunner().on(['-W'], { code: 2, stdout: '', stderr: 'dpkg-query: error' });
    expect((await softwareInventoryCheck({ platform: 'linux', commands: failing, lists: () => ({ denyList: ['x'] }) }).run()).result).toBe('unknown');
  });

  it('reads Windows programs from the uninstall entries (PowerShell JSON) and flags Winny', async () => {
    expect(parseWindowsSoftware(fixture('windows-software.json')).map((item) => item.name)).toEqual(['Microsoft Edge', '一太郎2024', 'Winny 2.0b7.1', '7-Zip 23.01 (x64)']);
    const commands = new FakeCommandRunner().on(() => true, ok(fixture('windows-software.json')));
    const outcome = await softwareInventoryCheck({ platform: 'win32', commands, lists: () => builtInPolicyDocument('lgwan').software }).run();
    expect(outcome).toMatchObject({ result: 'fail', evidence: { method: 'uninstall-registry', denied: ['Winny 2.0b7.1'] } });
    expect(commands.calls[0]?.file).toBe('powershell.exe');
  });
});
