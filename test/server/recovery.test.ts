import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AdminActionSchema,
  AdminCommandSchema,
  ApiErrorSchema,
  ApiPaths,
  CommandSchema,
  HeartbeatResponseSchema,
  KnownCommandSchema,
  RecoveryAnswerSchema,
  type Command,
} from '../../shared/api.js';
import { DATA_KEY_FILE } from '../../server/data-key.js';
import { CHALLENGE_CLOCK_SKEW_MINUTES, resolveIssuedMinute } from '../../server/recovery.js';
import { DATABASE_FILE } from '../../server/sqlite-store.js';
import { RecoveryTerminal, mistypeGroup } from '../helpers/recovery-terminal.js';
import { adminGet, agentStatus, bootServer, databaseBytes, enrolDevice, movableClock, postJson, type TestServer } from './helpers.js';

const MINUTE_HOURS = 1 / 60;

describe('administrator recovery', () => {
  let server: TestServer;
  let clock: ReturnType<typeof movableClock>;
  let deviceId: string;
  let credential: string;
  let terminal: RecoveryTerminal;

  beforeEach(async () => {
    clock = movableClock(new Date('2026-11-25T09:00:30.000Z'));
    server = await bootServer({ clock });
    const enrolled = await enrolDevice(server);
    ({ deviceId, credential } = enrolled);
    terminal = new RecoveryTerminal(deviceId, enrolled.recoveryKey, enrolled.recoveryKeyEpoch);
  });
  afterEach(async () => {
    await server.cleanup();
  });

  const recover = (body: unknown, bearer: string = server.adminToken) => postJson(server.app, ApiPaths.adminRecovery, body, bearer);
  const now = () => clock().getTime();
  const beat = async (body: Record<string, unknown> = {}, bearer = credential): Promise<Command[]> => {
    const response = await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus(), ...body }, bearer);
    expect(response.statusCode).toBe(200);
    return HeartbeatResponseSchema.parse(response.json()).commands;
  };
  /** The administrator answers the terminal's challenge and the terminal checks the response. */
  const recoverOnce = async (user = 'tanaka'): Promise<boolean> => {
    const response = await recover({ challenge: terminal.challenge(user, now()) });
    expect(response.statusCode).toBe(200);
    const answer = RecoveryAnswerSchema.parse(response.json());
    return answer.response !== null && terminal.accept(answer.response);
  };
  const actions = async () => (await adminGet(server, ApiPaths.adminActions)).json().actions.map((a: unknown) => AdminActionSchema.parse(a));

  it('gives every enrolled device its own random 32-byte recovery key at epoch 0', async () => {
    const other = await enrolDevice(server, { hostname: 'soumu-pc-002' });
    expect(other.recoveryKeyEpoch).toBe(0);
    expect(Buffer.from(other.recoveryKey, 'base64')).toHaveLength(32);
    expect(other.recoveryKey).not.toBe(terminal.key.toString('base64'));
  });

  it('answers a challenge with HMAC-SHA256 by the device key, which the terminal accepts', async () => {
    const challenge = terminal.challenge('tanaka', now(), 'reset-lockout');
    const response = await recover({ challenge });
    expect(response.statusCode).toBe(200);
    const answer = RecoveryAnswerSchema.parse(response.json());
    expect(answer.decoded).toMatchObject({ action: 'reset-lockout', keyEpoch: 0, issuedAt: '2026-11-25T09:00:00.000Z' });
    expect(answer.matches).toEqual([{ deviceId, hostname: 'soumu-pc-001', users: [] }]);
    expect(answer.response?.replaceAll('-', '')).toHaveLength(15);
    expect(terminal.expectedResponseDigits()).toBe(answer.response!.split('-').map((group) => group.slice(0, 4)).join(''));
    expect(terminal.accept(answer.response!)).toBe(true);
  });

  it('accepts the challenge typed with full-width digits and spaces, as a Japanese IME gives it', async () => {
    const challenge = terminal.challenge('tanaka', now());
    const typed = challenge.replace(/[0-9]/g, (d) => String.fromCharCode(0xff10 + Number(d))).replaceAll('-', ' ');
    const answer = RecoveryAnswerSchema.parse((await recover({ challenge: typed })).json());
    expect(terminal.accept(answer.response!)).toBe(true);
  });

  it('lists the users known on the device whose tag the challenge carries', async () => {
    const bundle = (user: string) => ({
      user,
      pin: { algorithm: 'scrypt', N: 16384, r: 8, p: 1, keyLength: 32, salt: 'c2FsdHNhbHRzYWx0c2FsdA==', hash: 'aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=' },
      totpSecret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
      enrolledAt: '2026-11-25T09:00:00.000Z',
    });
    for (const user of ['tanaka', 'suzuki']) {
      const put = await server.app.inject({
        method: 'PUT',
        url: ApiPaths.credentials,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${credential}` },
        payload: JSON.stringify(bundle(user)),
      });
      expect(put.statusCode).toBe(200);
    }
    const answer = RecoveryAnswerSchema.parse((await recover({ challenge: terminal.challenge('tanaka', now()) })).json());
    expect(answer.matches).toEqual([{ deviceId, hostname: 'soumu-pc-001', users: ['tanaka'] }]);
  });

  it('names the mistyped group: a typo in group 3 is refused with 400 naming group 3, and no response', async () => {
    const challenge = mistypeGroup(terminal.challenge('tanaka', now()), 3);
    const response = await recover({ challenge });
    expect(response.statusCode).toBe(400);
    const { error } = ApiErrorSchema.parse(response.json());
    expect(error.code).toBe('bad-request');
    expect(error.groups).toEqual([3]);
    expect(error.message).toContain('group 3');
    expect(error.issues).toEqual([{ path: 'challenge', message: error.message }]);
    expect(response.body).not.toMatch(/\d{5}-\d{5}-\d{5}/);
  });

  it('refuses a challenge of the wrong length or with letters with 400', async () => {
    for (const challenge of ['12345-67890', 'abcde-12345-12345-12345-12345-12345']) {
      const response = await recover({ challenge });
      expect(response.statusCode).toBe(400);
      expect(ApiErrorSchema.parse(response.json()).error.code).toBe('bad-request');
    }
  });

  it('refuses a challenge issued more than 15 minutes ago with 400 expired, and answers one of 14 minutes', async () => {
    const old = terminal.challenge('tanaka', now());
    clock.advanceHours(17 * MINUTE_HOURS);
    const response = await recover({ challenge: old });
    expect(response.statusCode).toBe(400);
    expect(ApiErrorSchema.parse(response.json()).error.code).toBe('expired');

    const recent = terminal.challenge('tanaka', now());
    clock.advanceHours(14 * MINUTE_HOURS);
    expect((await recover({ challenge: recent })).statusCode).toBe(200);
  });

  it('answers a challenge from a terminal whose clock is a few minutes fast', async () => {
    const challenge = terminal.challenge('tanaka', now() + 3 * 60_000);
    const answer = RecoveryAnswerSchema.parse((await recover({ challenge })).json());
    expect(answer.decoded.issuedAt).toBe('2026-11-25T09:03:00.000Z');
    expect(terminal.accept(answer.response!)).toBe(true);
  });

  it('answers with the ratcheted key after each use, offline, without any heartbeat in between', async () => {
    expect(await recoverOnce()).toBe(true);
    expect(terminal.epoch).toBe(1);
    expect(await recoverOnce()).toBe(true);
    expect(await recoverOnce()).toBe(true);
    expect(terminal.epoch).toBe(3);
  });

  it('does not move its key when an answer is never typed in: the next challenge of the same epoch is answered', async () => {
    await recover({ challenge: terminal.challenge('tanaka', now()) });
    expect(await recoverOnce()).toBe(true);
  });

  it('rotates the key: rotationDue queues set-recovery-key for epoch + 1, sent until acknowledged, then current', async () => {
    expect(await recoverOnce()).toBe(true);
    const [command, ...rest] = await beat({ recovery: terminal.report() });
    expect(rest).toEqual([]);
    const parsed = KnownCommandSchema.parse(command);
    if (parsed.type !== 'set-recovery-key') throw new Error(`unexpected ${parsed.type}`);
    expect(parsed.params.epoch).toBe(2);
    expect(parsed.params.key).not.toBe(terminal.key.toString('base64'));

    // Not acknowledged yet: sent again, the same command with the same key.
    expect(await beat({ recovery: terminal.report() })).toEqual([command]);

    terminal.setKey(parsed.params.key, parsed.params.epoch);
    // Delivered but not acknowledged: a challenge of epoch 2 is answered with the pending key.
    expect(await recoverOnce()).toBe(true);
    // The terminal ratcheted the fresh key to epoch 3; it acknowledges and reports.
    expect(await beat({ acks: [{ id: parsed.id, ok: true }], recovery: terminal.report() })).toMatchObject([{ type: 'set-recovery-key', params: { epoch: 4 } }]);
    const listed = (await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}/commands`)).json().commands.map((c: unknown) => AdminCommandSchema.parse(c));
    expect(listed.find((c: { id: string }) => c.id === parsed.id)).toMatchObject({ state: 'succeeded', ok: true, params: { epoch: 2 } });
    expect(JSON.stringify(listed)).not.toContain(parsed.params.key);
  });

  it('uses the fresh key once acknowledged, and no longer the old one', async () => {
    const oldKey = terminal.key;
    const [command] = await beat({ recovery: { keyEpoch: 0, rotationDue: true } });
    const parsed = KnownCommandSchema.parse(command);
    if (parsed.type !== 'set-recovery-key') throw new Error(`unexpected ${parsed.type}`);
    terminal.setKey(parsed.params.key, parsed.params.epoch);
    expect(await beat({ acks: [{ id: parsed.id, ok: true }], recovery: terminal.report() })).toEqual([]);
    expect(await server.store.recoveryKeys(deviceId)).toMatchObject({ current: { epoch: 1 }, pending: null });
    expect(await recoverOnce()).toBe(true);

    const stale = new RecoveryTerminal(deviceId, oldKey.toString('base64'), 1);
    const answer = RecoveryAnswerSchema.parse((await recover({ challenge: stale.challenge('tanaka', now()) })).json());
    expect(stale.accept(answer.response!)).toBe(false);
  });

  it('drops a pending key the agent could not install and sends another at the next heartbeat', async () => {
    const [first] = await beat({ recovery: { keyEpoch: 0, rotationDue: true } });
    expect(await beat({ acks: [{ id: first!.id, ok: false, detail: 'disk full' }], recovery: { keyEpoch: 0, rotationDue: true } })).toMatchObject([
      { type: 'set-recovery-key', params: { epoch: 1 } },
    ]);
    const [second] = await beat({ recovery: { keyEpoch: 0, rotationDue: true } });
    expect(second!.id).not.toBe(first!.id);
    // Until then, the enrolment key still answers.
    expect(await recoverOnce()).toBe(true);
  });

  it('takes an agent reporting the pending epoch with no rotation due as having installed the key (its ack was lost)', async () => {
    const [command] = await beat({ recovery: { keyEpoch: 0, rotationDue: true } });
    const parsed = KnownCommandSchema.parse(command);
    if (parsed.type !== 'set-recovery-key') throw new Error(`unexpected ${parsed.type}`);
    terminal.setKey(parsed.params.key, parsed.params.epoch);
    // The agent restarted and forgot its ack; it reports the key it holds.
    expect(await beat({ recovery: terminal.report() })).toEqual([]);
    expect(await server.store.recoveryKeys(deviceId)).toMatchObject({ current: { epoch: 1 }, pending: null });
    expect(await recoverOnce()).toBe(true);
  });

  it('moves its stored key forward to the epoch a heartbeat reports', async () => {
    for (let i = 0; i < 3; i += 1) expect(await recoverOnce()).toBe(true);
    await beat({ recovery: terminal.report() });
    expect(await server.store.recoveryKeys(deviceId)).toMatchObject({ current: { epoch: 3 }, pending: { epoch: 4 } });
    // The terminal did not get the fresh key yet (its heartbeat answer was lost): epoch 3 still answers.
    expect(await recoverOnce()).toBe(true);
  });

  it('lists every device whose tag matches and gives a response only when deviceId chooses one', async () => {
    const other = await enrolDevice(server, { hostname: 'soumu-pc-002' });
    const db = new Database(path.join(server.dataDir, DATABASE_FILE));
    try {
      // A tag collision (6 digits): give the other device this one's tag.
      db.prepare('UPDATE devices SET recovery_tag = (SELECT recovery_tag FROM devices WHERE id = ?) WHERE id = ?').run(deviceId, other.deviceId);
    } finally {
      db.close();
    }
    const challenge = terminal.challenge('tanaka', now());
    const ambiguous = RecoveryAnswerSchema.parse((await recover({ challenge })).json());
    expect(ambiguous.matches.map((m) => m.deviceId).sort()).toEqual([deviceId, other.deviceId].sort());
    expect(ambiguous.response).toBeNull();
    const chosen = RecoveryAnswerSchema.parse((await recover({ challenge, deviceId })).json());
    expect(chosen.matches.map((m) => m.deviceId)).toEqual([deviceId]);
    expect(terminal.accept(chosen.response!)).toBe(true);
  });

  it('refuses a chosen device that does not exist (404) or did not make the challenge (400)', async () => {
    const other = await enrolDevice(server, { hostname: 'soumu-pc-002' });
    const challenge = terminal.challenge('tanaka', now());
    expect((await recover({ challenge, deviceId: `dev_${'0'.repeat(32)}` })).statusCode).toBe(404);
    const wrong = await recover({ challenge, deviceId: other.deviceId });
    expect(wrong.statusCode).toBe(400);
    expect(ApiErrorSchema.parse(wrong.json()).error.issues).toEqual([{ path: 'deviceId', message: expect.any(String) }]);
  });

  it('gives a device enrolled before recovery keys existed a key at its first heartbeat', async () => {
    const db = new Database(path.join(server.dataDir, DATABASE_FILE));
    try {
      db.prepare('DELETE FROM recovery_keys WHERE device_id = ?').run(deviceId);
      db.prepare('UPDATE devices SET recovery_tag = NULL WHERE id = ?').run(deviceId);
    } finally {
      db.close();
    }
    expect((await recover({ challenge: terminal.challenge('tanaka', now()) })).statusCode).toBe(200);
    const [command] = await beat({ recovery: { keyEpoch: 0, rotationDue: false } });
    const parsed = KnownCommandSchema.parse(command);
    if (parsed.type !== 'set-recovery-key') throw new Error(`unexpected ${parsed.type}`);
    terminal.setKey(parsed.params.key, parsed.params.epoch);
    expect(await recoverOnce()).toBe(true);
  });

  it('records every recovery request in the admin trail, answered or refused, never the response', async () => {
    const challenge = terminal.challenge('tanaka', now());
    const answer = RecoveryAnswerSchema.parse((await recover({ challenge })).json());
    await recover({ challenge: mistypeGroup(challenge, 2) });
    const trail = await actions();
    expect(trail).toMatchObject([
      { actor: 'api-token', action: 'recovery', deviceId: null, detail: { outcome: 'bad-challenge', groups: [2] } },
      { actor: 'api-token', action: 'recovery', deviceId, detail: { outcome: 'answered', action: 'unlock', keyEpoch: 0, matches: [deviceId], keyEpochUsed: 0 } },
    ]);
    expect(trail[0].at).toBe(clock().toISOString());
    expect(JSON.stringify(trail)).not.toContain(answer.response!);
    expect(JSON.stringify(trail)).not.toContain(answer.response!.replaceAll('-', ''));
  });

  it('keeps recovery keys only encrypted at rest, under a 0600 key file in the data directory', async () => {
    await beat({ recovery: { keyEpoch: 0, rotationDue: true } });
    const [command] = await beat({ recovery: { keyEpoch: 0, rotationDue: true } });
    const pendingKey = CommandSchema.parse(command).params!['key'] as string;
    const bytes = await databaseBytes(server.dataDir);
    for (const key of [terminal.key, Buffer.from(pendingKey, 'base64')]) {
      expect(bytes.includes(key)).toBe(false);
      expect(bytes.includes(Buffer.from(key.toString('base64')))).toBe(false);
      expect(bytes.includes(Buffer.from(key.toString('hex')))).toBe(false);
    }
    expect(fs.statSync(path.join(server.dataDir, DATA_KEY_FILE)).mode & 0o777).toBe(0o600);
  });

  it('refuses recovery without the admin token, and a device credential as one', async () => {
    const body = { challenge: terminal.challenge('tanaka', now()) };
    const missing = await server.app.inject({ method: 'POST', url: ApiPaths.adminRecovery, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    expect(missing.statusCode).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    expect((await recover(body, credential)).statusCode).toBe(401);
    expect((await adminGet(server, ApiPaths.adminActions)).json().actions).toEqual([]);
    const trailAsDevice = await server.app.inject({ method: 'GET', url: ApiPaths.adminActions, headers: { authorization: `Bearer ${credential}` } });
    expect(trailAsDevice.statusCode).toBe(401);
  });

  it('refuses malformed recovery bodies with 400 and records nothing', async () => {
    for (const body of [{}, { challenge: 12345 }, { challenge: 'x'.repeat(201) }, { challenge: '1', extra: true }, { challenge: '1', deviceId: 'not-a-device' }]) {
      const response = await recover(body);
      expect(response.statusCode).toBe(400);
      expect(ApiErrorSchema.parse(response.json()).error.code).toBe('bad-request');
    }
    expect((await adminGet(server, ApiPaths.adminActions)).json().actions).toEqual([]);
  });
});

describe('resolveIssuedMinute', () => {
  // A minute whose value mod 10 000 is 3, 10 s into it.
  const nowMinute = 10_000 * 2_961 + 3;
  const nowMs = nowMinute * 60_000 + 10_000;

  it('takes the latest past minute with those four digits, across the wrap of the counter', () => {
    expect(resolveIssuedMinute(9_998, nowMs)).toEqual({ issuedAtMs: (nowMinute - 5) * 60_000, expired: false });
    expect(resolveIssuedMinute(3, nowMs)).toEqual({ issuedAtMs: nowMinute * 60_000, expired: false });
    expect(resolveIssuedMinute(9_987, nowMs)).toEqual({ issuedAtMs: (nowMinute - 16) * 60_000, expired: true });
  });

  it('takes a minute a few minutes ahead as a fast terminal clock, and beyond that as a week ago', () => {
    expect(resolveIssuedMinute(3 + CHALLENGE_CLOCK_SKEW_MINUTES, nowMs)).toEqual({ issuedAtMs: (nowMinute + CHALLENGE_CLOCK_SKEW_MINUTES) * 60_000, expired: false });
    expect(resolveIssuedMinute(3 + CHALLENGE_CLOCK_SKEW_MINUTES + 1, nowMs)).toMatchObject({ expired: true });
  });
});
