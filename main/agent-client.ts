import net from 'node:net';
import { z } from 'zod';
import {
  EnrolmentOfferSchema,
  LocalRequestViewSchema,
  LocalStatusSchema,
  LockAttemptResultSchema,
  LockViewSchema,
  RequestSubmitAnswerSchema,
  StatusViewSchema,
  type BlockedNotice,
  type EnrolmentOffer,
  type LocalRequestView,
  type LocalStatus,
  type LockAttemptResult,
  type LockView,
  type RequestSubmitAnswer,
  type StatusView,
} from '../shared/ipc.js';
import type { RequestDraft } from '../shared/preload-api.js';
import { IpcConnection, IpcConnectionError, type IpcRequestInput, type IpcResult } from '../shared/ipc-connection.js';
import type { RecoveryAction } from '../shared/lock.js';
import type { AgentConnectionState } from '../shared/preload-api.js';

export type { AgentConnectionState };

/**
 * The Electron main process's connection to the agent (DESIGN.md §2): one long-lived socket to the
 * agent's IPC endpoint, subscribed to lock and status changes, reconnecting with back-off whenever
 * the agent restarts or the connection breaks. It keeps no security state: it reports what the
 * agent says and whether the agent can be reached, and the caller fails closed on anything else.
 */

/** The agent cannot be asked right now (not connected, or the connection broke during the request). */
export class AgentUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentUnavailableError';
  }
}

/** The agent answered, but not with the shape the contract promises for this method. */
export class AgentBadAnswerError extends Error {
  constructor(readonly method: string, message: string) {
    super(message);
    this.name = 'AgentBadAnswerError';
  }
}

/** The agent's endpoint: `SEKIMORI_AGENT_SOCKET` when set, else the platform's default. */
export function defaultAgentEndpoint(platform: NodeJS.Platform, env: Readonly<Record<string, string | undefined>>): string {
  const configured = env.SEKIMORI_AGENT_SOCKET?.trim();
  if (configured) return configured;
  return platform === 'win32' ? '\\\\.\\pipe\\sekimori-agent' : '/run/sekimori/agent.sock';
}

/** A connected duplex stream, as `net.createConnection` returns (injectable for tests). */
export type Connect = (endpoint: string) => net.Socket;

export interface AgentClientOptions {
  readonly endpoint: string;
  /** Per-request timeout, ms (default 10 000). */
  readonly requestTimeoutMs?: number;
  /** Reconnect back-off: first wait and ceiling, ms (defaults 250 and 5 000; doubles per failure). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly connect?: Connect;
  /** Operational messages (no secrets are ever passed here). */
  readonly log?: (message: string) => void;
}

type Listener<T> = (value: T) => void;

/** The reconnect delay after `failures` consecutive failures (1-based): initial × 2^(n−1), capped. */
export function reconnectDelayMs(failures: number, backoff: { initialMs: number; maxMs: number }): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(Math.max(failures - 1, 0), 20));
}

const nothing = z.unknown();

export class AgentClient {
  private socket: net.Socket | null = null;
  private connection: IpcConnection | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private started = false;
  private disposed = false;
  private currentState: AgentConnectionState = 'connecting';
  private view: LockView | null = null;
  private readonly lockListeners = new Set<Listener<LockView>>();
  private readonly statusListeners = new Set<Listener<StatusView>>();
  private readonly blockedListeners = new Set<Listener<BlockedNotice>>();
  private readonly connectionListeners = new Set<Listener<AgentConnectionState>>();
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly connectTo: Connect;
  private readonly log: (message: string) => void;

  constructor(private readonly options: AgentClientOptions) {
    this.backoff = options.backoff ?? { initialMs: 250, maxMs: 5_000 };
    this.connectTo = options.connect ?? ((endpoint) => net.createConnection(endpoint));
    this.log = options.log ?? (() => undefined);
  }

  /** Starts connecting (idempotent). */
  start(): void {
    if (this.started || this.disposed) return;
    this.started = true;
    this.attempt();
  }

  get state(): AgentConnectionState {
    return this.currentState;
  }

  /** The last lock view the agent reported on the current connection; null while not connected. */
  get lockView(): LockView | null {
    return this.currentState === 'connected' ? this.view : null;
  }

  /** Every lock view the agent pushes (and the first one after each connect). */
  onLockChanged(listener: Listener<LockView>): () => void {
    return add(this.lockListeners, listener);
  }

  /** Every status view the agent pushes (only to the console user's connection). */
  onStatusChanged(listener: Listener<StatusView>): () => void {
    return add(this.statusListeners, listener);
  }

  /** A device or medium the agent just blocked (once per plug-in). */
  onBlocked(listener: Listener<BlockedNotice>): () => void {
    return add(this.blockedListeners, listener);
  }

  /** Every change of the connection state. */
  onConnection(listener: Listener<AgentConnectionState>): () => void {
    return add(this.connectionListeners, listener);
  }

  getLock(): Promise<LockView> {
    return this.call({ method: 'lock.get' }, LockViewSchema);
  }

  status(): Promise<LocalStatus> {
    return this.call({ method: 'status.get' }, LocalStatusSchema);
  }

  statusView(): Promise<StatusView> {
    return this.call({ method: 'status.view' }, StatusViewSchema);
  }

  requestList(): Promise<LocalRequestView[]> {
    return this.call({ method: 'request.list' }, z.array(LocalRequestViewSchema));
  }

  requestSubmit(draft: RequestDraft): Promise<RequestSubmitAnswer> {
    return this.call({ method: 'request.submit', params: { deviceKey: draft.deviceKey, purpose: draft.purpose, until: draft.until, access: draft.access } }, RequestSubmitAnswerSchema);
  }

  submit(factor: 'pin' | 'totp', secret: string): Promise<LockAttemptResult> {
    return this.call({ method: 'lock.submit', params: { factor, secret } }, LockAttemptResultSchema);
  }

  lockNow(): Promise<LockView> {
    return this.call({ method: 'lock.now' }, LockViewSchema);
  }

  async activity(): Promise<void> {
    await this.call({ method: 'lock.activity' }, nothing);
  }

  async uiHeartbeat(): Promise<void> {
    await this.call({ method: 'lock.uiHeartbeat' }, nothing);
  }

  async sessionEvent(event: 'os-session-lock' | 'resume' | 'session-start'): Promise<void> {
    await this.call({ method: 'lock.sessionEvent', params: { event } }, nothing);
  }

  enrolBegin(pin: string): Promise<EnrolmentOffer> {
    return this.call({ method: 'lock.enrolBegin', params: { pin } }, EnrolmentOfferSchema);
  }

  enrolConfirm(code: string): Promise<LockAttemptResult> {
    return this.call({ method: 'lock.enrolConfirm', params: { code } }, LockAttemptResultSchema);
  }

  /** Asks for an administrator recovery challenge; the answer's `view.challenge` holds it. */
  recoveryChallenge(action: RecoveryAction): Promise<LockAttemptResult> {
    return this.call({ method: 'lock.recoveryChallenge', params: { action } }, LockAttemptResultSchema);
  }

  recoveryRespond(response: string): Promise<LockAttemptResult> {
    return this.call({ method: 'lock.recoveryRespond', params: { response } }, LockAttemptResultSchema);
  }

  /** Closes the connection and stops reconnecting. Listeners are kept but never called again. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connection?.close('the app is shutting down');
    this.socket?.destroy();
    this.socket = null;
    this.connection = null;
  }

  /**
   * Sends one request on the current connection and validates the answer against `schema`.
   * Rejects with `AgentUnavailableError` when not connected or the connection breaks,
   * `IpcRequestRefused` when the agent says no, `AgentBadAnswerError` for an answer off the contract.
   */
  private call<T>(request: IpcRequestInput, schema: z.ZodType<T>): Promise<T> {
    const connection = this.currentState === 'connected' ? this.connection : null;
    if (!connection) return Promise.reject(new AgentUnavailableError('the protection service is not connected'));
    return this.send(connection, request, schema);
  }

  private async send<T>(connection: IpcConnection, request: IpcRequestInput, schema: z.ZodType<T>): Promise<T> {
    let result: IpcResult;
    try {
      result = await connection.request(request);
    } catch (error) {
      if (error instanceof IpcConnectionError && error.code !== 'bad-request') {
        // No answer in time means the agent is stuck or the socket is dead: reconnect rather than trust it.
        if (error.code === 'timeout' && connection === this.connection) this.drop('the agent did not answer in time');
        throw new AgentUnavailableError(error.message);
      }
      throw error;
    }
    const parsed = schema.safeParse(result);
    if (!parsed.success) throw new AgentBadAnswerError(request.method, `the agent's answer to ${request.method} does not match the contract`);
    return parsed.data;
  }

  private attempt(): void {
    if (this.disposed) return;
    this.retryTimer = null;
    const socket = this.connectTo(this.options.endpoint);
    socket.setEncoding('utf8');
    const connection = new IpcConnection((line) => {
      if (!socket.writable) throw new Error('the socket is not writable');
      socket.write(line);
    }, this.options.requestTimeoutMs === undefined ? {} : { timeoutMs: this.options.requestTimeoutMs });
    this.socket = socket;
    this.connection = connection;

    connection.onNotification((notification) => {
      if (connection !== this.connection) return;
      switch (notification.event) {
        case 'lock.changed':
          this.view = notification.data;
          if (this.currentState === 'connected') emit(this.lockListeners, notification.data);
          break;
        case 'status.changed':
          if (this.currentState === 'connected') emit(this.statusListeners, notification.data);
          break;
        case 'device.blocked':
          if (this.currentState === 'connected') emit(this.blockedListeners, notification.data);
          break;
      }
    });
    connection.onError((error) => this.log(`[agent-client] ${error.message}`));
    connection.onDidClose((reason) => {
      if (connection === this.connection) this.drop(reason);
    });
    socket.on('data', (chunk: string) => connection.receive(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (connection === this.connection) this.drop(error.code ?? error.message);
    });
    socket.on('close', () => {
      if (connection === this.connection) this.drop('the agent closed the connection');
    });
    socket.on('connect', () => {
      void this.handshake(connection);
    });
  }

  /** Subscribes, then reads the lock view; only then is the agent `connected`. */
  private async handshake(connection: IpcConnection): Promise<void> {
    try {
      await this.send(connection, { method: 'events.subscribe' }, nothing);
      const answer = await this.send(connection, { method: 'lock.get' }, LockViewSchema);
      if (connection !== this.connection || this.disposed) return;
      // A change pushed while `lock.get` was answered may be newer than the answer: the agent's
      // clock never runs backwards, so keep whichever view it computed last.
      const pushed = this.view;
      const view = pushed !== null && Date.parse(pushed.now) >= Date.parse(answer.now) ? pushed : answer;
      this.failures = 0;
      this.view = view;
      this.setState('connected');
      emit(this.lockListeners, view);
    } catch (error) {
      if (connection !== this.connection) return;
      this.drop(`the agent refused the subscription: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** The current connection is over: forget it and schedule the next attempt. */
  private drop(reason: string): void {
    const socket = this.socket;
    const connection = this.connection;
    if (!connection) return;
    this.socket = null;
    this.connection = null;
    this.view = null;
    connection.close(reason);
    socket?.destroy();
    if (this.disposed) return;
    this.failures++;
    const delay = reconnectDelayMs(this.failures, this.backoff);
    this.log(`[agent-client] not connected (${reason}); retrying in ${delay} ms`);
    this.setState('unavailable');
    this.retryTimer = setTimeout(() => this.attempt(), delay);
  }

  private setState(state: AgentConnectionState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    emit(this.connectionListeners, state);
  }
}

function add<T>(set: Set<Listener<T>>, listener: Listener<T>): () => void {
  set.add(listener);
  return () => {
    set.delete(listener);
  };
}

function emit<T>(set: Set<Listener<T>>, value: T): void {
  for (const listener of [...set]) listener(value);
}
