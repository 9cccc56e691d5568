import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const ROOT = path.resolve(import.meta.dirname, '../..');
export const AGENT_CLI = path.join(ROOT, 'dist/agent/cli.js');
export const SERVER_CLI = path.join(ROOT, 'dist/server/cli.js');

/** A child process whose output is collected, killed at the end of the test if still alive. */
export class Proc {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits until stdout matches `pattern`; rejects with the output if the process exits first. */
  async waitForOutput(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    return waitFor(() => {
      const match = this.stdout.match(pattern);
      if (match) return match;
      if (!this.alive) throw new Error(`process exited before printing ${pattern}:\n${this.stdout}\n${this.stderr}`);
      return null;
    }, timeoutMs, `output ${pattern}`);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.alive) this.child.kill(signal);
    await this.exited;
  }
}

const live = new Set<Proc>();

export function startProcess(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const proc = new Proc(spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  live.add(proc);
  void proc.exited.then(() => live.delete(proc));
  return proc;
}

/** Kills every process a test started (call from afterEach). */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((proc) => proc.kill('SIGKILL')));
}

export async function cli(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [script, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === 'number' ? failure.code : -1, stdout: failure.stdout ?? '', stderr: failure.stderr ?? '' };
  }
}

/** Polls `probe` until it returns a non-null value. */
export async function waitFor<T>(probe: () => Promise<T | null> | T | null, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await probe();
      if (value !== null && value !== undefined) return value;
    } catch (error) {
      lastError = error;
      if (error instanceof Error && error.message.startsWith('process exited')) throw error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function startServer(dataDir: string, port = 0): Promise<{ proc: Proc; url: string; port: number }> {
  const proc = startProcess(SERVER_CLI, ['start', '--data', dataDir, '--port', String(port)]);
  const match = await proc.waitForOutput(/listening on (http:\/\/[^\s]+)/);
  const url = match[1]!;
  return { proc, url, port: Number(new URL(url).port) };
}

export async function enrollmentToken(dataDir: string): Promise<string> {
  const result = await cli(SERVER_CLI, ['enrollment-token', '--data', dataDir]);
  if (result.code !== 0) throw new Error(`enrollment-token failed: ${result.stderr}`);
  return result.stdout.trim();
}

/** The reporter's intervals in tests: heartbeat every second, back-off from 50 ms. */
export const FAST_REPORTER = { heartbeatSeconds: 1, retryBaseMs: 50, retryMaxMs: 400, uploadDelayMs: 20 } as const;

/** Writes an agent config (`extra` as the installer would write it) with short intervals so tests do not wait minutes for a back-off. */
export async function writeFastAgentConfig(stateDir: string, extra: Record<string, unknown> = {}): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  await fs.writeFile(path.join(stateDir, 'config.json'), JSON.stringify({ reporter: FAST_REPORTER, ...extra }));
}

export async function agentStatus(stateDir: string): Promise<{ deviceId: string | null; enrolled: boolean; journalLength: number; ackSeq: number; running: boolean }> {
  const result = await cli(AGENT_CLI, ['status', '--state', stateDir, '--json']);
  if (result.code !== 0) throw new Error(`status failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

export async function serverEventCount(dataDir: string, deviceId: string): Promise<number> {
  const result = await cli(SERVER_CLI, ['events', '--data', dataDir, '--device', deviceId, '--count']);
  if (result.code !== 0) throw new Error(`events --count failed: ${result.stderr}`);
  return Number(result.stdout.trim());
}

/** Calls the server's admin API with the admin token from `dataDir` (what an automation script does). */
export async function adminApi(dataDir: string, url: string, method: string, route: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const token = (await fs.readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
  const response = await fetch(new URL(route, url), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: ((await response.json().catch(() => null)) ?? {}) as Record<string, unknown> };
}
