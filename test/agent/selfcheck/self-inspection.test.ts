import fs from 'node:fs/promises';
import path from 'node:path';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../../../agent/journal/journal.js';
import { createSelfChecks } from '../../../agent/selfcheck/checks.js';
import type { SelfCheck } from '../../../agent/selfcheck/check.js';
import { SelfInspection } from '../../../agent/selfcheck/self-inspection.js';
import { builtInPolicy } from '../../../agent/policy/profiles.js';
import { MAX_EVENT_DATA_CHARS } from '../../../shared/journal.js';
import { canonicalJson } from '../../../shared/canonical-json.js';
import { SELFCHECK_IDS, SelfcheckRunSchema, type SelfcheckId } from '../../../shared/selfcheck.js';
import { FakeCommandRunner } from '../../fakes/fake-command-runner.js';
import { readJournal } from '../../helpers/agent-state.js';
import { waitFor } from '../../helpers/processes.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();
const silent = winston.createLogger({ silent: true });
const open: { inspection: SelfInspection; journal: Journal }[] = [];
afterEach(async () => {
  for (const { inspection, journal } of open.splice(0)) {
    await inspection.dispose();
    await journal.close();
  }
});

const fixed = (id: SelfcheckId, result: 'pass' | 'fail' | 'unknown', evidence: Record<string, unknown> = {}): SelfCheck => ({ id, run: () => Promise.resolve({ result, evidence }) });

async function rig(checks: SelfCheck[], options: { now?: () => number; pollMs?: number; intervalMs?: number; stateFile?: string } = {}) {
  const dir = await tempDir();
  const { journal } = await Journal.open(path.join(dir, 'journal.jsonl'));
  const inspection = new SelfInspection({
    checks,
    journal,
    logger: silent,
    nowMs: options.now ?? (() => Date.parse('2026-11-25T00:00:00Z')),
    context: () => ({ tier: 'mynumber', policyVersion: 1, policyOrigin: 'built-in', agentVersion: '0.1.0', platform: 'linux' }),
    stateFile: options.stateFile ?? path.join(dir, 'selfcheck.json'),
    checkTimeoutMs: 200,
    ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
    ...(options.intervalMs !== undefined ? { intervalMs: options.intervalMs } : {}),
  });
  open.push({ inspection, journal });
  const results = async () => (await readJournal(dir)).filter((entry) => entry.type === 'selfcheck.result');
  return { inspection, dir, results };
}

describe('self-inspection runs', () => {
  it('journals one selfcheck.result per run with every check in order, its clause and a summary', async () => {
    const { inspection, results } = await rig([fixed('mfa', 'fail', { notEnrolled: ['suzuki'] }), fixed('policy-current', 'pass'), fixed('disk-encryption', 'unknown')]);
    const run = await inspection.run('command', 'cmd-17');
    expect(run).not.toBeNull();
    const [entry] = await results();
    const data = SelfcheckRunSchema.parse(entry?.data);
    expect(data).toMatchObject({ trigger: 'command', commandId: 'cmd-17', tier: 'mynumber', summary: { pass: 1, fail: 1, unknown: 1, overall: 'fail' } });
    expect(data.checks.map((check) => [check.id, check.result, check.clause])).toEqual([
      ['policy-current', 'pass', '6(7)'],
      ['mfa', 'fail', '6(3)①'],
      ['disk-encryption', 'unknown', '6(4)'],
    ]);
    expect(data.checks[1]?.evidence).toEqual({ notEnrolled: ['suzuki'] });
  });

  it('records a check that throws or hangs as unknown with the error, never as a pass', async () => {
    const throwing: SelfCheck = { id: 'os-updates', run: () => Promise.reject(new Error('EACCES: /var/log/apt')) };
    const hanging: SelfCheck = { id: 'software-inventory', run: () => new Promise(() => undefined) };
    const { inspection } = await rig([throwing, hanging, fixed('exceptions', 'pass')]);
    const run = await inspection.run('start');
    expect(run?.checks).toEqual([
      { id: 'exceptions', result: 'pass', clause: '6(3)①', evidence: {} },
      { id: 'os-updates', result: 'unknown', clause: '6(6)', evidence: { error: 'EACCES: /var/log/apt' } },
      { id: 'software-inventory', result: 'unknown', clause: '3(2)', evidence: { error: 'the check did not finish within 200 ms' } },
    ]);
    expect(run?.summary.overall).toBe('unknown');
  });

  it('bounds oversized evidence so that twelve checks always fit one journal entry', async () => {
    const huge = Array.from({ length: 5000 }, (_, index) => `package-${index}`);
    const checks = SELFCHECK_IDS.map((id) => fixed(id, 'fail', { unapproved: huge, note: 'x'.repeat(5000) }));
    const { inspection, results } = await rig(checks);
    await inspection.run('start');
    const [entry] = await results();
    expect(canonicalJson(entry?.data).length).toBeLessThanOrEqual(MAX_EVENT_DATA_CHARS);
    expect(SelfcheckRunSchema.safeParse(entry?.data).success).toBe(true);
  });

  it('runs the start inspection, then again once a day by the trusted clock, and keeps the schedule across restarts', async () => {
    let now = Date.parse('2026-11-25T00:00:00Z');
    const stateFile = path.join(await tempDir(), 'selfcheck.json');
    const first = await rig([fixed('exceptions', 'pass')], { now: () => now, pollMs: 10, intervalMs: 86_400_000, stateFile });
    await first.inspection.start();
    expect(JSON.parse(await fs.readFile(stateFile, 'utf8'))).toEqual({ lastRunAtMs: now });
    now += 86_400_000;
    await waitFor(async () => ((await first.results()).some((entry) => entry.data.trigger === 'daily') ? true : null), 10_000, 'the daily run');
    await first.inspection.dispose();
    expect(JSON.parse(await fs.readFile(stateFile, 'utf8'))).toEqual({ lastRunAtMs: now });
  });

  it('runs the twelve real checks against fakes at the OS boundary and produces a valid run', async () => {
    const dir = await tempDir();
    const policy = builtInPolicy('mynumber');
    const checks = createSelfChecks({
      platform: 'linux',
      tier: 'mynumber',
      stateDir: dir,
      rootDir: await tempDir(),
      sysfsRoot: await tempDir(),
      commands: new FakeCommandRunner(),
      policies: { current: policy, origin: 'built-in', lastRejection: null, appliedAtMs: 0, verifyInForce: () => Promise.resolve({ ok: false, reason: 'built-in' }) },
      hasServer: () => false,
      enforcement: () => ({ state: 'unenforced', reason: 'no-usb-bus' }),
      nowMs: () => Date.parse('2026-11-25T00:00:00Z'),
      clockSkew: () => null,
      upload: () => ({ serverUrl: null, ackSeq: 0, lastContactAt: null, problem: null, journalLength: 1, chainBrokenAt: null }),
      uid: process.getuid?.() ?? null,
      pid: process.pid,
      startedAtMs: 0,
      ui: () => Promise.resolve(null),
    });
    expect(checks.map((check) => check.id)).toEqual([...SELFCHECK_IDS]);
    const { inspection } = await rig(checks);
    const run = await inspection.run('start');
    expect(run?.checks.map((check) => check.id)).toEqual([...SELFCHECK_IDS]);
    expect(run?.checks.find((check) => check.id === 'device-control')?.result).toBe('fail');
    expect(run?.checks.find((check) => check.id === 'idle-lock')?.result).toBe('pass');
  });
});
