import fs from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AdminCommandSchema,
  AdminPaths,
  AdminTerminalsResponseSchema,
  ApiErrorSchema,
  ApiPaths,
  HeartbeatResponseSchema,
  type AdminCommand,
  type Command,
} from '../../shared/api.js';
import { GENESIS_HASH } from '../../shared/journal.js';
import { TIERS, type Tier } from '../../shared/policy.js';
import { runCli, type CliIo } from '../../server/cli-commands.js';
import { DATABASE_FILE, SqliteStore } from '../../server/sqlite-store.js';
import { adminGet, adminPut, agentStatus, bootServer, enrolDevice, journal, movableClock, policyBody, postJson, type TestServer } from './helpers.js';

describe('POST /api/v1/heartbeat', () => {
  let server: TestServer;
  let deviceId: string;
  let credential: string;
  const clock = movableClock();

  beforeEach(async () => {
    server = await bootServer({ clock });
    ({ deviceId, credential } = await enrolDevice(server));
  });
  afterEach(async () => {
    await server.cleanup();
  });

  const beat = (bearer?: string, status = agentStatus()) => postJson(server.app, ApiPaths.heartbeat, { status }, bearer);

  it('answers with the acknowledged journal head, no policy and no commands', async () => {
    const response = await beat(credential);
    expect(response.statusCode).toBe(200);
    expect(HeartbeatResponseSchema.parse(response.json())).toEqual({
      ackSeq: 0,
      ackHash: GENESIS_HASH,
      serverTime: clock().toISOString(),
      policyEtag: null,
      commands: [],
    });
  });

  it('reports the head of the events the server holds', async () => {
    const chain = journal(3);
    await postJson(server.app, ApiPaths.events, { entries: chain }, credential);
    expect((await beat(credential)).json()).toMatchObject({ ackSeq: 3, ackHash: chain[2]!.hash });
  });

  it('stores the status and the time of contact, which the device list shows', async () => {
    await beat(credential, agentStatus({ agentVersion: '0.2.0', enforcement: { state: 'unenforced', reason: 'not-root' }, lockState: 'locked' }));
    const [device] = (await adminGet(server, ApiPaths.adminDevices)).json().devices;
    expect(device).toMatchObject({
      deviceId,
      agentVersion: '0.2.0',
      enforcement: 'unenforced',
      lockState: 'locked',
      lastSeenAt: clock().toISOString(),
    });
  });

  it.each([
    ['no Authorization header', undefined],
    ['an empty bearer', ''],
    ['a malformed credential', 'not-a-credential'],
    ['a credential with the wrong secret', () => `${deviceId}.${'B'.repeat(43)}`],
    ['a credential of a device that does not exist', () => `dev_${'0'.repeat(32)}.${'B'.repeat(43)}`],
    ['the device id alone', () => deviceId],
  ])('refuses a heartbeat with %s: 401 unauthorized', async (_case, bearer) => {
    const response = await beat(typeof bearer === 'function' ? bearer() : bearer);
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer');
    expect(ApiErrorSchema.parse(response.json()).error.code).toBe('unauthorized');
  });

  it('refuses a credential sent with another scheme than Bearer', async () => {
    const response = await server.app.inject({
      method: 'POST',
      url: ApiPaths.heartbeat,
      headers: { 'content-type': 'application/json', authorization: `Basic ${credential}` },
      payload: JSON.stringify({ status: agentStatus() }),
    });
    expect(response.statusCode).toBe(401);
  });

  it('refuses the admin token as a device credential', async () => {
    expect((await beat(server.adminToken)).statusCode).toBe(401);
  });

  // The heartbeat's UPDATE leaves the tier alone and writes it apart, only when it must (its two
  // indexes): the row and the indexes the terminal list walks must agree after every heartbeat.
  it('keeps the stored tier and the terminal list indexes in step, heartbeat after heartbeat', async () => {
    const listedUnder = async (tier: string): Promise<string[]> => {
      const response = await adminGet(server, `${AdminPaths.terminals}?tier=${tier}&sort=lastSeen`);
      expect(response.statusCode).toBe(200);
      return AdminTerminalsResponseSchema.parse(response.json()).terminals.map((terminal) => `${terminal.deviceId}:${terminal.tier}`);
    };
    const reported = ['lgwan', 'lgwan', 'internet', undefined, 'mynumber', 'lgwan'] as const;
    for (const [index, tier] of reported.entries()) {
      clock.advanceHours(1);
      expect((await beat(credential, agentStatus(tier === undefined ? {} : { tier }))).statusCode).toBe(200);
      const stored = await server.store.deviceTier(deviceId);
      // The first report sets it.
      if (index === 0) expect(stored).toBe('lgwan');
      for (const other of TIERS) expect(await listedUnder(other)).toEqual(other === stored ? [`${deviceId}:${stored}`] : []);
    }
    const db = new Database(path.join(server.dataDir, DATABASE_FILE), { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
  });

  // The store remembers each tier's newest policy, and the heartbeat takes the device's policy
  // revision from its group commit: a new policy or revision, written by this server or by another
  // process, must still reach the very next heartbeat.
  it('carries the etag of a policy or policy revision written since the last heartbeat, here or by another process', async () => {
    const keyId = server.policyKey.keyId;
    const other = await enrolDevice(server, { hostname: 'kikaku-pc-002', hardwareId: 'machine-id-0002' });
    const etagOf = async (bearer: string, tier: Tier): Promise<string | null> => {
      const response = await beat(bearer, agentStatus({ tier }));
      expect(response.statusCode).toBe(200);
      return HeartbeatResponseSchema.parse(response.json()).policyEtag;
    };
    const lgwan = (): Promise<string | null> => etagOf(credential, 'lgwan');
    const internet = (): Promise<string | null> => etagOf(other.credential, 'internet');
    expect(await lgwan()).toBeNull();
    expect(await internet()).toBeNull();

    expect((await adminPut(server, `${ApiPaths.adminPolicies}/lgwan`, policyBody())).statusCode).toBe(200);
    expect(await lgwan()).toBe(`${keyId}:lgwan:2`);
    expect(await internet()).toBeNull();

    // `sekimori-server policy set` opens its own connection to the database, as its process does.
    const file = path.join(server.root, 'policy.json');
    await fs.writeFile(file, JSON.stringify(policyBody()));
    const io: CliIo = { stdout: () => {}, stderr: () => {}, untilStopSignal: () => Promise.resolve('SIGTERM') };
    expect(await runCli(['policy', 'set', '--data', server.dataDir, '--tier', 'lgwan', file], io)).toBe(0);
    expect(await lgwan()).toBe(`${keyId}:lgwan:3`);
    expect(await runCli(['policy', 'set', '--data', server.dataDir, '--tier', 'internet', file], io)).toBe(0);
    expect(await internet()).toBe(`${keyId}:internet:2`);
    expect((await adminPut(server, `${ApiPaths.adminPolicies}/internet`, policyBody())).statusCode).toBe(200);
    expect(await internet()).toBe(`${keyId}:internet:3`);
    expect(await lgwan()).toBe(`${keyId}:lgwan:3`);

    // The device's policy revision (approvals and revocations of its requests), here bumped by another connection.
    const raw = new Database(path.join(server.dataDir, DATABASE_FILE));
    try {
      raw.prepare('UPDATE devices SET policy_rev = policy_rev + 1, policy_rev_at = ? WHERE id = ?').run(clock().toISOString(), deviceId);
    } finally {
      raw.close();
    }
    expect(await lgwan()).toBe(`${keyId}:lgwan:3+1`);
    expect(await internet()).toBe(`${keyId}:internet:3`);
  });

  // The heartbeat reads the open commands without a write transaction when none is new: a command
  // queued between two heartbeats, here or by another process, goes out with the very next one.
  it('delivers a command queued since the last heartbeat with the very next one, and marks it delivered then', async () => {
    const commandsUrl = `${ApiPaths.adminDevices}/${deviceId}/commands`;
    const commandsOf = async (): Promise<Command[]> => {
      const response = await beat(credential);
      expect(response.statusCode).toBe(200);
      return HeartbeatResponseSchema.parse(response.json()).commands;
    };
    const listed = async (): Promise<AdminCommand[]> =>
      (await adminGet(server, commandsUrl)).json<{ commands: unknown[] }>().commands.map((command) => AdminCommandSchema.parse(command)).reverse();
    expect(await commandsOf()).toEqual([]);

    const first = (await postJson(server.app, commandsUrl, { type: 'lock' }, server.adminToken)).json<{ id: string }>().id;
    clock.advanceHours(1);
    const firstDelivery = clock().toISOString();
    expect(await commandsOf()).toEqual([{ id: first, type: 'lock' }]);
    // Until acknowledged: again and again.
    for (let again = 0; again < 3; again += 1) {
      clock.advanceHours(1);
      expect(await commandsOf()).toEqual([{ id: first, type: 'lock' }]);
    }
    expect(await listed()).toMatchObject([{ id: first, state: 'delivered', deliveredAt: firstDelivery }]);

    // Queued by another connection to the database (as a second process would), next to a delivered one.
    const other = SqliteStore.open(server.dataDir, { create: false });
    const second = 'cmd_0123456789abcdef01234567';
    try {
      await other.addCommands([{ id: second, deviceId, type: 'resync', params: null, createdAt: clock().toISOString(), createdBy: 'test' }]);
    } finally {
      await other.close();
    }
    clock.advanceHours(1);
    const secondDelivery = clock().toISOString();
    expect(await commandsOf()).toEqual([
      { id: first, type: 'lock' },
      { id: second, type: 'resync' },
    ]);
    expect(await listed()).toMatchObject([
      { id: first, state: 'delivered', deliveredAt: firstDelivery },
      { id: second, state: 'delivered', deliveredAt: secondDelivery },
    ]);

    // A heartbeat with acks takes its commands after them, apart from the group commit: the same rules.
    const third = (await postJson(server.app, commandsUrl, { type: 'selfcheck' }, server.adminToken)).json<{ id: string }>().id;
    clock.advanceHours(1);
    const thirdDelivery = clock().toISOString();
    const withAck = async (ids: string[]): Promise<Command[]> => {
      const response = await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus(), acks: ids.map((id) => ({ id, ok: true })) }, credential);
      expect(response.statusCode).toBe(200);
      return HeartbeatResponseSchema.parse(response.json()).commands;
    };
    expect(await withAck([first])).toEqual([
      { id: second, type: 'resync' },
      { id: third, type: 'selfcheck' },
    ]);
    expect(await listed()).toMatchObject([
      { id: first, state: 'succeeded', deliveredAt: firstDelivery },
      { id: second, state: 'delivered', deliveredAt: secondDelivery },
      { id: third, state: 'delivered', deliveredAt: thirdDelivery },
    ]);
    clock.advanceHours(1);
    expect(await withAck([second])).toEqual([{ id: third, type: 'selfcheck' }]);
    expect(await listed()).toMatchObject([{ id: first }, { id: second, state: 'succeeded' }, { id: third, state: 'delivered', deliveredAt: thirdDelivery }]);
    expect(await withAck([third])).toEqual([]);
    expect(await commandsOf()).toEqual([]);

    // The store remembers which devices have no open command (it skips their query): once it knows
    // this one has none, a command queued here or by another connection, in any way, still goes
    // out with the very next heartbeat, on either path.
    const fourth = (await postJson(server.app, commandsUrl, { type: 'resync' }, server.adminToken)).json<{ id: string }>().id;
    expect(await commandsOf()).toEqual([{ id: fourth, type: 'resync' }]);
    expect(await withAck([fourth])).toEqual([]);
    expect(await withAck([])).toEqual([]);
    const raw = new Database(path.join(server.dataDir, DATABASE_FILE));
    try {
      raw.prepare("INSERT INTO commands (id, device_id, type, created_at, created_by) VALUES ('cmd_aaaaaaaaaaaaaaaaaaaaaaaa', ?, 'lock', ?, 'test')").run(deviceId, clock().toISOString());
      expect(await withAck([])).toEqual([{ id: 'cmd_aaaaaaaaaaaaaaaaaaaaaaaa', type: 'lock' }]);
      expect(await commandsOf()).toEqual([{ id: 'cmd_aaaaaaaaaaaaaaaaaaaaaaaa', type: 'lock' }]);
      expect(await withAck(['cmd_aaaaaaaaaaaaaaaaaaaaaaaa'])).toEqual([]);
      expect(await commandsOf()).toEqual([]);
      // Reopened by another connection, then by the server's own (no code does either today; the
      // store must not depend on which statement writes).
      raw.prepare("UPDATE commands SET acked_at = NULL, ok = NULL WHERE id = 'cmd_aaaaaaaaaaaaaaaaaaaaaaaa'").run();
      expect(await commandsOf()).toEqual([{ id: 'cmd_aaaaaaaaaaaaaaaaaaaaaaaa', type: 'lock' }]);
      expect(await withAck(['cmd_aaaaaaaaaaaaaaaaaaaaaaaa'])).toEqual([]);
      expect(await commandsOf()).toEqual([]);
      const own = (server.store as unknown as { db: Database.Database }).db;
      own.prepare("UPDATE commands SET acked_at = NULL, ok = NULL WHERE id = 'cmd_aaaaaaaaaaaaaaaaaaaaaaaa'").run();
      expect(await commandsOf()).toEqual([{ id: 'cmd_aaaaaaaaaaaaaaaaaaaaaaaa', type: 'lock' }]);
    } finally {
      raw.close();
    }
  });
});
