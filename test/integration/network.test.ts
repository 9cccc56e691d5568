import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENT_CLI, killAll, startProcess, waitFor, writeFastAgentConfig } from '../helpers/processes.js';
import { readJournal } from '../helpers/agent-state.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
const IFACE = 'skm-it0';

function ip(...args: string[]): boolean {
  try {
    execFileSync('ip', args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// Creating an interface needs root and a kernel that allows veth here; elsewhere the test says why it skips.
const canCreate = process.platform === 'linux' && ip('link', 'add', IFACE, 'type', 'veth', 'peer', 'name', `${IFACE}p`) && ip('link', 'del', IFACE);

afterEach(async () => {
  await killAll();
  ip('link', 'del', IFACE);
});

describe('network isolation in the running agent', { timeout: 120_000 }, () => {
  it.skipIf(!canCreate)(`journals a network interface that appears while it runs (veth${canCreate ? '' : ' — skipped: cannot create interfaces here'})`, async () => {
    const stateDir = await tempDir();
    await writeFastAgentConfig(stateDir);
    const agent = startProcess(AGENT_CLI, ['run', '--state', stateDir]);
    await agent.waitForOutput(/running; state in/);
    await waitFor(async () => ((await readJournal(stateDir)).some((entry) => entry.type === 'network.baseline') ? true : null), 20_000, 'the network baseline');
    expect(ip('link', 'add', IFACE, 'type', 'veth', 'peer', 'name', `${IFACE}p`)).toBe(true);
    const violation = await waitFor(
      async () => (await readJournal(stateDir)).find((entry) => entry.type === 'network.violation' && entry.data.interface === IFACE) ?? null,
      20_000,
      'the new interface journaled',
    );
    expect(violation.data).toMatchObject({ kind: 'new-interface' });
    await agent.kill('SIGTERM');
  });
});
