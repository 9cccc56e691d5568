import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiErrorSchema, ApiPaths, HeartbeatResponseSchema } from '../../shared/api.js';
import { GENESIS_HASH } from '../../shared/journal.js';
import { adminGet, agentStatus, bootServer, enrolDevice, journal, movableClock, postJson, type TestServer } from './helpers.js';

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
});
