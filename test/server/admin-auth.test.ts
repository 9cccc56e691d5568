import Database from 'better-sqlite3';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Secret } from 'otpauth';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_SESSION_COOKIE, AdminPaths, ApiPaths, type AdminAccount } from '../../shared/api.js';
import { SESSION_ABSOLUTE_MS, SESSION_IDLE_MS } from '../../server/admin-accounts.js';
import { createServer } from '../../server/app.js';
import { createOperationalLogger, fastifyLoggerFor } from '../../server/logging.js';
import { DATABASE_FILE } from '../../server/sqlite-store.js';
import { asSession, codeAt, createAccount, login, loginRequest, readySession, sessionIdOf, steppingClock, type TestAccount } from './admin-helpers.js';
import { adminGet, bootServer, databaseBytes, enrolDevice, type TestServer } from './helpers.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.cleanup();
  server = undefined;
});

async function boot(clock = steppingClock(), logger?: ReturnType<typeof fastifyLoggerFor>): Promise<{ server: TestServer; clock: ReturnType<typeof steppingClock> }> {
  server = await bootServer({ clock, ...(logger === undefined ? {} : { logger }) });
  return { server, clock };
}

function trail(s: TestServer): Promise<{ actor: string; action: string; detail: Record<string, unknown> }[]> {
  return adminGet(s, `${ApiPaths.adminActions}?limit=1000`).then((response) => response.json<{ actions: { actor: string; action: string; detail: Record<string, unknown> }[] }>().actions.reverse());
}

describe('administrator login: password + TOTP, one answer for any wrong part', () => {
  it('logs in with the password and the current code, and sets an HttpOnly, SameSite=Strict, Secure, host-only cookie', async () => {
    const { server: s, clock } = await boot();
    const account = await createAccount(s, 'tanaka', 'admin', clock());
    const response = await loginRequest(s, { user: 'tanaka', password: account.password, code: codeAt(account, clock()) });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ user: 'tanaka', role: 'admin', via: 'session', mustChangePassword: true });
    const cookie = String(response.headers['set-cookie']);
    expect(cookie).toMatch(new RegExp(`^${ADMIN_SESSION_COOKIE}=[A-Za-z0-9_-]{43}; `));
    for (const attribute of ['HttpOnly', 'SameSite=Strict', 'Path=/', 'Secure']) expect(cookie.split('; ')).toContain(attribute);
    expect(cookie).not.toMatch(/Domain=/i);
    // The server keeps only the session id's hash.
    const id = sessionIdOf(response);
    expect((await databaseBytes(s.dataDir)).includes(Buffer.from(id))).toBe(false);
  });

  it('accepts the account name in any case and the code typed with full-width digits', async () => {
    const { server: s, clock } = await boot();
    const account = await createAccount(s, 'Sato', 'admin', clock());
    const fullWidth = codeAt(account, clock()).replace(/\d/g, (digit) => String.fromCharCode(0xff10 + Number(digit)));
    expect((await loginRequest(s, { user: 'sato', password: account.password, code: fullWidth })).statusCode).toBe(200);
  });

  it('refuses a wrong password, a wrong code, an unknown account and a used code alike with 401, and records each failure', async () => {
    const { server: s, clock } = await boot();
    const account = await createAccount(s, 'tanaka', 'admin', clock());
    const code = codeAt(account, clock());
    const attempts = [
      { user: 'tanaka', password: 'wrong-password', code },
      { user: 'tanaka', password: account.password, code: code === '000000' ? '111111' : '000000' },
      { user: 'nobody', password: account.password, code },
    ];
    const answers = [];
    for (const attempt of attempts) answers.push(await loginRequest(s, attempt));
    expect(answers.map((answer) => answer.statusCode)).toEqual([401, 401, 401]);
    expect(new Set(answers.map((answer) => answer.json<{ error: { message: string } }>().error.message)).size).toBe(1);
    expect(answers.every((answer) => answer.headers['set-cookie'] === undefined)).toBe(true);

    // The code works once: a second login in the same 30-s step (or with an earlier code) fails.
    expect((await loginRequest(s, { user: 'tanaka', password: account.password, code })).statusCode).toBe(200);
    expect((await loginRequest(s, { user: 'tanaka', password: account.password, code })).statusCode).toBe(401);
    clock.advance(30);
    expect((await loginRequest(s, { user: 'tanaka', password: account.password, code: codeAt(account, clock()) })).statusCode).toBe(200);

    const rows = await trail(s);
    expect(rows.map((row) => `${row.actor} ${row.action}`)).toEqual([
      'tanaka login.failed',
      'tanaka login.failed',
      'nobody login.failed',
      'tanaka login',
      'tanaka login.failed',
      'tanaka login',
    ]);
    expect(rows[2]!.detail).toMatchObject({ knownAccount: false, ip: '127.0.0.1' });
    expect(JSON.stringify(rows)).not.toContain(account.password);
    expect(JSON.stringify(rows)).not.toContain(code);
  });

  it('refuses a login over plain HTTP from another machine, and a login posted from another origin', async () => {
    const { server: s, clock } = await boot();
    const account = await createAccount(s, 'tanaka', 'admin', clock());
    const body = { user: 'tanaka', password: account.password, code: codeAt(account, clock()) };
    const remote = await loginRequest(s, body, { remoteAddress: '10.20.0.5' });
    expect(remote.statusCode).toBe(403);
    expect(remote.json()).toMatchObject({ error: { code: 'forbidden', message: expect.stringMatching(/HTTPS/) } });
    expect((await loginRequest(s, body, { headers: { origin: 'https://evil.example' } })).statusCode).toBe(403);
    expect((await loginRequest(s, body, { headers: { 'sec-fetch-site': 'cross-site' } })).statusCode).toBe(403);
    expect((await loginRequest(s, body, { headers: { origin: 'http://localhost', 'sec-fetch-site': 'same-origin' } })).statusCode).toBe(200);
  });

  it('never writes a password, a code or a session id to the operational log', async () => {
    const chunks: Buffer[] = [];
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    const { server: s, clock } = await boot(steppingClock(), fastifyLoggerFor(createOperationalLogger('silly', stream)));
    const account = await createAccount(s, 'tanaka', 'admin', clock());
    const code = codeAt(account, clock());
    await loginRequest(s, { user: 'tanaka', password: 'wrong-password-xyz', code });
    const session = await login(s, account, clock());
    await asSession(s, session, 'GET', AdminPaths.session);
    const log = Buffer.concat(chunks).toString('utf8');
    expect(log).toContain('request completed');
    for (const secret of [account.password, 'wrong-password-xyz', code, session.id, session.csrf]) expect(log).not.toContain(secret);
  });
});

describe('the initial password must be changed first', () => {
  it('allows only the session routes until the password is changed, then everything', async () => {
    const { server: s, clock } = await boot();
    const account = await createAccount(s, 'tanaka', 'admin', clock());
    const session = await login(s, account, clock());
    expect((await asSession(s, session, 'GET', ApiPaths.adminDevices)).statusCode).toBe(403);
    expect((await asSession(s, session, 'GET', AdminPaths.session)).json()).toMatchObject({ mustChangePassword: true });

    const wrong = await asSession(s, session, 'POST', AdminPaths.password, { currentPassword: 'not-it', newPassword: 'a-long-enough-password' });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({ error: { issues: [{ path: 'currentPassword' }] } });
    const short = await asSession(s, session, 'POST', AdminPaths.password, { currentPassword: account.password, newPassword: 'short' });
    expect(short.json()).toMatchObject({ error: { issues: [{ path: 'newPassword' }] } });
    const same = await asSession(s, session, 'POST', AdminPaths.password, { currentPassword: account.password, newPassword: account.password });
    expect(same.json()).toMatchObject({ error: { issues: [{ path: 'newPassword' }] } });

    const changed = await asSession(s, session, 'POST', AdminPaths.password, { currentPassword: account.password, newPassword: 'a-long-enough-password' });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(changed.json()).toMatchObject({ mustChangePassword: false });
    expect((await asSession(s, session, 'GET', ApiPaths.adminDevices)).statusCode).toBe(200);
    expect((await trail(s)).map((row) => row.action)).toContain('password.changed');

    // The old password no longer works; the new one does.
    clock.advance(30);
    expect((await loginRequest(s, { user: 'tanaka', password: account.password, code: codeAt(account, clock()) })).statusCode).toBe(401);
    clock.advance(30);
    expect((await loginRequest(s, { user: 'tanaka', password: 'a-long-enough-password', code: codeAt(account, clock()) })).json()).toMatchObject({ mustChangePassword: false });
  });

  it('ends the account’s other sessions when the password changes', async () => {
    const { server: s, clock } = await boot();
    const account = await createAccount(s, 'tanaka', 'admin', clock());
    const other = await login(s, account, clock());
    clock.advance(30);
    const session = await login(s, account, clock());
    expect((await asSession(s, session, 'POST', AdminPaths.password, { currentPassword: account.password, newPassword: 'a-long-enough-password' })).statusCode).toBe(200);
    expect((await asSession(s, other, 'GET', AdminPaths.session)).statusCode).toBe(401);
    expect((await asSession(s, session, 'GET', AdminPaths.session)).statusCode).toBe(200);
  });
});

describe('sessions: idle and absolute timeouts, logout', () => {
  it('ends a session after 30 minutes without activity', async () => {
    const { server: s, clock } = await boot();
    const session = await readySession(s, 'tanaka', 'admin', clock, clock.advance);
    clock.advance(SESSION_IDLE_MS / 1000 - 60);
    expect((await asSession(s, session, 'GET', ApiPaths.adminDevices)).statusCode).toBe(200);
    clock.advance(SESSION_IDLE_MS / 1000 - 60);
    expect((await asSession(s, session, 'GET', ApiPaths.adminDevices)).statusCode).toBe(200);
    clock.advance(SESSION_IDLE_MS / 1000 + 1);
    const expired = await asSession(s, session, 'GET', ApiPaths.adminDevices);
    expect(expired.statusCode).toBe(401);
    expect(expired.json()).toMatchObject({ error: { code: 'unauthorized', message: expect.stringMatching(/expired/) } });
    // Deleted, not just refused: coming back within the idle time does not revive it.
    clock.advance(-SESSION_IDLE_MS / 1000);
    expect((await asSession(s, session, 'GET', ApiPaths.adminDevices)).statusCode).toBe(401);
  });

  it('ends a session 12 hours after login however active it is', async () => {
    const { server: s, clock } = await boot();
    const session = await readySession(s, 'tanaka', 'admin', clock, clock.advance);
    const steps = Math.ceil(SESSION_ABSOLUTE_MS / (20 * 60_000));
    let last = 200;
    for (let i = 0; i < steps && last === 200; i += 1) {
      clock.advance(20 * 60);
      last = (await asSession(s, session, 'GET', AdminPaths.session)).statusCode;
    }
    expect(last).toBe(401);
    expect(steps * 20 * 60_000).toBeGreaterThanOrEqual(SESSION_ABSOLUTE_MS);
  });

  it('logs out: the session is deleted, the cookie cleared, the trail records it', async () => {
    const { server: s, clock } = await boot();
    const session = await readySession(s, 'tanaka', 'admin', clock, clock.advance);
    const noCsrf = await asSession(s, session, 'POST', AdminPaths.logout, undefined, { csrf: null });
    expect(noCsrf.statusCode).toBe(403);
    const out = await asSession(s, session, 'POST', AdminPaths.logout);
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(new RegExp(`^${ADMIN_SESSION_COOKIE}=; .*Max-Age=0`));
    expect((await asSession(s, session, 'GET', AdminPaths.session)).statusCode).toBe(401);
    expect((await trail(s)).at(-1)).toMatchObject({ actor: 'tanaka', action: 'logout' });
  });

  it('keeps the admin token working for automation, as actor api-token with role admin', async () => {
    const { server: s } = await boot();
    const answer = await adminGet(s, AdminPaths.session);
    expect(answer.json()).toMatchObject({ user: 'api-token', role: 'admin', via: 'token', csrfToken: null });
    const { deviceId } = await enrolDevice(s);
    const queued = await s.app.inject({
      method: 'POST',
      url: `${ApiPaths.adminDevices}/${deviceId}/commands`,
      headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ type: 'lock' }),
    });
    expect(queued.statusCode).toBe(201);
    expect((await trail(s)).at(-1)).toMatchObject({ actor: 'api-token', action: 'command.queued' });
    // A wrong bearer is 401 even with a valid session cookie alongside (no silent fall-back).
    expect((await s.app.inject({ method: 'GET', url: ApiPaths.adminDevices, headers: { authorization: 'Bearer wrong-token-wrong-token-wrong-token' } })).statusCode).toBe(401);
  });
});

describe('CSRF: every state-changing request of a session carries its token and comes from this origin', () => {
  async function setUp(): Promise<{ s: TestServer; session: Awaited<ReturnType<typeof readySession>>; url: string }> {
    const { server: s, clock } = await boot();
    const session = await readySession(s, 'tanaka', 'admin', clock, clock.advance);
    const { deviceId } = await enrolDevice(s);
    return { s, session, url: `${ApiPaths.adminDevices}/${deviceId}/commands` };
  }

  it('refuses a missing or wrong CSRF token with 403, and queues nothing', async () => {
    const { s, session, url } = await setUp();
    const missing = await asSession(s, session, 'POST', url, { type: 'lock' }, { csrf: null });
    expect(missing.statusCode).toBe(403);
    expect(missing.json()).toMatchObject({ error: { code: 'forbidden', message: expect.stringMatching(/CSRF/) } });
    // One character changed — never the same one (a token ending in "A" made this check pass the token itself, 1 run in 64).
    const wrong = `${session.csrf.slice(0, -1)}${session.csrf.endsWith('A') ? 'B' : 'A'}`;
    expect(wrong).not.toBe(session.csrf);
    expect((await asSession(s, session, 'POST', url, { type: 'lock' }, { csrf: wrong })).statusCode).toBe(403);
    expect((await asSession(s, session, 'POST', url, { type: 'lock' }, { csrf: '' })).statusCode).toBe(403);
    expect((await asSession(s, session, 'GET', url)).json()).toEqual({ commands: [] });
  });

  it('refuses another session’s token', async () => {
    const { server: s, clock } = await boot();
    const a = await readySession(s, 'tanaka', 'admin', clock, clock.advance);
    const b = await readySession(s, 'sato', 'admin', clock, clock.advance);
    expect((await asSession(s, a, 'PUT', `${ApiPaths.adminPolicies}/mynumber`, {}, { csrf: b.csrf })).statusCode).toBe(403);
  });

  it('refuses a missing or foreign Origin and a cross-site fetch even with the right token', async () => {
    const { s, session, url } = await setUp();
    expect((await asSession(s, session, 'POST', url, { type: 'lock' }, { origin: null })).statusCode).toBe(403);
    expect((await asSession(s, session, 'POST', url, { type: 'lock' }, { origin: 'http://evil.example' })).statusCode).toBe(403);
    expect((await asSession(s, session, 'POST', url, { type: 'lock' }, { origin: 'http://localhost:8080' })).statusCode).toBe(403);
    expect((await asSession(s, session, 'POST', url, { type: 'lock' }, { headers: { 'sec-fetch-site': 'same-site' } })).statusCode).toBe(403);
    const ok = await asSession(s, session, 'POST', url, { type: 'lock' }, { headers: { 'sec-fetch-site': 'same-origin' } });
    expect(ok.statusCode, ok.body).toBe(201);
    expect((await trail(s)).at(-1)).toMatchObject({ actor: 'tanaka', action: 'command.queued' });
  });

  it('needs no token for reading', async () => {
    const { s, session } = await setUp();
    expect((await asSession(s, session, 'GET', ApiPaths.adminDevices, undefined, { csrf: null, origin: null })).statusCode).toBe(200);
  });
});

describe('login throttling, per account and per address, persisted', () => {
  async function fail(s: TestServer, user: string, remoteAddress?: string): Promise<number> {
    return (await loginRequest(s, { user, password: 'wrong-password', code: '000000' }, { remoteAddress })).statusCode;
  }

  it('blocks an account after 5 failures in a row, with a doubling wait, even for the right password', async () => {
    const { server: s, clock } = await boot();
    const account = await createAccount(s, 'tanaka', 'admin', clock());
    const statuses = [];
    for (let i = 0; i < 5; i += 1) statuses.push(await fail(s, 'tanaka'));
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    const blocked = await loginRequest(s, { user: 'tanaka', password: account.password, code: codeAt(account, clock()) });
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json()).toMatchObject({ error: { code: 'rate-limited' } });
    expect(Number(blocked.headers['retry-after'])).toBe(30);
    // The name in another case is the same account.
    expect(await fail(s, 'TANAKA')).toBe(429);

    clock.advance(31);
    expect(await fail(s, 'tanaka')).toBe(401); // 6th failure: now 60 s
    const again = await loginRequest(s, { user: 'tanaka', password: account.password, code: codeAt(account, clock()) });
    expect(again.statusCode).toBe(429);
    expect(Number(again.headers['retry-after'])).toBe(60);
    clock.advance(61);
    expect((await loginRequest(s, { user: 'tanaka', password: account.password, code: codeAt(account, clock()) })).statusCode).toBe(200);
    // A success forgets the account's failures.
    clock.advance(30);
    expect(await fail(s, 'tanaka')).toBe(401);
    expect(await fail(s, 'tanaka')).toBe(401);
  });

  it('blocks an address after 20 failures across accounts; other addresses and accounts from them are not affected', async () => {
    const { server: s, clock } = await boot();
    const account = await createAccount(s, 'tanaka', 'admin', clock());
    for (let i = 0; i < 20; i += 1) expect(await fail(s, `guess${i}`, '127.0.0.2')).toBe(401);
    expect(await fail(s, 'someone-else', '127.0.0.2')).toBe(429);
    expect((await loginRequest(s, { user: 'tanaka', password: account.password, code: codeAt(account, clock()) }, { remoteAddress: '127.0.0.2' })).statusCode).toBe(429);
    expect((await loginRequest(s, { user: 'tanaka', password: account.password, code: codeAt(account, clock()) }, { remoteAddress: '127.0.0.3' })).statusCode).toBe(200);
  });

  it('keeps the block across a server restart (it is in the database)', async () => {
    const clock = steppingClock();
    const { server: s } = await boot(clock);
    const account = await createAccount(s, 'tanaka', 'admin', clock());
    for (let i = 0; i < 5; i += 1) await fail(s, 'tanaka');
    await s.close();
    const restarted = await createServer({ dataDir: s.dataDir, clock });
    try {
      const answer = await restarted.app.inject({
        method: 'POST',
        url: AdminPaths.login,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ user: 'tanaka', password: account.password, code: codeAt(account, clock()) }),
      });
      expect(answer.statusCode).toBe(429);
    } finally {
      await restarted.close();
    }
  });

  it('forgets failures 24 hours after the last one', async () => {
    const { server: s, clock } = await boot();
    await createAccount(s, 'tanaka', 'admin', clock());
    for (let i = 0; i < 4; i += 1) await fail(s, 'tanaka');
    clock.advance(24 * 3600 + 1);
    for (let i = 0; i < 4; i += 1) expect(await fail(s, 'tanaka')).toBe(401);
    expect(await fail(s, 'tanaka')).toBe(401);
    expect(await fail(s, 'tanaka')).toBe(429);
  });
});

describe('administrator accounts at rest', () => {
  it('stores no password, no TOTP secret and no session id in clear, and lists accounts without secrets', async () => {
    const { server: s, clock } = await boot();
    const account: TestAccount = await createAccount(s, 'tanaka', 'admin', clock());
    await createAccount(s, 'kansa', 'auditor', clock());
    const session = await login(s, account, clock());
    const bytes = await databaseBytes(s.dataDir);
    const secretText = new Secret({ buffer: Uint8Array.from(account.secret).buffer }).base32;
    for (const secret of [account.password, secretText, Buffer.from(account.secret).toString('hex'), session.id]) {
      expect(bytes.includes(Buffer.from(secret))).toBe(false);
    }
    const db = new Database(path.join(s.dataDir, DATABASE_FILE), { readonly: true });
    try {
      const row = db.prepare<[], { password_json: string; sealed_totp: string }>("SELECT password_json, sealed_totp FROM admin_accounts WHERE name = 'tanaka'").get()!;
      expect(JSON.parse(row.password_json)).toMatchObject({ algorithm: 'scrypt', N: expect.any(Number), r: 8, p: 1, salt: expect.any(String), hash: expect.any(String) });
      expect(row.sealed_totp).toMatch(/^sk1\./);
    } finally {
      db.close();
    }
    clock.advance(30);
    const listed = await adminGet(s, AdminPaths.accounts);
    const accounts = listed.json<{ accounts: AdminAccount[] }>().accounts;
    expect(accounts).toEqual([
      { user: 'kansa', role: 'auditor', createdAt: expect.any(String), totpConfirmed: false, mustChangePassword: true, lastLoginAt: null },
      { user: 'tanaka', role: 'admin', createdAt: expect.any(String), totpConfirmed: true, mustChangePassword: true, lastLoginAt: expect.any(String) },
    ]);
    expect(listed.body).not.toMatch(/password_json|sealed|hash|salt/);
  });
});
