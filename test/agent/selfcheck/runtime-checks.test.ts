import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TrustedClock } from '../../../agent/policy/trusted-clock.js';
import { agentIntegrityCheck, journalUploadCheck, timeSyncCheck, type UploadState } from '../../../agent/selfcheck/checks/runtime-checks.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();

describe('time-sync (trusted clock vs wall clock)', () => {
  function clockAt(wallMs: number): { clock: TrustedClock; setWall: (ms: number) => void; advance: (ms: number) => void } {
    let wall = wallMs;
    let monotonic = 1_000;
    const clock = new TrustedClock({ wallNow: () => wall, monotonicNow: () => monotonic });
    return { clock, setWall: (ms) => (wall = ms), advance: (ms) => ((wall += ms), (monotonic += ms)) };
  }

  it('is unknown before the first server time of this run', async () => {
    const { clock } = clockAt(Date.parse('2026-11-25T00:00:00Z'));
    expect(await timeSyncCheck({ skew: () => clock.serverSkew(), maxSkewSeconds: () => 60 }).run()).toMatchObject({ result: 'unknown' });
  });

  it('passes a wall clock within the allowed seconds of the server and fails one set ahead or behind', async () => {
    const t0 = Date.parse('2026-11-25T00:00:00Z');
    const { clock, setWall, advance } = clockAt(t0 + 20_000);
    clock.sync(t0);
    advance(3_600_000);
    const check = timeSyncCheck({ skew: () => clock.serverSkew(), maxSkewSeconds: () => 60 });
    expect(await check.run()).toMatchObject({ result: 'pass', evidence: { skewSeconds: 20, sinceSyncSeconds: 3600 } });
    setWall(t0 + 3_600_000 - 5 * 60_000);
    expect(await check.run()).toMatchObject({ result: 'fail', evidence: { skewSeconds: -300 } });
    setWall(t0 + 3_600_000 + 2 * 86_400_000);
    expect((await check.run()).result).toBe('fail');
  });
});

describe('agent-integrity (state directory and secret files)', () => {
  const uid = process.getuid?.() ?? 0;
  async function stateDir(modes: Record<string, number>, dirMode = 0o700): Promise<string> {
    const dir = await tempDir();
    await fs.chmod(dir, dirMode);
    for (const [name, mode] of Object.entries(modes)) {
      await fs.writeFile(path.join(dir, name), '{}');
      await fs.chmod(path.join(dir, name), mode);
    }
    return dir;
  }
  const check = (dir: string, ui: { consoleUser: boolean; lockScreenConnected: boolean } | null = null, platform: NodeJS.Platform = 'linux') =>
    agentIntegrityCheck({ platform, stateDir: dir, uid, pid: 4242, startedAtMs: 0, nowMs: () => 120_000, ui: () => Promise.resolve(ui) });

  it('passes a 0700 directory with owner-only files', async () => {
    const outcome = await check(await stateDir({ 'credentials.json': 0o600, 'lock-secrets.json': 0o600, 'lock-machine.key': 0o600, 'journal.jsonl': 0o600 })).run();
    expect(outcome).toMatchObject({ result: 'pass', evidence: { pid: 4242, uptimeMinutes: 2, modes: { '.': '700', 'lock-machine.key': '600' } } });
  });

  it('fails when a secret file or the directory opens to others', async () => {
    const file = await check(await stateDir({ 'lock-machine.key': 0o644 })).run();
    expect(file).toMatchObject({ result: 'fail', evidence: { problems: ['lock-machine.key mode 644, expected 600'] } });
    const dir = await check(await stateDir({}, 0o755)).run();
    expect(dir).toMatchObject({ result: 'fail', evidence: { problems: ['state directory mode 755, expected 700'] } });
  });

  it('fails when a user is logged in and the lock screen is not connected', async () => {
    const outcome = await check(await stateDir({}), { consoleUser: true, lockScreenConnected: false }).run();
    expect(outcome).toMatchObject({ result: 'fail', evidence: { problems: ['a user is logged in but the lock screen is not connected'] } });
    expect((await check(await stateDir({}), { consoleUser: true, lockScreenConnected: true }).run()).result).toBe('pass');
  });

  it('is unknown on Windows, where the installer sets ACLs', async () => {
    expect((await check(await stateDir({}), null, 'win32').run()).result).toBe('unknown');
  });
});

describe('journal-upload (reporter snapshot)', () => {
  const now = Date.parse('2026-11-25T09:00:00Z');
  const state = (overrides: Partial<UploadState>): UploadState => ({
    serverUrl: 'http://10.20.0.5:8443',
    ackSeq: 120,
    lastContactAt: new Date(now - 5 * 60_000).toISOString(),
    problem: null,
    journalLength: 122,
    chainBrokenAt: null,
    ...overrides,
  });
  const run = (overrides: Partial<UploadState>) => journalUploadCheck({ state: () => state(overrides), nowMs: () => now }).run();

  it('passes a recent contact, with what is not yet delivered as evidence', async () => {
    expect(await run({})).toMatchObject({ result: 'pass', evidence: { pending: 2, contactAgeMinutes: 5 } });
  });

  it('fails when uploads are stuck, the server was never reached, or the last contact is over a day old', async () => {
    expect(await run({ problem: 'the server holds a different chain' })).toMatchObject({ result: 'fail' });
    expect(await run({ lastContactAt: null })).toMatchObject({ result: 'fail', evidence: { problems: ['the server was never reached'] } });
    expect(await run({ lastContactAt: new Date(now - 26 * 3_600_000).toISOString() })).toMatchObject({ result: 'fail', evidence: { contactAgeMinutes: 1560 } });
  });

  it('fails when the local chain was broken at start, and is unknown without a server', async () => {
    expect(await run({ chainBrokenAt: 17 })).toMatchObject({ result: 'fail', evidence: { chainBrokenAt: 17 } });
    expect((await run({ serverUrl: null })).result).toBe('unknown');
  });
});
