import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LockView } from '../../shared/ipc.js';
import { IpcRequestRefused } from '../../shared/ipc-connection.js';
import { AgentBadAnswerError, AgentClient, AgentUnavailableError, defaultAgentEndpoint, reconnectDelayMs, type AgentConnectionState } from '../../main/agent-client.js';
import { useTempDirs } from '../helpers/temp-dir.js';
import { baseView } from '../renderer/scripted-lock-agent.js';

/**
 * main/agent-client.ts against a real `net` server on a temporary Unix socket that plays the agent
 * (newline-delimited JSON, as agent/ipc/ipc-server.ts speaks it). No Electron.
 */

type Request = { id: number; method: string; params?: unknown };
type Handler = (request: Request, socket: net.Socket) => unknown;

/** A stand-in agent endpoint: answers with `handler`'s result (`undefined` = never answer). */
class FakeAgentEndpoint {
  readonly requests: Request[] = [];
  readonly sockets = new Set<net.Socket>();
  private server: net.Server | null = null;

  constructor(readonly socketPath: string, public handler: Handler) {}

  async listen(): Promise<void> {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.setEncoding('utf8');
      let buffer = '';
      socket.on('data', (chunk: string) => {
        buffer += chunk;
        let newline: number;
        while ((newline = buffer.indexOf('\n')) !== -1) {
          const request = JSON.parse(buffer.slice(0, newline)) as Request;
          buffer = buffer.slice(newline + 1);
          this.requests.push(request);
          const answer = this.handler(request, socket);
          if (answer !== undefined) socket.write(JSON.stringify(answer) + '\n');
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.socketPath, resolve));
  }

  push(message: unknown): void {
    for (const socket of this.sockets) socket.write(JSON.stringify(message) + '\n');
  }

  /** Like an agent restart: every connection dropped, the socket gone. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }

  methods(): string[] {
    return this.requests.map((request) => request.method);
  }
}

/** The agent's answers for a locked terminal. */
function lockAgent(view: () => LockView): Handler {
  return (request) => {
    switch (request.method) {
      case 'events.subscribe':
        return { id: request.id, ok: true, result: { subscribed: true } };
      case 'lock.get':
        return { id: request.id, ok: true, result: view() };
      case 'lock.submit':
        return { id: request.id, ok: true, result: { ok: false, error: { code: 'wrong-pin', message: 'wrong PIN' }, view: view() } };
      case 'lock.uiHeartbeat':
        return { id: request.id, ok: true, result: { state: view().state } };
      case 'lock.activity':
        return { id: request.id, ok: true, result: { ok: true } };
      default:
        return { id: request.id, ok: false, error: { code: 'forbidden', message: 'not allowed' } };
    }
  };
}

const tempDir = useTempDirs();
const endpoints: FakeAgentEndpoint[] = [];
const clients: AgentClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.dispose();
  for (const endpoint of endpoints.splice(0)) await endpoint.stop();
});

async function socketPath(): Promise<string> {
  return path.join(await tempDir(), 'agent.sock');
}

async function startEndpoint(at: string, handler: Handler): Promise<FakeAgentEndpoint> {
  const endpoint = new FakeAgentEndpoint(at, handler);
  endpoints.push(endpoint);
  await endpoint.listen();
  return endpoint;
}

function startClient(endpoint: string, options: { requestTimeoutMs?: number } = {}) {
  const client = new AgentClient({ endpoint, backoff: { initialMs: 10, maxMs: 50 }, ...options });
  clients.push(client);
  const states: AgentConnectionState[] = [];
  const views: LockView[] = [];
  client.onConnection((state) => states.push(state));
  client.onLockChanged((view) => views.push(view));
  client.start();
  return { client, states, views };
}

describe('AgentClient', () => {
  it('subscribes, reads the lock view and only then reports connected', async () => {
    const at = await socketPath();
    const view = baseView();
    const endpoint = await startEndpoint(at, lockAgent(() => view));
    const { client, states, views } = startClient(at);
    await vi.waitFor(() => expect(client.state).toBe('connected'));
    expect(endpoint.methods()).toEqual(['events.subscribe', 'lock.get']);
    expect(states).toEqual(['connected']);
    expect(views).toEqual([view]);
    expect(client.lockView).toEqual(view);
  });

  it('delivers every lock view the agent pushes', async () => {
    const at = await socketPath();
    const endpoint = await startEndpoint(at, lockAgent(() => baseView()));
    const { client, views } = startClient(at);
    await vi.waitFor(() => expect(client.state).toBe('connected'));
    const unlocked = baseView({ state: 'unlocked', now: new Date(Date.now() + 1000).toISOString() });
    endpoint.push({ event: 'lock.changed', data: unlocked });
    await vi.waitFor(() => expect(views.at(-1)).toEqual(unlocked));
    expect(client.lockView).toEqual(unlocked);
  });

  it('sends typed requests and validates the answers against the contract', async () => {
    const at = await socketPath();
    const view = baseView();
    const endpoint = await startEndpoint(at, lockAgent(() => view));
    const { client } = startClient(at);
    await vi.waitFor(() => expect(client.state).toBe('connected'));

    await expect(client.submit('pin', '000000')).resolves.toEqual({ ok: false, error: { code: 'wrong-pin', message: 'wrong PIN' }, view });
    expect(endpoint.requests.at(-1)).toMatchObject({ method: 'lock.submit', params: { factor: 'pin', secret: '000000' } });
    await expect(client.uiHeartbeat()).resolves.toBeUndefined();
    await expect(client.activity()).resolves.toBeUndefined();
    await expect(client.lockNow()).rejects.toBeInstanceOf(IpcRequestRefused);

    endpoint.handler = (request) => ({ id: request.id, ok: true, result: { ok: 'maybe' } });
    await expect(client.submit('totp', '123456')).rejects.toBeInstanceOf(AgentBadAnswerError);
    await expect(client.getLock()).rejects.toBeInstanceOf(AgentBadAnswerError);
    // An answer off the contract is refused, but the connection itself is fine.
    expect(client.state).toBe('connected');
  });

  it('is unavailable while nothing listens, keeps retrying, and connects once the agent starts', async () => {
    const at = await socketPath();
    const { client, states } = startClient(at);
    await vi.waitFor(() => expect(client.state).toBe('unavailable'));
    await expect(client.getLock()).rejects.toBeInstanceOf(AgentUnavailableError);
    expect(client.lockView).toBeNull();
    await startEndpoint(at, lockAgent(() => baseView()));
    await vi.waitFor(() => expect(client.state).toBe('connected'));
    expect(states).toEqual(['unavailable', 'connected']);
  });

  it('reconnects and subscribes again when the agent restarts', async () => {
    const at = await socketPath();
    const first = await startEndpoint(at, lockAgent(() => baseView()));
    const { client, states, views } = startClient(at);
    await vi.waitFor(() => expect(client.state).toBe('connected'));
    await first.stop();
    await vi.waitFor(() => expect(client.state).toBe('unavailable'));
    expect(client.lockView).toBeNull();
    const second = await startEndpoint(at, lockAgent(() => baseView({ state: 'second-factor' })));
    await vi.waitFor(() => expect(client.state).toBe('connected'));
    expect(second.methods()).toEqual(['events.subscribe', 'lock.get']);
    expect(states).toEqual(['connected', 'unavailable', 'connected']);
    expect(views.at(-1)?.state).toBe('second-factor');
  });

  it('treats a refused subscription or lock view as unreachable and retries', async () => {
    const at = await socketPath();
    let refuse = true;
    const agent = lockAgent(() => baseView());
    const endpoint = await startEndpoint(at, (request, socket) =>
      refuse && request.method === 'lock.get' ? { id: request.id, ok: false, error: { code: 'internal', message: 'no lock yet' } } : agent(request, socket),
    );
    const { client } = startClient(at);
    await vi.waitFor(() => expect(endpoint.methods().filter((method) => method === 'lock.get').length).toBeGreaterThanOrEqual(2));
    expect(client.state).toBe('unavailable');
    refuse = false;
    await vi.waitFor(() => expect(client.state).toBe('connected'));
  });

  it('drops a connection whose agent stops answering, and reconnects', async () => {
    const at = await socketPath();
    const agent = lockAgent(() => baseView());
    let silent = false;
    const endpoint = await startEndpoint(at, (request, socket) => (silent && request.method === 'lock.submit' ? undefined : agent(request, socket)));
    const { client, states } = startClient(at, { requestTimeoutMs: 200 });
    await vi.waitFor(() => expect(client.state).toBe('connected'));
    silent = true;
    await expect(client.submit('pin', '246810')).rejects.toBeInstanceOf(AgentUnavailableError);
    await vi.waitFor(() => expect(states).toEqual(['connected', 'unavailable', 'connected']));
    expect(endpoint.methods().filter((method) => method === 'events.subscribe')).toHaveLength(2);
  });

  it('reconnects after the agent sends something that breaks the protocol', async () => {
    const at = await socketPath();
    const endpoint = await startEndpoint(at, lockAgent(() => baseView()));
    const { client, states } = startClient(at);
    await vi.waitFor(() => expect(client.state).toBe('connected'));
    for (const socket of endpoint.sockets) socket.write('this is not json\n');
    await vi.waitFor(() => expect(states).toEqual(['connected', 'unavailable', 'connected']));
  });

  it('stops for good when disposed', async () => {
    const at = await socketPath();
    const endpoint = await startEndpoint(at, lockAgent(() => baseView()));
    const { client } = startClient(at);
    await vi.waitFor(() => expect(client.state).toBe('connected'));
    client.dispose();
    await vi.waitFor(() => expect(endpoint.sockets.size).toBe(0));
    const before = endpoint.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(endpoint.requests.length).toBe(before);
    expect(endpoint.sockets.size).toBe(0);
  });
});

describe('agent endpoint and back-off', () => {
  it('uses SEKIMORI_AGENT_SOCKET when set, else the platform default', () => {
    expect(defaultAgentEndpoint('linux', {})).toBe('/run/sekimori/agent.sock');
    expect(defaultAgentEndpoint('win32', {})).toBe('\\\\.\\pipe\\sekimori-agent');
    expect(defaultAgentEndpoint('linux', { SEKIMORI_AGENT_SOCKET: '/tmp/x.sock' })).toBe('/tmp/x.sock');
    expect(defaultAgentEndpoint('linux', { SEKIMORI_AGENT_SOCKET: '  ' })).toBe('/run/sekimori/agent.sock');
  });

  it('doubles the reconnect delay up to its ceiling', () => {
    const backoff = { initialMs: 250, maxMs: 5_000 };
    expect([1, 2, 3, 4, 5, 6, 50, 10_000].map((failures) => reconnectDelayMs(failures, backoff))).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });
});
