import fs from 'node:fs/promises';
import path from 'node:path';
import { Secret } from 'otpauth';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminPaths, ApiPaths } from '../../shared/api.js';
import { adminTotpCode } from '../../server/admin-accounts.js';
import { createServer } from '../../server/app.js';
import { runCli, type CliIo } from '../../server/cli-commands.js';
import { SERVER_CLI, cli as runBuiltCli } from '../helpers/processes.js';
import { bootServer, databaseBytes, makeTempDir, type TestServer } from './helpers.js';

const builtCli = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => runBuiltCli(SERVER_CLI, args);

function capture(): { io: CliIo; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (line) => out.push(line), stderr: (line) => err.push(line), untilStopSignal: () => Promise.resolve('SIGTERM') }, out, err };
}

/** The values create-admin printed. */
function printed(stdout: string): { password: string; secret: string; uri: string } {
  const value = (label: string): string => {
    const match = new RegExp(`^${label}: (.+)$`, 'm').exec(stdout);
    if (match === null) throw new Error(`no "${label}" in ${stdout}`);
    return match[1]!;
  };
  return { password: value('initial password'), secret: value('TOTP secret \\(base32\\)'), uri: value('otpauth URI') };
}

let server: TestServer | undefined;
afterEach(async () => {
  await server?.cleanup();
  server = undefined;
});

describe('sekimori-server create-admin', () => {
  it('prints the initial password and the TOTP secret once; they log in; the database holds neither in clear', async () => {
    server = await bootServer();
    await server.close();
    const result = await builtCli('create-admin', '--data', server.dataDir, '--user', 'tanaka');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    const { password, secret, uri } = printed(result.stdout);
    expect(result.stdout).toMatch(/^created admin account tanaka$/m);
    expect(password).toMatch(/^[a-z2-9]{5}(-[a-z2-9]{5}){3}$/);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(uri).toMatch(new RegExp(`^otpauth://totp/.+:tanaka\\?.*secret=${secret}.*&algorithm=SHA1&digits=6&period=30$`));

    const bytes = await databaseBytes(server.dataDir);
    expect(bytes.includes(Buffer.from(password))).toBe(false);
    expect(bytes.includes(Buffer.from(secret))).toBe(false);

    const restarted = await createServer({ dataDir: server.dataDir });
    try {
      const login = await restarted.app.inject({
        method: 'POST',
        url: AdminPaths.login,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ user: 'tanaka', password, code: adminTotpCode(Secret.fromBase32(secret).bytes, Date.now()) }),
      });
      expect(login.statusCode, login.body).toBe(200);
      expect(login.json()).toMatchObject({ user: 'tanaka', role: 'admin', mustChangePassword: true });
      const token = (await fs.readFile(path.join(server.dataDir, 'admin-token'), 'utf8')).trim();
      const trail = await restarted.app.inject({ method: 'GET', url: ApiPaths.adminActions, headers: { authorization: `Bearer ${token}` } });
      expect(trail.json<{ actions: { actor: string; action: string }[] }>().actions.map((a) => `${a.actor} ${a.action}`)).toEqual(['tanaka login', 'cli account.created']);
    } finally {
      await restarted.close();
    }
  });

  it('creates a read-only auditor with --role auditor', async () => {
    server = await bootServer();
    const { io, out } = capture();
    expect(await runCli(['create-admin', '--data', server.dataDir, '--user', 'kansa', '--role', 'auditor'], io)).toBe(0);
    expect(out[0]).toBe('created auditor account kansa');
    expect((await server.store.adminAccount('KANSA'))?.role).toBe('auditor');
  });

  it('refuses a name that exists (in any case) with exit 1 and prints no secret', async () => {
    server = await bootServer();
    expect(await runCli(['create-admin', '--data', server.dataDir, '--user', 'tanaka'], capture().io)).toBe(0);
    const { io, out, err } = capture();
    expect(await runCli(['create-admin', '--data', server.dataDir, '--user', 'Tanaka'], io)).toBe(1);
    expect(out).toEqual([]);
    expect(err.join('\n')).toMatch(/^sekimori-server: an account named "Tanaka" exists already$/);
  });

  it('refuses a bad command line with exit 2, and a data directory without a database with exit 1', async () => {
    server = await bootServer();
    for (const argv of [
      ['create-admin', '--data', server.dataDir],
      ['create-admin', '--data', server.dataDir, '--user', 'bad name'],
      ['create-admin', '--data', server.dataDir, '--user', 'x'.repeat(65)],
      ['create-admin', '--data', server.dataDir, '--user', 'tanaka', '--role', 'root'],
      ['create-admin', '--data', server.dataDir, '--user', 'tanaka', '--password', 'x'],
    ]) {
      const { io, out } = capture();
      expect(await runCli(argv, io), argv.join(' ')).toBe(2);
      expect(out).toEqual([]);
    }
    const empty = await makeTempDir();
    const { io, err } = capture();
    expect(await runCli(['create-admin', '--data', empty, '--user', 'tanaka'], io)).toBe(1);
    expect(err.join('\n')).toMatch(/no database/);
  });
});
