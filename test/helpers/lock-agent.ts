import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Secret } from 'otpauth';
import { expect } from 'vitest';
import { EnrolmentOfferSchema, LockAttemptResultSchema, LockViewSchema, type IpcRequest, type LockAttemptResult, type LockView } from '../../shared/ipc.js';
import { callAgent } from '../../agent/ipc/ipc-client.js';
import { totpCode } from '../../agent/lock/factors.js';
import { AGENT_CLI, startProcess, waitFor, type Proc } from './processes.js';

/** A request without its id (distributes over the union, so each method keeps its params). */
type Call = IpcRequest extends infer R ? (R extends IpcRequest ? Omit<R, 'id'> : never) : never;

/** A real agent process whose lock covers `consoleUser`, with its socket where session users can reach it. */
export interface LockAgent {
  readonly stateDir: string;
  readonly socketPath: string;
  readonly proc: Proc;
  call(request: Call): Promise<unknown>;
  view(): Promise<LockView>;
  attempt(request: Call): Promise<LockAttemptResult>;
}

let nextId = 1;

export async function startLockAgent(base: string, options: { consoleUser: string; serverUrl?: string; enrollToken?: string; extraConfig?: Record<string, unknown>; name?: string }): Promise<LockAgent> {
  const name = options.name ?? 'agent';
  const stateDir = path.join(base, `${name}-state`);
  const runDir = path.join(base, `${name}-run`);
  await fs.chmod(base, 0o755);
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const socketPath = path.join(runDir, 'agent.sock');
  await fs.writeFile(
    path.join(stateDir, 'config.json'),
    JSON.stringify({
      reporter: { heartbeatSeconds: 1, retryBaseMs: 50, retryMaxMs: 400, uploadDelayMs: 20 },
      lock: { consoleUser: options.consoleUser },
      ipc: { socketPath },
      ...options.extraConfig,
    }),
  );
  const args = ['run', '--state', stateDir];
  if (options.serverUrl) args.push('--server', options.serverUrl);
  if (options.enrollToken) args.push('--enroll-token', options.enrollToken);
  const proc = startProcess(AGENT_CLI, args);
  await proc.waitForOutput(/running; state in/);
  const call = async (request: Call): Promise<unknown> => {
    const answer = await callAgent(socketPath, { id: nextId++, ...request });
    if (!answer.ok) throw new Error(`${request.method} refused: ${answer.error.code} ${answer.error.message}\n${proc.stderr.slice(-2000)}`);
    return answer.result;
  };
  await waitFor(() => call({ method: 'lock.get' }).then(() => true), 10_000, 'agent socket');
  return {
    stateDir,
    socketPath,
    proc,
    call,
    view: async () => LockViewSchema.parse(await call({ method: 'lock.get' })),
    attempt: async (request) => LockAttemptResultSchema.parse(await call(request)),
  };
}

/** Enrols the console user (PIN + one proven code) as the lock screen would; returns the phone's TOTP secret. */
export async function enrolConsoleUser(agent: LockAgent, pin: string): Promise<Uint8Array> {
  const offer = EnrolmentOfferSchema.parse(await agent.call({ method: 'lock.enrolBegin', params: { pin } }));
  expect(offer.ok, JSON.stringify(offer.error)).toBe(true);
  const secret = Secret.fromBase32(offer.offer!.secret).bytes;
  const confirmed = await agent.attempt({ method: 'lock.enrolConfirm', params: { code: totpCode(secret, Date.now()) } });
  expect(confirmed.ok, JSON.stringify(confirmed.error)).toBe(true);
  return secret;
}

/**
 * Sends `lines` to the agent's socket from a separate process running as `uid` (the kernel, not the
 * message, tells the agent who this is) and returns the answer lines read until the socket closed.
 */
export function ipcClientAs(uid: number, socketPath: string, lines: string[], holdMs = 500): Promise<string[]> {
  const script = `
    const socket = require('node:net').createConnection(${JSON.stringify(socketPath)});
    let data = '';
    socket.setEncoding('utf8');
    socket.on('connect', async () => {
      for (const line of ${JSON.stringify(lines)}) { socket.write(line + '\\n'); await new Promise((r) => setTimeout(r, 30)); }
      setTimeout(() => socket.end(), ${holdMs});
    });
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('close', () => { process.stdout.write(data); });
    socket.on('error', (e) => { process.stderr.write(String(e)); process.exit(3); });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { uid, gid: uid, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out.trim().split('\n').filter(Boolean)) : reject(new Error(`client exited ${code}: ${err}`))));
  });
}
