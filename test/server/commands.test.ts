import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdminActionSchema, AdminCommandSchema, ApiErrorSchema, ApiPaths, HeartbeatResponseSchema, type AdminCommand, type Command } from '../../shared/api.js';
import { MAX_COMMANDS_PER_HEARTBEAT } from '../../server/commands.js';
import { adminGet, agentStatus, bootServer, enrolDevice, movableClock, postJson, type TestServer } from './helpers.js';

describe('remote commands', () => {
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

  const commandsUrl = (id = deviceId) => `${ApiPaths.adminDevices}/${id}/commands`;
  const queue = (body: unknown, id = deviceId, bearer = server.adminToken) => postJson(server.app, commandsUrl(id), body, bearer);
  const queued = async (body: unknown): Promise<string> => {
    const response = await queue(body);
    expect(response.statusCode).toBe(201);
    return response.json<{ id: string }>().id;
  };
  const beat = async (acks?: unknown[], bearer = credential): Promise<Command[]> => {
    const response = await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus(), ...(acks === undefined ? {} : { acks }) }, bearer);
    expect(response.statusCode).toBe(200);
    return HeartbeatResponseSchema.parse(response.json()).commands;
  };
  const listed = async (id = deviceId): Promise<AdminCommand[]> => {
    const response = await adminGet(server, commandsUrl(id));
    expect(response.statusCode).toBe(200);
    return response.json<{ commands: unknown[] }>().commands.map((c) => AdminCommandSchema.parse(c));
  };

  it('queues a command and delivers it with every heartbeat until the agent acknowledges it', async () => {
    const id = await queued({ type: 'lock', params: { reason: '離席中の端末' } });
    expect(id).toMatch(/^cmd_[0-9a-f]{24}$/);
    expect(await listed()).toMatchObject([{ id, state: 'queued', deliveredAt: null }]);

    const command = { id, type: 'lock', params: { reason: '離席中の端末' } };
    expect(await beat()).toEqual([command]);
    expect(await beat()).toEqual([command]);
    expect(await listed()).toMatchObject([{ id, state: 'delivered', deliveredAt: clock().toISOString(), ackedAt: null }]);

    expect(await beat([{ id, ok: true, detail: 'locked' }])).toEqual([]);
    expect(await beat()).toEqual([]);
    expect(await listed()).toEqual([
      {
        id,
        deviceId,
        type: 'lock',
        params: { reason: '離席中の端末' },
        state: 'succeeded',
        createdAt: clock().toISOString(),
        createdBy: 'api-token',
        deliveredAt: clock().toISOString(),
        ackedAt: clock().toISOString(),
        ok: true,
        detail: 'locked',
      },
    ]);
  });

  it('delivers in creation order, at most MAX_COMMANDS_PER_HEARTBEAT at a time', async () => {
    const ids: string[] = [];
    for (let i = 0; i < MAX_COMMANDS_PER_HEARTBEAT + 5; i += 1) ids.push(await queued({ type: i % 2 === 0 ? 'resync' : 'lock' }));
    const first = await beat();
    expect(first.map((c) => c.id)).toEqual(ids.slice(0, MAX_COMMANDS_PER_HEARTBEAT));
    const rest = await beat(first.map((c) => ({ id: c.id, ok: true })));
    expect(rest.map((c) => c.id)).toEqual(ids.slice(MAX_COMMANDS_PER_HEARTBEAT));
  });

  it('lists a failed acknowledgement as failed, with its detail, and stops sending it', async () => {
    const id = await queued({ type: 'reset-factors', params: { user: 'tanaka' } });
    await beat();
    expect(await beat([{ id, ok: false, detail: 'unknown user' }])).toEqual([]);
    expect(await listed()).toMatchObject([{ id, state: 'failed', ok: false, detail: 'unknown user' }]);
  });

  it('ignores acks from another device and acks of unknown commands', async () => {
    const other = await enrolDevice(server, { hostname: 'soumu-pc-002' });
    const id = await queued({ type: 'resync' });
    expect(await beat([{ id, ok: true }], other.credential)).toEqual([]);
    expect(await beat([{ id: 'cmd_000000000000000000000000', ok: true }])).toEqual([{ id, type: 'resync' }]);
    expect(await listed()).toMatchObject([{ id, state: 'delivered', ok: null }]);
    expect(await listed(other.deviceId)).toEqual([]);
  });

  it('answers 404 for commands of an unknown device, and queues nothing', async () => {
    const unknown = `dev_${'0'.repeat(32)}`;
    const response = await queue({ type: 'lock' }, unknown);
    expect(response.statusCode).toBe(404);
    expect(ApiErrorSchema.parse(response.json()).error.code).toBe('not-found');
    expect((await adminGet(server, commandsUrl(unknown))).statusCode).toBe(404);
    expect((await adminGet(server, ApiPaths.adminActions)).json().actions).toEqual([]);
  });

  it.each([
    ['reset-factors without a user', { type: 'reset-factors' }],
    ['reset-factors with an empty user', { type: 'reset-factors', params: { user: '' } }],
    ['a lock with an unknown parameter', { type: 'lock', params: { reason: 'x', force: true } }],
    ['set-recovery-key, which only the server sends', { type: 'set-recovery-key', params: { key: 'A'.repeat(43) + '=', epoch: 1 } }],
    ['an unknown type', { type: 'format-disk' }],
    ['an id chosen by the client', { id: 'cmd_mine', type: 'lock' }],
    ['no type', { params: {} }],
  ])('refuses %s with 400 and queues nothing', async (_case, body) => {
    const response = await queue(body);
    expect(response.statusCode).toBe(400);
    expect(ApiErrorSchema.parse(response.json()).error.code).toBe('bad-request');
    expect(await listed()).toEqual([]);
    expect(await beat()).toEqual([]);
  });

  it('records every queued command in the admin trail', async () => {
    const id = await queued({ type: 'reset-factors', params: { user: 'tanaka' } });
    const [action] = (await adminGet(server, ApiPaths.adminActions)).json().actions.map((a: unknown) => AdminActionSchema.parse(a));
    expect(action).toMatchObject({ actor: 'api-token', action: 'command.queued', deviceId, user: 'tanaka', detail: { commandId: id, type: 'reset-factors' } });
  });

  it('refuses command routes without the admin token or with a device credential', async () => {
    const none = await server.app.inject({ method: 'POST', url: commandsUrl(), headers: { 'content-type': 'application/json' }, payload: '{"type":"lock"}' });
    expect(none.statusCode).toBe(401);
    expect((await queue({ type: 'lock' }, deviceId, credential)).statusCode).toBe(401);
    const list = await server.app.inject({ method: 'GET', url: commandsUrl(), headers: { authorization: `Bearer ${credential}` } });
    expect(list.statusCode).toBe(401);
    expect(await listed()).toEqual([]);
  });

  it('refuses malformed acks in a heartbeat with 400 and closes nothing', async () => {
    const id = await queued({ type: 'resync' });
    const response = await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus(), acks: [{ id, ok: 'yes' }] }, credential);
    expect(response.statusCode).toBe(400);
    expect(await listed()).toMatchObject([{ id, state: 'queued' }]);
  });
});
