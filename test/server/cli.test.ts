import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiPaths, EnrollResponseSchema, EventsBatchResponseSchema } from '../../shared/api.js';
import { runCli, type CliIo } from '../../server/cli-commands.js';
import { SERVER_CLI, cli as runBuiltCli } from '../helpers/processes.js';
import { DATABASE_FILE } from '../../server/sqlite-store.js';
import { bootServer, enrolDevice, hostFacts, journal, makeTempDir, postJson, type TestServer } from './helpers.js';

/** Runs the built server CLI to completion (the shared process helper: never throws on a non-zero exit). */
const cli = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => runBuiltCli(SERVER_CLI, args);

/** Resolves with the first stdout line matching `pattern`, or rejects if the process exits first. */
function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8');
      const match = pattern.exec(seen);
      if (match) {
        child.stdout?.off('data', onData);
        resolve(match);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before printing ${pattern}; stdout: ${seen}`)));
  });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('sekimori-server as a process', () => {
  let root: string;
  let dataDir: string;
  let server: ChildProcess;
  let url: string;
  let stdout = '';

  beforeAll(async () => {
    root = await makeTempDir();
    dataDir = path.join(root, 'data');
    server = spawn(process.execPath, [SERVER_CLI, 'start', '--data', dataDir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    server.stderr?.resume();
    // Both lines: the URL line (which scripts parse) comes first, the data directory second.
    url = (await waitForLine(server, /^sekimori-server listening on (http:\/\/127\.0\.0\.1:\d+)\ndata directory .*\n/m))[1]!;
  });
  afterAll(async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGKILL');
      await exitOf(server);
    }
    await fs.rm(root, { recursive: true, force: true });
  });

  it('prints where it listens, its data directory and its admin token file', () => {
    expect(stdout).toContain(`data directory ${dataDir} (admin token: ${path.join(dataDir, 'admin-token')})`);
  });

  it('answers health over real HTTP', async () => {
    const response = await fetch(`${url}${ApiPaths.health}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, version: expect.any(String) });
  });

  it('issues enrolment tokens while running that enrol a device, and counts its events', async () => {
    const issued = await cli('enrollment-token', '--data', dataDir);
    expect(issued.code).toBe(0);
    expect(issued.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    const post = (pathname: string, body: unknown, bearer?: string) =>
      fetch(`${url}${pathname}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
        body: JSON.stringify(body),
      });
    const enrolled = EnrollResponseSchema.parse(await (await post(ApiPaths.enroll, { token: issued.stdout.trim(), host: hostFacts() })).json());
    const uploaded = await post(ApiPaths.events, { entries: journal(4) }, enrolled.credential);
    expect(EventsBatchResponseSchema.parse(await uploaded.json()).ackSeq).toBe(4);

    expect(await cli('events', '--data', dataDir, '--device', enrolled.deviceId, '--count')).toEqual({ code: 0, stdout: '4\n', stderr: '' });
    expect((await cli('events', '--data', dataDir, '--device', enrolled.deviceId, '--verify')).stdout).toBe('verified 4\n');
  });

  it('refuses a wrong flag with exit 2 and usage on stderr', async () => {
    const result = await cli('start', '--data', dataDir, '--prot', '80');
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('Usage: sekimori-server start');
  });

  it('prints help with exit 0', async () => {
    const result = await cli('--help');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('enrollment-token');
    expect((await cli('events', '--help')).stdout).toContain('--verify');
  });

  it('stops cleanly with exit 0 on SIGTERM', async () => {
    server.kill('SIGTERM');
    expect(await exitOf(server)).toBe(0);
    await expect(fetch(`${url}${ApiPaths.health}`)).rejects.toThrow();
  });
});

describe('sekimori-server commands', () => {
  let app: TestServer;
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (line) => out.push(line),
    stderr: (line) => err.push(line),
    untilStopSignal: () => Promise.resolve('SIGTERM'),
  };

  beforeEach(async () => {
    app = await bootServer();
    out.length = 0;
    err.length = 0;
  });
  afterEach(async () => {
    await app.cleanup();
  });

  it('lists devices as a table, with control characters from terminals escaped', async () => {
    await enrolDevice(app, { hostname: 'evil\u001b[2Jpc' });
    expect(await runCli(['devices', '--data', app.dataDir], io)).toBe(0);
    expect(out[0]).toMatch(/^DEVICE\tHOSTNAME/);
    expect(out[1]).toContain('evil\\u{1b}[2Jpc');
    expect(out.join('\n')).not.toContain('\u001b');
  });

  it('lists devices as JSON with --json', async () => {
    const { deviceId } = await enrolDevice(app);
    expect(await runCli(['devices', '--data', app.dataDir, '--json'], io)).toBe(0);
    expect(JSON.parse(out.join('\n'))).toMatchObject({ devices: [{ deviceId, hostname: 'soumu-pc-001' }] });
  });

  it('reports where a stored chain breaks with exit 1', async () => {
    const { deviceId, credential } = await enrolDevice(app);
    await postJson(app.app, ApiPaths.events, { entries: journal(5) }, credential);
    const db = new Database(path.join(app.dataDir, DATABASE_FILE));
    try {
      db.prepare("UPDATE events SET type = 'operator.marker' WHERE device_id = ? AND seq = 3").run(deviceId);
    } finally {
      db.close();
    }
    expect(await runCli(['events', '--data', app.dataDir, '--device', deviceId, '--verify'], io)).toBe(1);
    expect(out).toEqual(['broken at seq 3: seq 3 does not match its hash (content changed)']);
  });

  it('issues a token whose lifetime is given in hours', async () => {
    expect(await runCli(['enrollment-token', '--data', app.dataDir, '--ttl-hours', '1.5'], io)).toBe(0);
    expect(out).toHaveLength(1);
  });

  it.each([
    ['no command', []],
    ['an unknown command', ['serve']],
    ['a stray argument', ['devices', 'extra', '--data', '/tmp']],
    ['a flag without its value', ['enrollment-token', '--data']],
    ['a port that is not a number', ['start', '--data', '/tmp/x', '--port', 'http']],
    ['a port out of range', ['start', '--data', '/tmp/x', '--port', '70000']],
    ['a zero token lifetime', ['enrollment-token', '--data', '/tmp/x', '--ttl-hours', '0']],
    ['something that is not a device id', ['events', '--data', '/tmp/x', '--device', 'pc-1', '--count']],
    ['both --count and --verify', ['events', '--data', '/tmp/x', '--device', `dev_${'0'.repeat(32)}`, '--count', '--verify']],
  ])('answers %s with exit 2 and usage on stderr', async (_case, argv) => {
    expect(await runCli(argv, io)).toBe(2);
    expect(out).toEqual([]);
    expect(err.join('\n')).toContain('Usage: sekimori-server');
  });

  const notADatabase = async (): Promise<string[]> => {
    await fs.writeFile(path.join(app.root, DATABASE_FILE), 'x'.repeat(200));
    return ['devices', '--data', app.root];
  };
  it.each([
    ['a missing --data', () => ['enrollment-token']],
    ['a data directory without a database', () => ['enrollment-token', '--data', path.join(app.root, 'typo')]],
    ['a database that is not one', notADatabase],
    ['an unknown device', () => ['events', '--data', app.dataDir, '--device', `dev_${'0'.repeat(32)}`, '--count']],
  ])('answers %s with exit 1 and one line on stderr, no stack trace', async (_case, argv) => {
    expect(await runCli(await argv(), io)).toBe(1);
    expect(out).toEqual([]);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/^sekimori-server: /);
    expect(err[0]).not.toMatch(/\n\s+at /);
  });

  it('does not create a data directory for a mistyped --data', async () => {
    await runCli(['enrollment-token', '--data', path.join(app.root, 'typo')], io);
    await expect(fs.stat(path.join(app.root, 'typo'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses to start on a port already in use with exit 1', async () => {
    await app.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.app.server.address() as { port: number };
    const other = path.join(app.root, 'other');
    expect(await runCli(['start', '--data', other, '--port', String(port)], io)).toBe(1);
    expect(err[0]).toMatch(/^sekimori-server: cannot listen on 127\.0\.0\.1:\d+/);
  });
});
