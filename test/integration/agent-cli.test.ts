import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { callAgent } from '../../agent/ipc/ipc-client.js';
import { AGENT_CLI, cli, killAll, startProcess, writeFastAgentConfig } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
afterEach(killAll);

/** Sends raw bytes to the agent's socket and collects the answer lines until it closes or `lines` arrive. */
function rawExchange(socketPath: string, payload: string | Buffer, lines: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let buffer = '';
    const finish = (): void => {
      socket.destroy();
      resolve(buffer.split('\n').filter(Boolean));
    };
    const timer = setTimeout(finish, 5000);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.split('\n').filter(Boolean).length >= lines) {
        clearTimeout(timer);
        finish();
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      finish();
    });
    socket.on('error', reject);
  });
}

async function runAgent(stateDir: string) {
  await writeFastAgentConfig(stateDir);
  // No server at this address: the agent must run, journal and keep retrying.
  const agent = startProcess(AGENT_CLI, ['run', '--state', stateDir, '--server', 'http://127.0.0.1:9']);
  await agent.waitForOutput(/running; state in/);
  return agent;
}

describe('sekimori-agent command line', { timeout: 120_000 }, () => {
  it('prints usage with --help (exit 0) and refuses a wrong flag or command (exit 2)', async () => {
    const help = await cli(AGENT_CLI, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/verify-journal/);
    for (const command of ['run', 'status', 'enroll', 'verify-journal']) {
      expect((await cli(AGENT_CLI, [command, '--help'])).code).toBe(0);
      const wrong = await cli(AGENT_CLI, [command, '--no-such-flag']);
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toMatch(/Usage: sekimori-agent/);
    }
    expect((await cli(AGENT_CLI, ['journal', 'append', '--help'])).code).toBe(0);
    expect((await cli(AGENT_CLI, ['frobnicate'])).code).toBe(2);
    expect((await cli(AGENT_CLI, ['journal', 'append', '--state', '/nonexistent', '--type', 'not.a.known.type'])).code).toBe(2);
    expect((await cli(AGENT_CLI, ['journal', 'append', '--state', '/nonexistent', '--type', 'operator.marker', '--data', '{oops'])).code).toBe(2);
  });

  it('keeps running, journaling and answering while the server is unreachable, and reports its status', async () => {
    const stateDir = await tempDir();
    const agent = await runAgent(stateDir);
    // At start the agent journals agent.started, the policy in force and the network baseline.
    const base = JSON.parse((await cli(AGENT_CLI, ['status', '--state', stateDir, '--json'])).stdout).journalLength as number;
    expect(base).toBeGreaterThanOrEqual(2);
    const append = await cli(AGENT_CLI, ['journal', 'append', '--state', stateDir, '--type', 'operator.marker', '--data', '{"note":"テスト"}']);
    expect(append.code).toBe(0);
    expect(JSON.parse(append.stdout)).toMatchObject({ seq: base + 1 });
    const status = await cli(AGENT_CLI, ['status', '--state', stateDir, '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      running: true,
      deviceId: null,
      enrolled: false,
      journalLength: base + 1,
      ackSeq: 0,
      status: { enforcement: { state: 'unenforced' } },
    });

    // A second agent on the same state directory must not start: one writer per journal.
    const second = await cli(AGENT_CLI, ['run', '--state', stateDir, '--server', 'http://127.0.0.1:9']);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/holds the state directory lock/);

    await agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    const lines = (await fs.readFile(path.join(stateDir, 'journal.jsonl'), 'utf8')).trim().split('\n');
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ type: 'agent.stopped', data: { reason: 'SIGTERM' } });
    const offline = await cli(AGENT_CLI, ['status', '--state', stateDir, '--json']);
    expect(JSON.parse(offline.stdout)).toMatchObject({ running: false, journalLength: base + 2, enrolled: false });
  });

  it('answers broken IPC messages with an error, closes that connection, journals why (never the content) and never crashes', async () => {
    const stateDir = await tempDir();
    const agent = await runAgent(stateDir);
    const socket = path.join(stateDir, 'agent.sock');
    // Outside the installed service the socket sits in the owner-only state directory.
    expect((await fs.stat(stateDir)).mode & 0o077).toBe(0);
    const before = await callAgent(socket, { id: 0, method: 'status.get' });
    const base = (before as unknown as { result: { journalLength: number } }).result.journalLength;

    // Each broken line on its own connection: the first one closes it, so a second line is never read.
    const cases: [string, string][] = [
      ['this is not json', 'invalid-json'],
      ['{"id":1,"method":"nope"}', 'bad-request'],
      ['{"id":2,"method":"status.get","extra":true}', 'bad-request'],
      ['{"id":3,"method":"journal.append","params":{"type":"Bad Type","data":{}}}', 'bad-request'],
      ['{"id":4,"method":"journal.append","params":{"type":"operator.marker","data":{"__proto__":{"polluted":1}}}}', 'forbidden-key'],
      ['[]', 'bad-request'],
    ];
    for (const [line, code] of cases) {
      const answers = await rawExchange(socket, `${line}\n{"id":99,"method":"status.get"}\n`, 2);
      expect(answers.map((answer) => JSON.parse(answer) as { ok: boolean; error?: { code: string } }), line).toEqual([{ id: expect.toSatisfy((id: unknown) => id === null || typeof id === 'number'), ok: false, error: { code, message: expect.any(String) } }]);
    }
    // A well-formed request the handler refuses keeps the connection.
    const unknown = await rawExchange(socket, '{"id":5,"method":"journal.append","params":{"type":"unknown.thing","data":{}}}\n{"id":6,"method":"status.get"}\n', 2);
    expect(unknown.map((line) => JSON.parse(line) as unknown)).toMatchObject([{ id: 5, ok: false, error: { code: 'unknown-type' } }, { id: 6, ok: true }]);

    // A line far over the limit is refused and the connection closed; the agent lives on.
    const huge = await rawExchange(socket, Buffer.alloc(200 * 1024, 0x61), 1);
    expect(JSON.parse(huge[0]!)).toMatchObject({ ok: false, error: { code: 'too-large' } });
    const after = await callAgent(socket, { id: 9, method: 'status.get' });
    expect(after).toMatchObject({ ok: true });
    expect(agent.alive).toBe(true);
    // The journal holds one ipc.refused per closed connection and nothing those messages carried.
    const journal = await fs.readFile(path.join(stateDir, 'journal.jsonl'), 'utf8');
    const added = journal.trim().split('\n').slice(base).map((line) => JSON.parse(line) as { type: string; data: { reason: string } });
    expect(added.map((entry) => `${entry.type}:${entry.data.reason}`)).toEqual([
      'ipc.refused:malformed',
      'ipc.refused:bad-request',
      'ipc.refused:bad-request',
      'ipc.refused:bad-request',
      'ipc.refused:malformed',
      'ipc.refused:bad-request',
      'ipc.refused:too-large',
    ]);
    expect(journal).not.toContain('polluted');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('verify-journal exits 1 naming the first bad seq, and the restarted agent journals the tampering', async () => {
    const stateDir = await tempDir();
    for (let i = 0; i < 4; i += 1) {
      expect((await cli(AGENT_CLI, ['journal', 'append', '--state', stateDir, '--type', 'operator.marker', '--data', JSON.stringify({ i })])).code).toBe(0);
    }
    const ok = await cli(AGENT_CLI, ['verify-journal', '--state', stateDir]);
    expect(ok).toMatchObject({ code: 0, stdout: 'verified 4 entries\n' });

    const file = path.join(stateDir, 'journal.jsonl');
    await fs.writeFile(file, (await fs.readFile(file, 'utf8')).replace('{"i":2}', '{"i":7}'));
    const broken = await cli(AGENT_CLI, ['verify-journal', '--state', stateDir]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/^broken at seq 3: bad-hash/);

    const agent = await runAgent(stateDir);
    await agent.kill('SIGTERM');
    const entries = (await fs.readFile(file, 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
    expect(entries.find((entry) => entry.type === 'tamper.detected')).toMatchObject({ data: { kind: 'journal-chain', seq: 3, reason: 'bad-hash' } });
  });
});
