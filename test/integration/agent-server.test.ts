import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JournalEntry } from '../../shared/journal.js';
import {
  AGENT_CLI,
  SERVER_CLI,
  agentStatus,
  cli,
  enrollmentToken,
  killAll,
  serverEventCount,
  startProcess,
  startServer,
  waitFor,
  writeFastAgentConfig,
} from '../helpers/processes.js';
import { readJournal } from '../helpers/agent-state.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
afterEach(killAll);

async function serverEvents(dataDir: string, url: string, deviceId: string): Promise<JournalEntry[]> {
  const adminToken = (await fs.readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
  const events: JournalEntry[] = [];
  for (;;) {
    const response = await fetch(`${url}/api/v1/admin/devices/${deviceId}/events?after=${events.length}&limit=1000`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(response.status).toBe(200);
    const page = ((await response.json()) as { events: JournalEntry[] }).events;
    if (page.length === 0) return events;
    events.push(...page);
  }
}


async function appendMarker(stateDir: string, data: Record<string, unknown>): Promise<{ seq: number; hash: string } | null> {
  const result = await cli(AGENT_CLI, ['journal', 'append', '--state', stateDir, '--type', 'operator.marker', '--data', JSON.stringify(data)]);
  return result.code === 0 ? (JSON.parse(result.stdout) as { seq: number; hash: string }) : null;
}

/** Waits until the server holds exactly the agent's whole journal. */
async function waitForDelivery(stateDir: string, dataDir: string): Promise<{ deviceId: string; length: number }> {
  return waitFor(async () => {
    const status = await agentStatus(stateDir);
    if (!status.deviceId) return null;
    const count = await serverEventCount(dataDir, status.deviceId);
    return count === status.journalLength && status.ackSeq === status.journalLength ? { deviceId: status.deviceId, length: count } : null;
  }, 60_000, 'the server to hold the whole journal');
}

// Real processes on a 2-core machine that may be running other test files at the same time.
describe('agent → server delivery (real processes on 127.0.0.1)', { timeout: 180_000 }, () => {
  it('enrols, delivers every event exactly once across a server killed with SIGKILL, and the server verifies the chain', async () => {
    const dataDir = await tempDir();
    const stateDir = await tempDir();
    const server = await startServer(dataDir);
    const token = await enrollmentToken(dataDir);
    await writeFastAgentConfig(stateDir);
    const agent = startProcess(AGENT_CLI, ['run', '--state', stateDir, '--server', server.url, '--enroll-token', token]);
    await agent.waitForOutput(/running; state in/);
    // Running as an ordinary container root with no USB bus: it must say it is not enforcing.
    expect(agent.stdout).toMatch(/NOT enforced/);

    for (let i = 0; i < 5; i += 1) expect(await appendMarker(stateDir, { phase: 'before', i })).not.toBeNull();
    const first = await waitForDelivery(stateDir, dataDir);
    expect(first.length).toBeGreaterThanOrEqual(7); // agent.started, agent.enrolled, 5 markers

    await server.proc.kill('SIGKILL');
    for (let i = 0; i < 10; i += 1) expect(await appendMarker(stateDir, { phase: 'outage', i })).not.toBeNull();
    const during = await agentStatus(stateDir);
    expect(during.journalLength).toBe(first.length + 10);
    expect(during.ackSeq).toBe(first.length);

    const restarted = await startServer(dataDir, server.port);
    const delivered = await waitForDelivery(stateDir, dataDir);
    expect(delivered.length).toBe(first.length + 10);

    const verify = await cli(SERVER_CLI, ['events', '--data', dataDir, '--device', delivered.deviceId, '--verify']);
    expect(verify.code).toBe(0);
    const held = await serverEvents(dataDir, restarted.url, delivered.deviceId);
    expect(held.map((entry) => entry.seq)).toEqual(Array.from({ length: delivered.length }, (_, i) => i + 1));
    const outage = held.filter((entry) => entry.type === 'operator.marker' && entry.data.phase === 'outage').map((entry) => entry.data.i);
    expect(outage).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // What the server holds is byte-for-byte what the agent journaled.
    expect(held).toEqual(await readJournal(stateDir));
    // The agent told the server honestly that it cannot control devices here.
    const adminToken = (await fs.readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    const devices = await fetch(`${restarted.url}/api/v1/admin/devices`, { headers: { authorization: `Bearer ${adminToken}` } });
    const [device] = ((await devices.json()) as { devices: { deviceId: string; enforcement: string | null }[] }).devices;
    expect(device).toMatchObject({ deviceId: delivered.deviceId, enforcement: 'unenforced' });

    await agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    const local = await cli(AGENT_CLI, ['verify-journal', '--state', stateDir]);
    expect(local.code).toBe(0);
    expect(local.stdout).toMatch(/verified \d+ entries/);
  });

  it('loses nothing acknowledged when the agent is killed with SIGKILL mid-stream', async () => {
    const dataDir = await tempDir();
    const stateDir = await tempDir();
    const server = await startServer(dataDir);
    const token = await enrollmentToken(dataDir);
    await writeFastAgentConfig(stateDir);
    const args = ['run', '--state', stateDir, '--server', server.url, '--enroll-token', token];
    const agent = startProcess(AGENT_CLI, args);
    await agent.waitForOutput(/running; state in/);

    // Four writers keep appending; the agent dies under them.
    const acknowledged: { seq: number; hash: string }[] = [];
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i += 1) {
        const ack = await appendMarker(stateDir, { w, i });
        if (ack) acknowledged.push(ack);
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await waitFor(() => (acknowledged.length >= 8 ? true : null), 60_000, 'appends before the kill');
    await agent.kill('SIGKILL');
    const atKill = acknowledged.length;
    // Appends go on while the agent is dead (directly to the journal, under the state lock).
    await waitFor(() => (acknowledged.length >= atKill + 4 ? true : null), 60_000, 'appends while the agent is down');
    stop = true;
    await Promise.all(writers);

    const again = startProcess(AGENT_CLI, args);
    await again.waitForOutput(/running; state in/);
    const delivered = await waitForDelivery(stateDir, dataDir);

    const journal = await readJournal(stateDir);
    const held = await serverEvents(dataDir, server.url, delivered.deviceId);
    const journalHash = new Map(journal.map((entry) => [entry.seq, entry.hash]));
    const serverHash = new Map(held.map((entry) => [entry.seq, entry.hash]));
    for (const ack of acknowledged) {
      expect(journalHash.get(ack.seq)).toBe(ack.hash);
      expect(serverHash.get(ack.seq)).toBe(ack.hash);
    }
    expect(held).toEqual(journal);
    expect((await cli(AGENT_CLI, ['verify-journal', '--state', stateDir])).code).toBe(0);
    expect((await cli(SERVER_CLI, ['events', '--data', dataDir, '--device', delivered.deviceId, '--verify'])).code).toBe(0);
  });
});
