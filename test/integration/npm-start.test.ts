import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, agentStatus, killAll, startProcess, waitFor } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
afterEach(killAll);

describe('npm start (the main job)', { timeout: 120_000 }, () => {
  it('starts the server and an enrolled agent, says where to look, and stops cleanly on Ctrl+C', async () => {
    const home = await tempDir();
    const start = startProcess(path.join(ROOT, 'dist/build/start.js'), [], { SEKIMORI_HOME: home, SEKIMORI_PORT: '0' });
    await start.waitForOutput(/Sekimori is running/);
    expect(start.stdout).toMatch(/API: +http:\/\/127\.0\.0\.1:\d+\/api\/v1\/health/);
    expect(start.stdout).toContain(path.join(home, 'server', 'admin-token'));
    // The first start of an empty data directory: the first administrator, once, on the terminal.
    expect(start.stdout).toMatch(/Dashboard: +http:\/\/127\.0\.0\.1:\d+\/dashboard\//);
    expect(start.stdout).toMatch(/created admin account admin/);
    const password = /initial password: (\S+)/.exec(start.stdout)?.[1];
    expect(password).toMatch(/^\S{5}(-\S{5}){3}$/);
    // Nowhere else: not in the server's or the agent's logs (their stderr).
    expect(start.stderr).not.toContain(password!);
    // No Electron binary on this machine: one clear line, and the rest runs.
    expect(start.stdout).toMatch(/Electron binary not installed here/);
    await start.waitForOutput(/device control: NOT enforced/);

    const agentState = path.join(home, 'agent');
    const status = await waitFor(async () => {
      const current = await agentStatus(agentState);
      return current.enrolled && current.ackSeq === current.journalLength ? current : null;
    }, 60_000, 'the agent to enrol and report');
    expect(status.deviceId).toMatch(/^dev_/);
    // The spent enrolment token is gone from the config file the launcher wrote.
    const config = JSON.parse(await fs.readFile(path.join(agentState, 'config.json'), 'utf8'));
    expect(config.enrollToken).toBeUndefined();

    start.child.kill('SIGINT');
    expect((await start.exited).code).toBe(0);
    const journal = (await fs.readFile(path.join(agentState, 'journal.jsonl'), 'utf8')).trim().split('\n');
    expect(JSON.parse(journal.at(-1)!)).toMatchObject({ type: 'agent.stopped' });
  });
});
