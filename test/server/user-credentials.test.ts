import path from 'node:path';
import { PassThrough } from 'node:stream';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AdminUserSchema,
  ApiErrorSchema,
  ApiPaths,
  CredentialsPutResponseSchema,
  HeartbeatResponseSchema,
  UserCredentialBundleSchema,
  type UserCredentialBundle,
} from '../../shared/api.js';
import { createOperationalLogger, fastifyLoggerFor } from '../../server/logging.js';
import { DATABASE_FILE } from '../../server/sqlite-store.js';
import { adminDelete, adminGet, agentStatus, bootServer, databaseBytes, enrolDevice, movableClock, postJson, type TestServer } from './helpers.js';

const TOTP_SECRET = 'KRUGKIDROVUWG2ZAMJZG653OEBTG66BA';
const PIN_HASH = 'q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=';

function bundle(user: string, overrides: Partial<UserCredentialBundle> = {}): UserCredentialBundle {
  return {
    user,
    pin: { algorithm: 'scrypt', N: 16384, r: 8, p: 1, keyLength: 32, salt: 'bXVuaWNpcGFsLXNhbHQ=', hash: PIN_HASH },
    totpSecret: TOTP_SECRET,
    enrolledAt: '2026-11-25T09:00:00.000+09:00',
    ...overrides,
  };
}

interface Terminal {
  readonly deviceId: string;
  readonly credential: string;
}

describe('roaming user credentials', () => {
  let server: TestServer;
  const clock = movableClock();

  afterEach(async () => {
    await server.cleanup();
  });

  /** Two mynumber terminals (A, B) and one lgwan terminal (C). */
  async function setUp(options: Parameters<typeof bootServer>[0] = {}): Promise<{ a: Terminal; b: Terminal; c: Terminal }> {
    server = await bootServer({ clock, ...options });
    const a = await enrolDevice(server, { hostname: 'soumu-pc-001' });
    const b = await enrolDevice(server, { hostname: 'soumu-pc-002' });
    const c = await enrolDevice(server, { hostname: 'lgwan-pc-001' });
    await beat(c, { tier: 'lgwan' });
    await beat(a, { tier: 'mynumber' });
    return { a, b, c };
  }

  const beat = async (terminal: Terminal, status: Parameters<typeof agentStatus>[0] = {}) => {
    const response = await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus(status) }, terminal.credential);
    expect(response.statusCode).toBe(200);
    return HeartbeatResponseSchema.parse(response.json()).commands;
  };
  const put = (body: unknown, bearer: string | undefined) =>
    server.app.inject({
      method: 'PUT',
      url: ApiPaths.credentials,
      headers: { 'content-type': 'application/json', ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }) },
      payload: JSON.stringify(body),
    });
  const lookup = (user: string, bearer: string | undefined) => postJson(server.app, ApiPaths.credentialsLookup, { user }, bearer);
  const users = async (query = '') => (await adminGet(server, `${ApiPaths.adminUsers}${query}`)).json().users.map((u: unknown) => AdminUserSchema.parse(u));

  it('stores a bundle from one terminal and gives it to another terminal of the same tier', async () => {
    const { a, b } = await setUp();
    const stored = await put(bundle('tanaka'), a.credential);
    expect(stored.statusCode).toBe(200);
    expect(CredentialsPutResponseSchema.parse(stored.json())).toEqual({ user: 'tanaka', tier: 'mynumber', enrolledAt: clock().toISOString(), replaced: false });
    const fetched = await lookup('tanaka', b.credential);
    expect(fetched.statusCode).toBe(200);
    expect(UserCredentialBundleSchema.parse(fetched.json())).toEqual(bundle('tanaka'));
  });

  it('never gives a bundle to a terminal of another tier: 404, as for an unknown user', async () => {
    const { a, c } = await setUp();
    await put(bundle('tanaka'), a.credential);
    const refused = await lookup('tanaka', c.credential);
    expect(refused.statusCode).toBe(404);
    expect(ApiErrorSchema.parse(refused.json()).error.code).toBe('not-found');
    expect(refused.body).not.toContain(TOTP_SECRET);
    expect((await lookup('nobody', a.credential)).statusCode).toBe(404);

    // The same user enrolled on the lgwan tier is a separate bundle.
    const lgwanSecret = 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U';
    expect((await put(bundle('tanaka', { totpSecret: lgwanSecret }), c.credential)).json()).toMatchObject({ tier: 'lgwan', replaced: false });
    expect((await lookup('tanaka', c.credential)).json().totpSecret).toBe(lgwanSecret);
    expect((await lookup('tanaka', a.credential)).json().totpSecret).toBe(TOTP_SECRET);
  });

  it('replaces the bundle of the same user and tier, remembering the terminal that uploaded it last', async () => {
    const { a, b } = await setUp();
    await put(bundle('tanaka'), a.credential);
    const newer = bundle('tanaka', { totpSecret: 'ONSWG4TFORZWK3DFMN2XEZLUNFXW4ZLS' });
    expect((await put(newer, b.credential)).json()).toMatchObject({ replaced: true });
    expect((await lookup('tanaka', a.credential)).json()).toEqual(newer);
    expect(await users()).toEqual([{ user: 'tanaka', tier: 'mynumber', enrolledAt: clock().toISOString(), deviceId: b.deviceId, hostname: 'soumu-pc-002' }]);
  });

  it('keeps bundles only encrypted at rest: no TOTP secret or PIN hash in the database files', async () => {
    const { a } = await setUp();
    await put(bundle('tanaka'), a.credential);
    await put(bundle('suzuki'), a.credential);
    const bytes = await databaseBytes(server.dataDir);
    expect(bytes.includes(Buffer.from(TOTP_SECRET))).toBe(false);
    expect(bytes.includes(Buffer.from(PIN_HASH))).toBe(false);
    expect(bytes.includes(Buffer.from(PIN_HASH, 'base64'))).toBe(false);
  });

  it('does not open a sealed bundle moved to another user’s row (the row is bound into the encryption)', async () => {
    const { a } = await setUp();
    await put(bundle('tanaka'), a.credential);
    await put(bundle('suzuki', { totpSecret: 'ONSWG4TFORZWK3DFMN2XEZLUNFXW4ZLS' }), a.credential);
    const db = new Database(path.join(server.dataDir, DATABASE_FILE));
    try {
      db.prepare(
        "UPDATE user_credentials SET sealed_bundle = (SELECT sealed_bundle FROM user_credentials WHERE user_name = 'tanaka') WHERE user_name = 'suzuki'",
      ).run();
    } finally {
      db.close();
    }
    const response = await lookup('suzuki', a.credential);
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain(TOTP_SECRET);
  });

  it('lists enrolled users for administrators, per tier, without any factor', async () => {
    const { a, c } = await setUp();
    await put(bundle('tanaka'), a.credential);
    await put(bundle('suzuki'), c.credential);
    const response = await adminGet(server, ApiPaths.adminUsers);
    expect(response.body).not.toContain(TOTP_SECRET);
    expect(response.body).not.toContain(PIN_HASH);
    expect(await users()).toEqual([
      { user: 'suzuki', tier: 'lgwan', enrolledAt: clock().toISOString(), deviceId: c.deviceId, hostname: 'lgwan-pc-001' },
      { user: 'tanaka', tier: 'mynumber', enrolledAt: clock().toISOString(), deviceId: a.deviceId, hostname: 'soumu-pc-001' },
    ]);
    expect((await users('?tier=lgwan')).map((u: { user: string }) => u.user)).toEqual(['suzuki']);
    expect((await adminGet(server, `${ApiPaths.adminUsers}?tier=secret`)).statusCode).toBe(400);
  });

  it('resets a user on a tier: deletes the bundle and queues reset-factors for every terminal of that tier only', async () => {
    const { a, b, c } = await setUp();
    await put(bundle('tanaka'), a.credential);
    await put(bundle('tanaka'), c.credential);
    const response = await adminDelete(server, `${ApiPaths.adminUsers}/tanaka/credentials?tier=mynumber`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ user: 'tanaka', deletedTiers: ['mynumber'], resetCommands: 2 });
    expect((await lookup('tanaka', b.credential)).statusCode).toBe(404);
    expect((await lookup('tanaka', c.credential)).statusCode).toBe(200);
    for (const terminal of [a, b]) expect(await beat(terminal)).toMatchObject([{ type: 'reset-factors', params: { user: 'tanaka' } }]);
    expect(await beat(c, { tier: 'lgwan' })).toEqual([]);
    const [action] = (await adminGet(server, ApiPaths.adminActions)).json().actions;
    expect(action).toMatchObject({ actor: 'api-token', action: 'credentials.reset', user: 'tanaka', detail: { tiers: ['mynumber'], deletedTiers: ['mynumber'], resetCommands: 2 } });
  });

  it('resets a user on every tier when no tier is named', async () => {
    const { a, c } = await setUp();
    await put(bundle('tanaka'), a.credential);
    await put(bundle('tanaka'), c.credential);
    const response = await adminDelete(server, `${ApiPaths.adminUsers}/tanaka/credentials`);
    expect(response.json()).toEqual({ user: 'tanaka', deletedTiers: ['lgwan', 'mynumber'], resetCommands: 3 });
    expect(await users()).toEqual([]);
  });

  it('answers 404 for resetting a user nobody enrolled or used, and queues nothing', async () => {
    const { a } = await setUp();
    const response = await adminDelete(server, `${ApiPaths.adminUsers}/nobody/credentials`);
    expect(response.statusCode).toBe(404);
    expect(await beat(a)).toEqual([]);
    expect((await adminGet(server, ApiPaths.adminActions)).json().actions).toEqual([]);
    expect((await adminDelete(server, `${ApiPaths.adminUsers}/tanaka/credentials?tier=secret`)).statusCode).toBe(400);
  });

  it('refuses device routes with the admin token or no credential, and admin routes with a device credential', async () => {
    const { a } = await setUp();
    for (const bearer of [server.adminToken, undefined]) {
      expect((await put(bundle('tanaka'), bearer)).statusCode).toBe(401);
      expect((await lookup('tanaka', bearer)).statusCode).toBe(401);
    }
    const asDevice = await server.app.inject({ method: 'GET', url: ApiPaths.adminUsers, headers: { authorization: `Bearer ${a.credential}` } });
    expect(asDevice.statusCode).toBe(401);
    expect((await adminDelete(server, `${ApiPaths.adminUsers}/tanaka/credentials`, a.credential)).statusCode).toBe(401);
    expect((await adminDelete(server, `${ApiPaths.adminUsers}/tanaka/credentials`, null)).statusCode).toBe(401);
    expect(await users()).toEqual([]);
  });

  it.each([
    ['a lower-case TOTP secret', bundle('tanaka', { totpSecret: TOTP_SECRET.toLowerCase() })],
    ['a short TOTP secret', bundle('tanaka', { totpSecret: 'JBSWY3DP' })],
    ['no PIN hash', (({ pin: _pin, ...rest }) => rest)(bundle('tanaka'))],
    ['a PIN hash of another algorithm', { ...bundle('tanaka'), pin: { ...bundle('tanaka').pin, algorithm: 'md5' } }],
    ['an empty user', bundle('')],
    ['an unknown field', { ...bundle('tanaka'), admin: true }],
  ])('refuses a bundle with %s with 400 and stores nothing', async (_case, body) => {
    const { a } = await setUp();
    const response = await put(body, a.credential);
    expect(response.statusCode).toBe(400);
    expect(ApiErrorSchema.parse(response.json()).error.code).toBe('bad-request');
    expect(response.body).not.toContain(TOTP_SECRET);
    expect(await users()).toEqual([]);
  });

  it('refuses a malformed lookup with 400', async () => {
    const { a } = await setUp();
    for (const body of [{}, { user: '' }, { user: 'tanaka', tier: 'mynumber' }]) {
      expect((await postJson(server.app, ApiPaths.credentialsLookup, body, a.credential)).statusCode).toBe(400);
    }
  });

  it('never writes the TOTP secret or the PIN hash to the server log', async () => {
    const chunks: Buffer[] = [];
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    const { a, b } = await setUp({ logger: fastifyLoggerFor(createOperationalLogger('silly', stream)) });
    await put(bundle('tanaka'), a.credential);
    await lookup('tanaka', b.credential);
    await put(bundle('tanaka', { totpSecret: TOTP_SECRET.toLowerCase() }), a.credential);
    const text = Buffer.concat(chunks).toString('utf8');
    expect(text).toContain('request completed');
    expect(text).toContain('user credentials stored');
    expect(text.toUpperCase()).not.toContain(TOTP_SECRET);
    expect(text).not.toContain(PIN_HASH);
  });
});
