import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENT_CLI, SERVER_CLI, agentStatus, cli, killAll, startProcess, startServer, waitFor } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
afterEach(killAll);

// The mass rollout of README "Deploying to staff PCs": one config file with one multi-use token,
// copied unchanged to every PC (here: every agent's state directory), real server and agent processes.
describe('one installer config with a multi-use token for every PC (real processes)', { timeout: 180_000 }, () => {
  it('enrols as many agents as the token has uses, each deleting the token from its copy; the next is refused', async () => {
    const dataDir = await tempDir();
    const server = await startServer(dataDir);
    const created = await cli(SERVER_CLI, ['enrollment-token', '--data', dataDir, '--uses', '2', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const { id, token } = JSON.parse(created.stdout) as { id: string; token: string };
    const config = {
      serverUrl: server.url,
      enrollToken: token,
      tier: 'lgwan',
      reporter: { heartbeatSeconds: 1, retryBaseMs: 50, retryMaxMs: 400, uploadDelayMs: 20 },
    };

    const states = [await tempDir(), await tempDir(), await tempDir()];
    for (const state of states) {
      await fs.mkdir(state, { recursive: true, mode: 0o700 });
      await fs.writeFile(path.join(state, 'config.json'), JSON.stringify(config));
    }
    // Two agents first, at the same moment.
    const agents = states.slice(0, 2).map((state) => startProcess(AGENT_CLI, ['run', '--state', state]));
    const enrolled = await Promise.all(
      states.slice(0, 2).map((state) => waitFor(async () => ((await agentStatus(state)).enrolled ? agentStatus(state) : null), 60_000, `agent in ${state} to enrol`)),
    );
    expect(new Set(enrolled.map((status) => status.deviceId)).size).toBe(2);
    for (const state of states.slice(0, 2)) {
      const copy = JSON.parse(await fs.readFile(path.join(state, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(copy).not.toHaveProperty('enrollToken');
      expect(copy).toMatchObject({ serverUrl: server.url, tier: 'lgwan' });
      expect(JSON.stringify(copy)).not.toContain(token);
    }

    // The third PC with the same file: the token is used up.
    const third = startProcess(AGENT_CLI, ['run', '--state', states[2]!]);
    await waitFor(() => (/enrolment refused/.test(third.stdout + third.stderr) ? true : null), 60_000, 'the third agent to be refused');
    expect((await agentStatus(states[2]!)).enrolled).toBe(false);
    // Not spent, so it stays in that PC's copy (a new token in the file lets it enrol later).
    expect(JSON.parse(await fs.readFile(path.join(states[2]!, 'config.json'), 'utf8'))).toMatchObject({ enrollToken: token });

    const listed = JSON.parse((await cli(SERVER_CLI, ['enrollment-token', '--data', dataDir, '--list', '--json'])).stdout) as { tokens: unknown[] };
    expect(listed.tokens).toEqual([expect.objectContaining({ id, maxUses: 2, usesLeft: 0, enrolledDevices: 2 })]);
    await Promise.all([...agents, third].map((agent) => agent.kill('SIGTERM')));
  });
});
