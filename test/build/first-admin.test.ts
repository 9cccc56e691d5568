import { Secret } from 'otpauth';
import { afterEach, describe, expect, it } from 'vitest';
import type { AdminSession } from '../../shared/api.js';
import { firstAdminNotice } from '../../build/first-admin.js';
import { adminTotpCode } from '../../server/admin-accounts.js';
import { runCli } from '../../server/cli-commands.js';
import { FAST_SCRYPT, loginRequest, steppingClock } from '../server/admin-helpers.js';
import { bootServer, type TestServer } from '../server/helpers.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.cleanup()));
});

const URL_BASE = 'http://127.0.0.1:8443';

function valueOf(lines: readonly string[], label: string): string {
  const line = lines.find((text) => text.trimStart().startsWith(label));
  if (line === undefined) throw new Error(`no "${label}" line in ${lines.join('\n')}`);
  return line.trimStart().slice(label.length).trim();
}

describe('npm start: the first administrator, printed once', () => {
  it('creates an admin that logs in at the first start of an empty data dir, and prints no credentials at later starts', async () => {
    const clock = steppingClock();
    // The server runs (as under npm start) while the launcher creates the account through its own connection.
    const server = await bootServer({ clock });
    servers.push(server);
    const { dataDir } = server;

    const first = await firstAdminNotice(dataDir, URL_BASE, { now: clock(), scrypt: FAST_SCRYPT });
    expect(first.created).toBe(true);
    expect(first.lines.join('\n')).toContain(`${URL_BASE}/dashboard/`);
    expect(valueOf(first.lines, 'created admin account')).toBe('admin');
    const password = valueOf(first.lines, 'initial password:');
    const secret = valueOf(first.lines, 'TOTP secret (base32):');
    const uri = valueOf(first.lines, 'otpauth URI:');
    expect(uri).toMatch(/^otpauth:\/\/totp\//);
    expect(uri).toContain(`secret=${secret}`);

    // The printed password and TOTP secret log in to the real app (the initial password must then be changed).
    const code = adminTotpCode(Secret.fromBase32(secret).bytes, clock().getTime());
    const response = await loginRequest(server, { user: 'admin', password, code });
    expect(response.statusCode).toBe(200);
    expect(response.json<AdminSession>()).toMatchObject({ user: 'admin', role: 'admin', mustChangePassword: true });
    // Recorded like `create-admin`: one account.created row, with no secret in it.
    const trail = await server.store.listAdminActions(10);
    const created = trail.filter((action) => action.action === 'account.created');
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ actor: 'cli', detail: { account: 'admin', role: 'admin' } });
    expect(JSON.stringify(trail)).not.toContain(password);
    expect(JSON.stringify(trail)).not.toContain(secret);

    // Every later start: no account created, nothing secret printed, how to create another instead.
    clock.advance(60);
    const second = await firstAdminNotice(dataDir, URL_BASE, { now: clock(), scrypt: FAST_SCRYPT });
    expect(second.created).toBe(false);
    const text = second.lines.join('\n');
    expect(text).not.toMatch(/password|TOTP|otpauth/i);
    expect(text).toContain('an admin exists; create another with');
    expect(text).toContain(`create-admin --data ${dataDir} --user NAME`);
    expect((await server.store.listAdminAccounts()).map((account) => account.name)).toEqual(['admin']);
    // The first credentials still log in (the account was not replaced).
    const again = await loginRequest(server, { user: 'admin', password, code: adminTotpCode(Secret.fromBase32(secret).bytes, clock().getTime()) });
    expect(again.statusCode).toBe(200);
  });

  it('prints no credentials when an administrator was created with create-admin before the first npm start', async () => {
    const server = await bootServer();
    servers.push(server);
    const out: string[] = [];
    const io = { stdout: (line: string) => out.push(line), stderr: (line: string) => out.push(line), untilStopSignal: () => new Promise<string>(() => {}) };
    expect(await runCli(['create-admin', '--data', server.dataDir, '--user', 'ops-lead'], io)).toBe(0);
    expect(out[0]).toBe('created admin account ops-lead');
    const notice = await firstAdminNotice(server.dataDir, URL_BASE, { scrypt: FAST_SCRYPT });
    expect(notice.created).toBe(false);
    expect(notice.lines.join('\n')).not.toMatch(/password|otpauth/i);
    expect((await server.store.listAdminAccounts()).map((account) => account.name)).toEqual(['ops-lead']);
  });
});
