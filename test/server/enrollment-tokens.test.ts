import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiPaths, EnrollResponseSchema } from '../../shared/api.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, runCli, type CliIo } from '../../server/cli-commands.js';
import { sha256Hex } from '../../server/crypto.js';
import { MAX_TOKEN_USES, createEnrollmentToken } from '../../server/enrollment.js';
import { MIGRATIONS, migrate } from '../../server/migrations.js';
import { ADMIN_ENROLLMENT_TOKENS_PATH } from '../../server/routes/admin-enrollment.js';
import { DATABASE_FILE, SqliteStore } from '../../server/sqlite-store.js';
import type { EnrollmentTokenSummary } from '../../server/store.js';
import { SERVER_CLI, cli, killAll, startServer } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';
import { asSession, readySession, steppingClock } from './admin-helpers.js';
import { adminGet, bootServer, databaseBytes, hostFacts, movableClock, postJson, type TestServer } from './helpers.js';

// Multi-use enrolment tokens (mass rollout: one installer config for every PC), on the real app and a
// real SQLite file: the use limit, expiry and revocation, the race for the last use, the token id on
// every device it enrolled, the command line, the admin API and the migration of existing tokens.

const tempDir = useTempDirs();
let server: TestServer | undefined;
afterEach(async () => {
  await killAll();
  await server?.cleanup();
  server = undefined;
});

const enrol = (s: TestServer, token: string, hostname = 'soumu-pc-001') => postJson(s.app, ApiPaths.enroll, { token, host: hostFacts({ hostname }) });

/** `devices.enrollment_token_id` of every device, read from the database file itself. */
function tokenIdsOfDevices(dataDir: string): Map<string, string | null> {
  const db = new Database(path.join(dataDir, DATABASE_FILE), { readonly: true });
  try {
    const rows = db.prepare<[], { id: string; enrollment_token_id: string | null }>('SELECT id, enrollment_token_id FROM devices').all();
    return new Map(rows.map((row) => [row.id, row.enrollment_token_id]));
  } finally {
    db.close();
  }
}

async function summaryOf(s: TestServer, id: string): Promise<EnrollmentTokenSummary> {
  const found = (await s.store.listEnrollmentTokens()).find((token) => token.id === id);
  if (!found) throw new Error(`no token ${id}`);
  return found;
}

describe('multi-use enrolment tokens', () => {
  it('enrol up to their number of uses, each device recording the token id (never the token), then refuse', async () => {
    server = await bootServer();
    const issued = await createEnrollmentToken(server.store, { ttlHours: 24, uses: 3, now: new Date(), createdBy: 'cli' });
    expect(issued.id).toMatch(/^enr_[0-9a-f]{24}$/);
    const answers = [];
    for (const hostname of ['pc-1', 'pc-2', 'pc-3']) answers.push(await enrol(server, issued.token, hostname));
    expect(answers.map((answer) => answer.statusCode)).toEqual([200, 200, 200]);
    const ids = answers.map((answer) => EnrollResponseSchema.parse(answer.json()).deviceId);
    expect(new Set(ids).size).toBe(3);

    const fourth = await enrol(server, issued.token, 'pc-4');
    expect(fourth.statusCode).toBe(401);
    expect(fourth.json()).toMatchObject({ error: { code: 'token-invalid' } });
    expect(await server.store.listDevices()).toHaveLength(3);

    expect(await summaryOf(server, issued.id)).toMatchObject({ maxUses: 3, usesLeft: 0, enrolledDevices: 3, revokedAt: null, createdBy: 'cli' });
    const recorded = tokenIdsOfDevices(server.dataDir);
    for (const id of ids) expect(recorded.get(id)).toBe(issued.id);
    // The database holds neither the token nor anything but its hash.
    await server.close();
    const stored = (await databaseBytes(server.dataDir)).toString('latin1');
    expect(stored).not.toContain(issued.token);
    expect(stored).toContain(sha256Hex(issued.token));
  });

  it('gives the last use to exactly one of the enrolments racing for it (concurrent requests, real SQLite file)', async () => {
    server = await bootServer();
    const issued = await createEnrollmentToken(server.store, { ttlHours: 24, uses: 2, now: new Date(), createdBy: 'cli' });
    expect((await enrol(server, issued.token, 'first')).statusCode).toBe(200);
    // Two agents at the same moment with the last use.
    const racing = await Promise.all([enrol(server, issued.token, 'racer-a'), enrol(server, issued.token, 'racer-b')]);
    expect(racing.map((answer) => answer.statusCode).sort()).toEqual([200, 401]);
    // Many at once on a token with 5 uses: exactly 5 win.
    const many = await createEnrollmentToken(server.store, { ttlHours: 24, uses: 5, now: new Date(), createdBy: 'cli' });
    const burst = await Promise.all(Array.from({ length: 24 }, (_, i) => enrol(server!, many.token, `burst-${i}`)));
    expect(burst.filter((answer) => answer.statusCode === 200)).toHaveLength(5);
    expect(burst.filter((answer) => answer.statusCode === 401)).toHaveLength(19);
    expect(await summaryOf(server, many.id)).toMatchObject({ usesLeft: 0, enrolledDevices: 5 });
    expect([...tokenIdsOfDevices(server.dataDir).values()].filter((id) => id === many.id)).toHaveLength(5);
    expect(await server.store.listDevices()).toHaveLength(2 + 5);
  });

  it('gives out exactly its uses when two server processes share the database file and enrolments race across both', { timeout: 120_000 }, async () => {
    const dataDir = await tempDir();
    const first = await startServer(dataDir);
    const second = await startServer(dataDir);
    const created = await cli(SERVER_CLI, ['enrollment-token', '--data', dataDir, '--uses', '6', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const issued = JSON.parse(created.stdout) as { id: string; token: string; uses: number };
    expect(issued.uses).toBe(6);

    const attempt = (url: string, i: number) =>
      fetch(`${url}${ApiPaths.enroll}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: issued.token, host: hostFacts({ hostname: `pc-${i}` }) }),
      }).then((response) => response.status);
    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => attempt(i % 2 === 0 ? first.url : second.url, i)));
    expect(statuses.filter((status) => status === 200)).toHaveLength(6);
    expect(statuses.filter((status) => status === 401)).toHaveLength(24);

    const listed = await cli(SERVER_CLI, ['enrollment-token', '--data', dataDir, '--list', '--json']);
    expect(JSON.parse(listed.stdout)).toMatchObject({ tokens: [{ id: issued.id, maxUses: 6, usesLeft: 0, enrolledDevices: 6 }] });
    const devices = JSON.parse((await cli(SERVER_CLI, ['devices', '--data', dataDir, '--json'])).stdout) as { devices: unknown[] };
    expect(devices.devices).toHaveLength(6);
    expect([...tokenIdsOfDevices(dataDir).values()]).toEqual(Array(6).fill(issued.id));
  });

  it('refuse after their expiry even with uses left, and after revocation, which keeps the record', async () => {
    const clock = movableClock();
    server = await bootServer({ clock });
    const expiring = await createEnrollmentToken(server.store, { ttlHours: 2, uses: 100, now: clock(), createdBy: 'cli' });
    const revoked = await createEnrollmentToken(server.store, { ttlHours: 24, uses: 100, now: clock(), createdBy: 'cli' });
    expect((await enrol(server, expiring.token, 'early')).statusCode).toBe(200);
    expect((await enrol(server, revoked.token, 'before-revoke')).statusCode).toBe(200);

    expect(await server.store.revokeEnrollmentToken(revoked.id, clock().toISOString())).toMatchObject({ id: revoked.id, usesLeft: 0, enrolledDevices: 1, revokedAt: clock().toISOString() });
    expect((await enrol(server, revoked.token, 'after-revoke')).statusCode).toBe(401);
    expect(await server.store.revokeEnrollmentToken('enr_000000000000000000000000', clock().toISOString())).toBeNull();

    clock.advanceHours(2);
    expect((await enrol(server, expiring.token, 'late')).statusCode).toBe(401);
    expect(await summaryOf(server, expiring.id)).toMatchObject({ usesLeft: 99, enrolledDevices: 1 });
    expect((await server.store.listDevices()).map((device) => device.hostname).sort()).toEqual(['before-revoke', 'early']);
  });

  it('refuse a use count outside 1..MAX_TOKEN_USES and a lifetime outside its range', async () => {
    server = await bootServer();
    const now = new Date();
    for (const uses of [0, -1, 1.5, MAX_TOKEN_USES + 1]) {
      await expect(createEnrollmentToken(server.store, { ttlHours: 24, uses, now, createdBy: 'cli' }), String(uses)).rejects.toThrow(RangeError);
    }
    await expect(createEnrollmentToken(server.store, { ttlHours: 0, uses: 2, now, createdBy: 'cli' })).rejects.toThrow(RangeError);
    expect((await createEnrollmentToken(server.store, { ttlHours: 24, uses: MAX_TOKEN_USES, now, createdBy: 'cli' })).uses).toBe(MAX_TOKEN_USES);
  });
});

describe('migration 9 (enrolment tokens with uses)', () => {
  it('keeps the state of existing tokens, gives each an id and records it on the device it enrolled', async () => {
    const dir = await tempDir();
    const file = path.join(dir, DATABASE_FILE);
    const old = new Database(file);
    migrate(old, MIGRATIONS.slice(0, 8));
    old.prepare(
      `INSERT INTO devices (id, hostname, os, arch, hardware_id, agent_version, credential_hash, enrolled_at, ack_hash)
       VALUES ('dev_${'a'.repeat(32)}', 'old-pc', 'linux', 'x64', 'hw', '0.1.0', '${'c'.repeat(64)}', '2026-11-01T00:00:00.000Z', '${'0'.repeat(64)}')`,
    ).run();
    const insert = old.prepare('INSERT INTO enrollment_tokens (token_hash, created_at, expires_at, used_at, used_by_device) VALUES (?, ?, ?, ?, ?)');
    insert.run('1'.repeat(64), '2026-11-01T00:00:00.000Z', '2030-01-01T00:00:00.000Z', '2026-11-01T01:00:00.000Z', `dev_${'a'.repeat(32)}`);
    insert.run('2'.repeat(64), '2026-11-02T00:00:00.000Z', '2030-01-01T00:00:00.000Z', null, null);
    old.close();

    const store = SqliteStore.open(dir, { create: false });
    try {
      const tokens = await store.listEnrollmentTokens();
      expect(tokens.map(({ id: _id, ...rest }) => rest)).toEqual([
        { createdAt: '2026-11-02T00:00:00.000Z', createdBy: 'cli', expiresAt: '2030-01-01T00:00:00.000Z', maxUses: 1, usesLeft: 1, lastUsedAt: null, revokedAt: null, enrolledDevices: 0 },
        { createdAt: '2026-11-01T00:00:00.000Z', createdBy: 'cli', expiresAt: '2030-01-01T00:00:00.000Z', maxUses: 1, usesLeft: 0, lastUsedAt: '2026-11-01T01:00:00.000Z', revokedAt: null, enrolledDevices: 1 },
      ]);
      for (const token of tokens) expect(token.id).toMatch(/^enr_[0-9a-f]{24}$/);
      expect(tokenIdsOfDevices(dir).get(`dev_${'a'.repeat(32)}`)).toBe(tokens[1]!.id);
      // The spent one stays spent; the unused one still enrols.
      const device = (id: string) => ({
        id,
        hostname: 'pc',
        os: 'linux',
        arch: 'x64',
        hardwareId: 'hw',
        agentVersion: '0.1.0',
        credentialHash: 'c'.repeat(64),
        enrolledAt: '2026-11-25T00:00:00.000Z',
        recoveryTag: '123456',
        recoveryKey: { epoch: 0, sealedKey: 'sealed', createdAt: '2026-11-25T00:00:00.000Z' },
      });
      expect(await store.enrollDevice('1'.repeat(64), device(`dev_${'b'.repeat(32)}`))).toBe(false);
      expect(await store.enrollDevice('2'.repeat(64), device(`dev_${'c'.repeat(32)}`))).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('sekimori-server enrollment-token', () => {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (line) => out.push(line), stderr: (line) => err.push(line), untilStopSignal: () => Promise.resolve('SIGTERM') };
  const runTokenCli = async (...args: string[]): Promise<number> => {
    out.length = 0;
    err.length = 0;
    return runCli(['enrollment-token', '--data', server!.dataDir, ...args], io);
  };

  it('creates a token for N terminals (only the token on stdout, --json with its id), lists and revokes it, in the admin trail', async () => {
    server = await bootServer();
    expect(await runTokenCli('--uses', '500', '--ttl-hours', '48')).toBe(EXIT_OK);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const plain = out[0]!;
    expect(await runTokenCli('--uses', '3', '--json')).toBe(EXIT_OK);
    const issued = JSON.parse(out.join('\n')) as { id: string; token: string; uses: number; expiresAt: string };
    expect(issued).toMatchObject({ id: expect.stringMatching(/^enr_[0-9a-f]{24}$/), uses: 3 });
    for (const hostname of ['a', 'b']) expect((await enrol(server, issued.token, hostname)).statusCode).toBe(200);
    expect((await enrol(server, plain, 'c')).statusCode).toBe(200);

    expect(await runTokenCli('--list')).toBe(EXIT_OK);
    expect(out[0]).toBe('ID\tCREATED\tEXPIRES\tUSED\tLEFT\tTERMINALS\tSTATE');
    const row = out.find((line) => line.startsWith(issued.id))!.split('\t');
    expect(row.slice(3)).toEqual(['2/3', '1', '2', 'active']);
    expect(out.join('\n')).not.toContain(issued.token);
    expect(out.join('\n')).not.toContain(plain);

    expect(await runTokenCli('--revoke', issued.id)).toBe(EXIT_OK);
    expect(out).toEqual([`revoked ${issued.id} (2 terminal(s) enrolled with it)`]);
    expect((await enrol(server, issued.token, 'd')).statusCode).toBe(401);
    expect(await runTokenCli('--list', '--json')).toBe(EXIT_OK);
    expect(JSON.parse(out.join('\n')).tokens.find((token: EnrollmentTokenSummary) => token.id === issued.id)).toMatchObject({ usesLeft: 0, enrolledDevices: 2, revokedAt: expect.any(String) });
    expect(await runTokenCli('--list')).toBe(EXIT_OK);
    expect(out.find((line) => line.startsWith(issued.id))!.split('\t').at(-1)).toBe('revoked');

    const trail = (await adminGet(server, ApiPaths.adminActions)).json<{ actions: { actor: string; action: string; detail: Record<string, unknown> }[] }>();
    const tokenActions = trail.actions.filter((action) => action.action.startsWith('enrollment-token.'));
    expect(tokenActions.map((action) => [action.actor, action.action, action.detail.tokenId])).toEqual([
      ['cli', 'enrollment-token.revoked', issued.id],
      ['cli', 'enrollment-token.created', issued.id],
      ['cli', 'enrollment-token.created', expect.stringMatching(/^enr_/)],
    ]);
    expect(tokenActions[1]!.detail).toEqual({ tokenId: issued.id, uses: 3, expiresAt: issued.expiresAt });
    expect(JSON.stringify(trail)).not.toContain(issued.token);
  });

  it.each([
    ['zero uses', ['--uses', '0']],
    ['more uses than the maximum', ['--uses', String(MAX_TOKEN_USES + 1)]],
    ['uses that are not a whole number', ['--uses', '2.5']],
    ['--list with --uses', ['--list', '--uses', '3']],
    ['--revoke with --list', ['--revoke', `enr_${'0'.repeat(24)}`, '--list']],
    ['--revoke with --ttl-hours', ['--revoke', `enr_${'0'.repeat(24)}`, '--ttl-hours', '5']],
    ['--revoke with something that is not a token id', ['--revoke', 'abc']],
  ])('answers %s with exit 2 and usage on stderr', async (_case, args) => {
    server = await bootServer();
    expect(await runTokenCli(...args)).toBe(EXIT_USAGE);
    expect(out).toEqual([]);
    expect(err.join('\n')).toContain('Usage: sekimori-server enrollment-token');
  });

  it('answers --revoke of an unknown id with exit 1 and one line', async () => {
    server = await bootServer();
    expect(await runTokenCli('--revoke', `enr_${'0'.repeat(24)}`)).toBe(EXIT_FAILURE);
    expect(err).toEqual([`sekimori-server: no enrolment token enr_${'0'.repeat(24)}`]);
  });
});

describe(`admin API ${ADMIN_ENROLLMENT_TOKENS_PATH}`, () => {
  it('lets an admin create a multi-use token (201, no-store), list it and revoke it, each recorded with the account', async () => {
    const clock = steppingClock();
    server = await bootServer({ clock });
    const admin = await readySession(server, 'tanaka', 'admin', clock, clock.advance);
    const created = await asSession(server, admin, 'POST', ADMIN_ENROLLMENT_TOKENS_PATH, { uses: 2, ttlHours: 72 });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.headers['cache-control']).toBe('no-store');
    const issued = created.json<{ id: string; token: string; uses: number; createdAt: string; expiresAt: string }>();
    expect(issued).toEqual({
      id: expect.stringMatching(/^enr_[0-9a-f]{24}$/),
      token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      uses: 2,
      createdAt: clock().toISOString(),
      expiresAt: new Date(clock().getTime() + 72 * 3_600_000).toISOString(),
    });
    expect((await enrol(server, issued.token, 'pc-1')).statusCode).toBe(200);

    const listed = await asSession(server, admin, 'GET', ADMIN_ENROLLMENT_TOKENS_PATH);
    expect(listed.statusCode).toBe(200);
    expect(listed.json()).toEqual({
      tokens: [{ id: issued.id, createdAt: issued.createdAt, createdBy: 'tanaka', expiresAt: issued.expiresAt, maxUses: 2, usesLeft: 1, lastUsedAt: clock().toISOString(), revokedAt: null, enrolledDevices: 1 }],
    });
    expect(listed.body).not.toContain(issued.token);

    const revoked = await asSession(server, admin, 'POST', `${ADMIN_ENROLLMENT_TOKENS_PATH}/${issued.id}/revoke`);
    expect(revoked.statusCode, revoked.body).toBe(200);
    expect(revoked.json()).toMatchObject({ id: issued.id, usesLeft: 0, enrolledDevices: 1 });
    expect((await enrol(server, issued.token, 'pc-2')).statusCode).toBe(401);
    expect((await asSession(server, admin, 'POST', `${ADMIN_ENROLLMENT_TOKENS_PATH}/enr_${'0'.repeat(24)}/revoke`)).statusCode).toBe(404);

    const trail = (await asSession(server, admin, 'GET', ApiPaths.adminActions)).json<{ actions: { actor: string; action: string; detail: Record<string, unknown> }[] }>();
    expect(trail.actions.filter((action) => action.action.startsWith('enrollment-token.')).map((action) => [action.actor, action.action, action.detail])).toEqual([
      ['tanaka', 'enrollment-token.revoked', { tokenId: issued.id, enrolledDevices: 1 }],
      ['tanaka', 'enrollment-token.created', { tokenId: issued.id, uses: 2, expiresAt: issued.expiresAt }],
    ]);
    expect(JSON.stringify(trail)).not.toContain(issued.token);
  });

  it('refuses an auditor, a session without its CSRF token or from another origin, and bad limits; creates nothing then', async () => {
    const clock = steppingClock();
    server = await bootServer({ clock });
    const admin = await readySession(server, 'tanaka', 'admin', clock, clock.advance);
    const auditor = await readySession(server, 'kansa', 'auditor', clock, clock.advance);
    expect((await asSession(server, auditor, 'POST', ADMIN_ENROLLMENT_TOKENS_PATH, { uses: 5 })).statusCode).toBe(403);
    expect((await asSession(server, admin, 'POST', ADMIN_ENROLLMENT_TOKENS_PATH, { uses: 5 }, { csrf: null })).statusCode).toBe(403);
    expect((await asSession(server, admin, 'POST', ADMIN_ENROLLMENT_TOKENS_PATH, { uses: 5 }, { csrf: 'x'.repeat(43) })).statusCode).toBe(403);
    expect((await asSession(server, admin, 'POST', ADMIN_ENROLLMENT_TOKENS_PATH, { uses: 5 }, { origin: 'https://evil.example' })).statusCode).toBe(403);
    for (const body of [{ uses: 0 }, { uses: MAX_TOKEN_USES + 1 }, { uses: 1.5 }, { ttlHours: 0 }, { ttlHours: 366 * 24 + 1 }, { uses: 2, token: 'chosen' }]) {
      const answer = await asSession(server, admin, 'POST', ADMIN_ENROLLMENT_TOKENS_PATH, body);
      expect(answer.statusCode, JSON.stringify(body)).toBe(400);
    }
    // An auditor may read the list (ids and counts only).
    expect((await asSession(server, auditor, 'GET', ADMIN_ENROLLMENT_TOKENS_PATH)).json()).toEqual({ tokens: [] });
    expect(await server.store.listEnrollmentTokens()).toEqual([]);
    // The admin token (automation) may create one; defaults: 1 use, 168 h.
    const automated = await server.app.inject({
      method: 'POST',
      url: ADMIN_ENROLLMENT_TOKENS_PATH,
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(automated.statusCode).toBe(201);
    expect(automated.json()).toMatchObject({ uses: 1, expiresAt: new Date(clock().getTime() + 168 * 3_600_000).toISOString() });
    expect((await server.store.listEnrollmentTokens())[0]).toMatchObject({ createdBy: 'api-token' });
  });
});
