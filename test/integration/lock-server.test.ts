import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RecoveryAnswerSchema } from '../../shared/api.js';
import { totpCode } from '../../agent/lock/factors.js';
import { readJournal } from '../helpers/agent-state.js';
import { enrolConsoleUser, ipcClientAs, startLockAgent, type LockAgent } from '../helpers/lock-agent.js';
import { adminApi, agentStatus, enrollmentToken, killAll, startServer, waitFor } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
afterEach(killAll);

const PIN = '739184';
const NOBODY = 65534;
const DAEMON = 1;

async function enrolledAgent(base: string, dataDir: string, url: string, name: string): Promise<LockAgent & { deviceId: string }> {
  const agent = await startLockAgent(base, { consoleUser: 'nobody', serverUrl: url, enrollToken: await enrollmentToken(dataDir), name });
  const deviceId = await waitFor(async () => (await agentStatus(agent.stateDir).catch(() => null))?.deviceId ?? null, 15_000, `${name} enrolled`);
  // The recovery key arrives with the enrolment; the lock can give a challenge from then on.
  return { ...agent, deviceId };
}

const unlockedBy = async (agent: LockAgent, secret: Uint8Array, offsetMs: number): Promise<void> => {
  expect((await agent.attempt({ method: 'lock.submit', params: { factor: 'pin', secret: PIN } })).view.state).toBe('second-factor');
  const result = await agent.attempt({ method: 'lock.submit', params: { factor: 'totp', secret: totpCode(secret, Date.now() + offsetMs) } });
  expect(result.ok, JSON.stringify(result.error)).toBe(true);
};

describe('the lock with a real server and real agents', () => {
  it('only the console user may try to unlock; others may look; the kernel, not the message, decides', async () => {
    const base = await tempDir();
    const agent = await startLockAgent(base, { consoleUser: 'nobody' });
    const asNobody = await ipcClientAs(NOBODY, agent.socketPath, ['{"id":1,"method":"lock.get"}', '{"id":2,"method":"lock.submit","params":{"factor":"pin","secret":"000000"}}']);
    expect(asNobody.map((line) => JSON.parse(line) as { ok: boolean; result?: { ok?: boolean; error?: { code: string } } })).toMatchObject([
      { ok: true, result: { state: 'locked', user: 'nobody', enrolled: false } },
      { ok: true, result: { ok: false, error: { code: 'not-enrolled' } } },
    ]);
    const asDaemon = await ipcClientAs(DAEMON, agent.socketPath, ['{"id":1,"method":"lock.get"}', '{"id":2,"method":"lock.submit","params":{"factor":"pin","secret":"000000"}}']);
    expect(asDaemon.map((line) => JSON.parse(line) as unknown)).toMatchObject([{ ok: true }, { id: 2, ok: false, error: { code: 'forbidden' } }]);
    await waitFor(async () => ((await readJournal(agent.stateDir)).some((e) => e.type === 'ipc.refused') ? true : null), 5_000, 'ipc.refused journaled');
    const refused = (await readJournal(agent.stateDir)).find((e) => e.type === 'ipc.refused')!;
    expect(refused.data).toMatchObject({ reason: 'forbidden', method: 'lock.submit', uid: DAEMON });
  });

  it('roams, locks remotely, recovers by challenge–response with key rotation, and resets factors from the server', async () => {
    const base = await tempDir();
    const dataDir = path.join(base, 'server');
    const { url } = await startServer(dataDir);
    const a = await enrolledAgent(base, dataDir, url, 'a');

    // Enrol on terminal A; the enrolment reaches the server (never the secret in its list).
    const secret = await enrolConsoleUser(a, PIN);
    const users = await waitFor(async () => {
      const listed = await adminApi(dataDir, url, 'GET', '/api/v1/admin/users');
      return JSON.stringify(listed.json).includes('"nobody"') ? listed.json : null;
    }, 15_000, 'enrolment on the server');
    expect(JSON.stringify(users)).not.toContain(Buffer.from(secret).toString('hex'));

    // Terminal B never saw this user: the first attempt fetches the enrolment from the server.
    const b = await enrolledAgent(base, dataDir, url, 'b');
    expect((await b.view()).enrolled).toBe(false);
    await unlockedBy(b, secret, 30_000);
    expect((await readJournal(b.stateDir)).find((e) => e.type === 'auth.enrolled')?.data).toMatchObject({ user: 'nobody', source: 'server' });

    // Remote lock from the server reaches A at its next heartbeat and is acknowledged.
    await unlockedBy(a, secret, 30_000);
    const issued = await adminApi(dataDir, url, 'POST', `/api/v1/admin/devices/${a.deviceId}/commands`, { type: 'lock' });
    expect(issued.status).toBe(201);
    await waitFor(async () => ((await a.view()).state === 'locked' ? true : null), 15_000, 'remote lock');
    expect((await readJournal(a.stateDir)).filter((e) => e.type === 'lock.locked').at(-1)?.data).toMatchObject({ trigger: 'remote-lock', user: 'nobody' });
    await waitFor(async () => {
      const listed = await adminApi(dataDir, url, 'GET', `/api/v1/admin/devices/${a.deviceId}/commands`);
      return JSON.stringify(listed.json).includes('"ok":true') ? true : null;
    }, 15_000, 'command acknowledged');

    // Lock-out on A (5 wrong PINs), then the administrator's response read over the phone.
    for (let i = 0; i < 5; i++) await a.attempt({ method: 'lock.submit', params: { factor: 'pin', secret: `00000${i}` } });
    expect((await a.view()).lockedOut).toBe(true);
    const recoverOnce = async (): Promise<void> => {
      const asked = await a.attempt({ method: 'lock.recoveryChallenge', params: { action: 'unlock' } });
      expect(asked.ok, JSON.stringify(asked.error)).toBe(true);
      const answer = await adminApi(dataDir, url, 'POST', '/api/v1/admin/recovery', { challenge: asked.view.challenge!.code });
      expect(answer.status, JSON.stringify(answer.json)).toBe(200);
      const parsed = RecoveryAnswerSchema.parse(answer.json);
      expect(parsed.matches.map((m) => m.deviceId)).toEqual([a.deviceId]);
      expect(parsed.decoded.action).toBe('unlock');
      const done = await a.attempt({ method: 'lock.recoveryRespond', params: { response: parsed.response! } });
      expect(done.ok, JSON.stringify(done.error)).toBe(true);
      expect(done.view).toMatchObject({ state: 'unlocked', lockedOut: false });
    };
    await recoverOnce();
    // The used key rotates with the server at the next contact; recovery keeps working afterwards.
    await waitFor(async () => {
      const listed = await adminApi(dataDir, url, 'GET', `/api/v1/admin/devices/${a.deviceId}/commands`);
      return JSON.stringify(listed.json).includes('set-recovery-key') && (await readJournal(a.stateDir)).some((e) => e.type === 'command.executed' && e.data.type === 'set-recovery-key' && e.data.ok === true) ? true : null;
    }, 20_000, 'recovery key rotated');
    await a.call({ method: 'lock.now' });
    await recoverOnce();
    const recovered = (await readJournal(a.stateDir)).filter((e) => e.type === 'auth.recovered');
    expect(recovered.map((e) => e.data.user)).toEqual(['nobody', 'nobody']);

    // An administrator resets the user's factors: every terminal forgets them.
    const reset = await adminApi(dataDir, url, 'DELETE', '/api/v1/admin/users/nobody/credentials');
    expect(reset.status).toBeLessThan(300);
    await waitFor(async () => (!(await a.view()).enrolled && !(await b.view()).enrolled ? true : null), 20_000, 'factors reset on both terminals');
    expect((await readJournal(b.stateDir)).some((e) => e.type === 'auth.factorsReset')).toBe(true);
  });
});
