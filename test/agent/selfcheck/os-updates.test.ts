import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HOTFIX_SCRIPT, lastAptUpgrade, osUpdatesCheck, parseHotFixes } from '../../../agent/selfcheck/checks/os-updates.js';
import { FakeCommandRunner } from '../../fakes/fake-command-runner.js';
import { useTempDirs } from '../../helpers/temp-dir.js';
import { fixture } from './fixtures.js';

const tempDir = useTempDirs();
const DAY = 86_400_000;

async function aptRoot(files: { history?: string; historyMtime?: Date; stamp?: Date }): Promise<string> {
  const root = await tempDir();
  if (files.history !== undefined) {
    const file = path.join(root, 'var/log/apt/history.log');
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, files.history);
    if (files.historyMtime) await fs.utimes(file, files.historyMtime, files.historyMtime);
  }
  if (files.stamp) {
    const file = path.join(root, 'var/lib/apt/periodic/update-success-stamp');
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, '');
    await fs.utimes(file, files.stamp, files.stamp);
  }
  return root;
}

const check = (rootDir: string, now: Date, platform: NodeJS.Platform = 'linux', commands = new FakeCommandRunner()) =>
  osUpdatesCheck({ platform, rootDir, commands, nowMs: () => now.getTime(), maxAgeDays: () => 35 });

describe('os-updates: Debian (apt files under a temp root)', () => {
  it('takes the end of the last Upgrade run from history.log, not a later plain install', () => {
    expect(lastAptUpgrade(fixture('apt-history.log'))).toEqual(new Date(2026, 10, 10, 3, 1, 30));
    expect(lastAptUpgrade('Start-Date: 2026-10-02  10:15:02\nInstall: jq:amd64 (1.6)\nEnd-Date: 2026-10-02  10:15:40\n')).toBeNull();
  });

  it('passes when the last upgrade is within the allowed days, with the index refresh as evidence', async () => {
    const root = await aptRoot({ history: fixture('apt-history.log'), stamp: new Date('2026-11-24T00:00:00Z') });
    const outcome = await check(root, new Date(2026, 10, 25)).run();
    expect(outcome).toMatchObject({ result: 'pass', evidence: { ageDays: 14, maxAgeDays: 35, source: 'history.log Upgrade', lastIndexRefresh: '2026-11-24T00:00:00.000Z' } });
  });

  it('fails when the last upgrade is older than the allowed days', async () => {
    const root = await aptRoot({ history: fixture('apt-history.log') });
    expect(await check(root, new Date(2027, 0, 20)).run()).toMatchObject({ result: 'fail', evidence: { ageDays: 70 } });
  });

  it('falls back to the mtime of history.log after it was rotated without an upgrade in it', async () => {
    const root = await aptRoot({ history: '', historyMtime: new Date('2026-11-01T00:00:00Z') });
    expect(await check(root, new Date('2026-11-03T00:00:00Z')).run()).toMatchObject({ result: 'pass', evidence: { source: 'history.log mtime', ageDays: 2 } });
  });

  it('is unknown without any apt record (not Debian), and when only the index refresh is known', async () => {
    expect((await check(await aptRoot({}), new Date()).run()).result).toBe('unknown');
    expect((await check(await aptRoot({ stamp: new Date() }), new Date()).run()).result).toBe('unknown');
  });
});

describe('os-updates: Windows (Get-HotFix output at the command boundary)', () => {
  const ok = (stdout: string) => ({ code: 0, stdout, stderr: '' });

  it('parses ISO dates, legacy /Date(ms)/ dates and a single object', () => {
    expect(parseHotFixes(fixture('hotfix.json')).map((fix) => [fix.id, fix.installedOn?.toISOString() ?? null])).toEqual([
      ['KB5044033', '2026-10-14T15:00:00.000Z'],
      ['KB5046613', '2026-11-12T15:00:00.000Z'],
      ['KB5012170', null],
    ]);
    expect(parseHotFixes(fixture('hotfix-single-legacy.json'))[0]?.installedOn?.toISOString()).toBe('2023-10-17T00:00:00.000Z');
  });

  it('judges the newest dated update and runs PowerShell without a profile', async () => {
    const commands = new FakeCommandRunner().on(() => true, ok(fixture('hotfix.json')));
    const outcome = await check('/', new Date(Date.parse('2026-11-12T15:00:00Z') + 10 * DAY), 'win32', commands).run();
    expect(outcome).toMatchObject({ result: 'pass', evidence: { newest: 'KB5046613', ageDays: 10, installed: 3 } });
    expect(commands.calls[0]).toMatchObject({ file: 'powershell.exe', args: ['-NoProfile', '-NonInteractive', '-Command', HOTFIX_SCRIPT] });
    const late = await check('/', new Date(Date.parse('2026-11-12T15:00:00Z') + 40 * DAY), 'win32', commands).run();
    expect(late.result).toBe('fail');
  });

  it('is unknown when PowerShell fails or no update has a date', async () => {
    expect((await check('/', new Date(), 'win32', new FakeCommandRunner().on(() => true, { code: 1, stdout: '', stderr: 'Access denied' })).run()).result).toBe('unknown');
    expect((await check('/', new Date(), 'win32', new FakeCommandRunner().on(() => true, ok('{"HotFixID":"KB1","InstalledOn":null}'))).run()).result).toBe('unknown');
  });
});
