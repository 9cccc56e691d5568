import { describe, expect, it } from 'vitest';
import { diskEncryptionCheck, parseDmsetupLs, parseLsblk, parseManageBde } from '../../../agent/selfcheck/checks/disk-encryption.js';
import { FakeCommandRunner } from '../../fakes/fake-command-runner.js';
import { fixture } from './fixtures.js';

const ok = (stdout: string) => ({ code: 0, stdout, stderr: '' });

describe('disk-encryption: Linux (lsblk, dmsetup through the command runner)', () => {
  it('passes when the root file system and swap sit on a LUKS mapping (LVM inside LUKS)', async () => {
    const commands = new FakeCommandRunner().on(['-J'], ok(fixture('lsblk-luks.json'))).on(['ls', '--target', 'crypt'], ok(fixture('dmsetup-ls.txt')));
    const outcome = await diskEncryptionCheck({ platform: 'linux', commands }).run();
    expect(outcome.result).toBe('pass');
    expect(outcome.evidence).toMatchObject({ cryptMappings: ['nvme0n1p3_crypt'], mounts: [{ mountpoint: '/', encrypted: true }, { mountpoint: '[SWAP]', encrypted: true }] });
    expect(commands.calls.map((call) => [call.file, ...call.args])).toEqual([
      ['lsblk', '-J', '-o', 'NAME,TYPE,FSTYPE,MOUNTPOINT'],
      ['dmsetup', 'ls', '--target', 'crypt'],
    ]);
  });

  it('fails a plain ext4 root and names every clear data mount', async () => {
    const commands = new FakeCommandRunner().on(['-J'], ok(fixture('lsblk-plain.json'))).on(['ls'], ok('No devices found\n'));
    const outcome = await diskEncryptionCheck({ platform: 'linux', commands }).run();
    expect(outcome).toMatchObject({ result: 'fail', evidence: { notEncrypted: ['/', '[SWAP]'], cryptMappings: [] } });
  });

  it('fails a separate /home outside LUKS even when / is encrypted (lsblk ≥ 2.37 mountpoints, zram swap ignored)', () => {
    const finding = parseLsblk(fixture('lsblk-home-clear.json'));
    expect(finding.mounts).toEqual([
      { mountpoint: '/', device: 'luks-3f1c', encrypted: true },
      { mountpoint: '/home', device: 'sda2', encrypted: false },
    ]);
  });

  it('is unknown when the root file system is not a local block device (a container)', async () => {
    const commands = new FakeCommandRunner().on(['-J'], ok(fixture('lsblk-container.json')));
    expect((await diskEncryptionCheck({ platform: 'linux', commands }).run()).result).toBe('unknown');
  });

  it('is unknown, never a pass, when lsblk is missing or prints something else', async () => {
    const missing = new FakeCommandRunner().on(['-J'], { code: null, stdout: '', stderr: '', error: 'ENOENT: spawn lsblk ENOENT' });
    expect((await diskEncryptionCheck({ platform: 'linux', commands: missing }).run()).result).toBe('unknown');
    const garbage = new FakeCommandRunner().on(['-J'], ok('NAME TYPE\nsda disk\n'));
    expect((await diskEncryptionCheck({ platform: 'linux', commands: garbage }).run()).result).toBe('unknown');
  });

  it('reads only the mapping names from dmsetup (never a table or a key)', () => {
    expect(parseDmsetupLs('luks-3f1c\t(254:0)\nhome_crypt\t(254:1)\n')).toEqual(['luks-3f1c', 'home_crypt']);
    expect(parseDmsetupLs('No devices found\n')).toEqual([]);
  });
});

describe('disk-encryption: Windows (manage-bde -status at the command boundary)', () => {
  const run = (stdout: string) => diskEncryptionCheck({ platform: 'win32', commands: new FakeCommandRunner().on(['-status'], ok(stdout)) }).run();

  it('passes a fully encrypted, protected system volume (English output)', async () => {
    expect(await run(fixture('manage-bde-en-encrypted.txt'))).toMatchObject({ result: 'pass', evidence: { percentEncrypted: 100, protectionOn: true, conversion: 'Fully Encrypted' } });
  });

  it('fails a volume still encrypting with protection off', async () => {
    expect(await run(fixture('manage-bde-en-in-progress.txt'))).toMatchObject({ result: 'fail', evidence: { percentEncrypted: 41.7, protectionOn: false } });
  });

  it('reads Japanese Windows output: decrypted fails, encrypted passes', async () => {
    expect(await run(fixture('manage-bde-ja-decrypted.txt'))).toMatchObject({ result: 'fail', evidence: { percentEncrypted: 0, protectionOn: false, conversion: '暗号化は完全に解除されています' } });
    expect(await run(fixture('manage-bde-ja-encrypted.txt'))).toMatchObject({ result: 'pass', evidence: { percentEncrypted: 100, protectionOn: true } });
  });

  it('is unknown for output it does not recognise, and asks for the system drive only', async () => {
    const commands = new FakeCommandRunner().on(['-status'], ok('Volume C:\r\n    Estado de conversión: Cifrado completo\r\n'));
    expect((await diskEncryptionCheck({ platform: 'win32', commands }).run()).result).toBe('unknown');
    expect(commands.calls[0]).toMatchObject({ file: 'manage-bde.exe', args: ['-status', 'C:'] });
    expect(parseManageBde('', 'C:')).toEqual({ volume: 'C:', percentEncrypted: null, protectionOn: null, conversion: null });
  });

  it('is unknown when manage-bde fails (BitLocker not installed, not elevated)', async () => {
    const commands = new FakeCommandRunner().on(['-status'], { code: -1, stdout: 'ERROR: An attempt to access a required resource was denied.', stderr: '' });
    expect((await diskEncryptionCheck({ platform: 'win32', commands }).run()).result).toBe('unknown');
  });
});
