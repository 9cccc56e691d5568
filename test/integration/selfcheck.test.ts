import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GENESIS_HASH, type JournalEntry } from '../../shared/journal.js';
import { SELFCHECK_IDS, SelfcheckRunSchema } from '../../shared/selfcheck.js';
import { AGENT_CLI, agentStatus, enrollmentToken, killAll, startProcess, startServer, waitFor } from '../helpers/processes.js';
import { readJournal } from '../helpers/agent-state.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
const servers: http.Server[] = [];
afterEach(async () => {
  await killAll();
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/**
 * A stand-in for the central server speaking protocol v1 (enrol, heartbeat with commands, events),
 * so the `selfcheck` command can be delivered before the real server's admin API offers it.
 */
async function commandServer(commands: { id: string; type: string }[]): Promise<{ url: string; acks: { id: string; ok: boolean; detail?: string }[]; events: JournalEntry[] }> {
  const acks: { id: string; ok: boolean; detail?: string }[] = [];
  const events: JournalEntry[] = [];
  let pending = [...commands];
  const deviceId = `dev_${crypto.randomBytes(16).toString('hex')}`;
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      const json = body === '' ? {} : (JSON.parse(body) as Record<string, unknown>);
      const reply = (status: number, value: unknown) => {
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(value));
      };
      const head = () => ({ ackSeq: events.at(-1)?.seq ?? 0, ackHash: events.at(-1)?.hash ?? GENESIS_HASH });
      switch (request.url) {
        case '/api/v1/enroll':
          return reply(200, {
            deviceId,
            credential: `${deviceId}.${crypto.randomBytes(24).toString('hex')}`,
            serverTime: new Date().toISOString(),
            policyPublicKey: crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
            recoveryKey: crypto.randomBytes(32).toString('base64'),
            recoveryKeyEpoch: 0,
          });
        case '/api/v1/heartbeat': {
          for (const ack of (json.acks as typeof acks | undefined) ?? []) {
            acks.push(ack);
            pending = pending.filter((command) => command.id !== ack.id);
          }
          return reply(200, { ...head(), serverTime: new Date().toISOString(), policyEtag: null, commands: pending });
        }
        case '/api/v1/events':
          events.push(...(json.entries as JournalEntry[]).filter((entry) => entry.seq > (events.at(-1)?.seq ?? 0)));
          return reply(200, { ...head(), accepted: (json.entries as unknown[]).length });
        default:
          return reply(404, { error: { code: 'not-found', message: 'not here' } });
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, acks, events };
}

async function fastConfig(stateDir: string, extra: Record<string, unknown>): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, 'config.json');
  await fs.writeFile(file, JSON.stringify({ tier: 'mynumber', reporter: { heartbeatSeconds: 1, retryBaseMs: 50, retryMaxMs: 400, uploadDelayMs: 20 }, selfcheck: { startDelaySeconds: 3 }, ...extra }), { mode: 0o600 });
}

describe('self-inspection in the running agent (real processes on loopback)', { timeout: 120_000 }, () => {
  it('runs the start inspection once the first heartbeat has come and delivers selfcheck.result with all twelve checks to the server', async () => {
    const dataDir = await tempDir();
    const stateDir = await tempDir();
    const server = await startServer(dataDir);
    await fastConfig(stateDir, { serverUrl: server.url, enrollToken: await enrollmentToken(dataDir) });
    const agent = startProcess(AGENT_CLI, ['run', '--state', stateDir]);
    await agent.waitForOutput(/running; state in/);
    const entry = await waitFor(async () => (await readJournal(stateDir)).find((item) => item.type === 'selfcheck.result') ?? null, 60_000, 'the start inspection');
    const run = SelfcheckRunSchema.parse(entry.data);
    expect(run.trigger).toBe('start');
    expect(run.checks.map((check) => check.id)).toEqual([...SELFCHECK_IDS]);
    // The first heartbeat came before the run: the upload and clock checks have data.
    expect(run.checks.find((check) => check.id === 'journal-upload')?.result).toBe('pass');
    expect(run.checks.find((check) => check.id === 'time-sync')?.result).toBe('pass');
    await waitFor(async () => {
      const status = await agentStatus(stateDir);
      return status.ackSeq >= entry.seq ? status : null;
    }, 30_000, 'the result acknowledged by the server');
    const token = (await fs.readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    const { deviceId } = await agentStatus(stateDir);
    const held = (await (await fetch(`${server.url}/api/v1/admin/devices/${deviceId}/events?after=0&limit=1000`, { headers: { authorization: `Bearer ${token}` } })).json()) as { events: JournalEntry[] };
    expect(held.events.find((item) => item.seq === entry.seq)).toMatchObject({ type: 'selfcheck.result', hash: entry.hash });
    await agent.kill('SIGTERM');
  });

  it('runs on the server command `selfcheck`, journals the run with the command id and acknowledges it with the summary', async () => {
    const stateDir = await tempDir();
    const fake = await commandServer([{ id: 'cmd-selfcheck-1', type: 'selfcheck' }]);
    await fastConfig(stateDir, { serverUrl: fake.url, enrollToken: 'fake-enrolment-token-0001', selfcheck: { startDelaySeconds: 3600 } });
    const agent = startProcess(AGENT_CLI, ['run', '--state', stateDir]);
    await agent.waitForOutput(/running; state in/);
    const ack = await waitFor(() => fake.acks.find((item) => item.id === 'cmd-selfcheck-1') ?? null, 60_000, 'the command acknowledged');
    expect(ack.ok).toBe(true);
    expect(ack.detail).toMatch(/^selfcheck \d+-\d+: (pass|fail|unknown) \(pass \d+, fail \d+, unknown \d+\)$/);
    const runs = (await readJournal(stateDir)).filter((item) => item.type === 'selfcheck.result');
    expect(runs.map((item) => [item.data.trigger, item.data.commandId])).toContainEqual(['command', 'cmd-selfcheck-1']);
    const executed = (await readJournal(stateDir)).find((item) => item.type === 'command.executed' && item.data.id === 'cmd-selfcheck-1');
    expect(executed?.data).toMatchObject({ type: 'selfcheck', ok: true });
    await waitFor(() => (fake.events.some((item) => item.type === 'selfcheck.result' && item.data.commandId === 'cmd-selfcheck-1') ? true : null), 30_000, 'the result uploaded');
    await agent.kill('SIGTERM');
  });
});
