import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'winston';
import { parseUntrustedJson } from '../../shared/safe-json.js';
import {
  IPC_METHOD_PRIVILEGE,
  IpcRequestSchema,
  MAX_IPC_LINE_BYTES,
  type IpcNotification,
  type IpcPrivilege,
  type IpcRequest,
  type IpcResponse,
} from '../../shared/ipc.js';
import type { PeerIdentity, PeerLookup } from './peer-credentials.js';

export type IpcResult = Extract<IpcResponse, { ok: true }>['result'];

/** The connection a request arrived on: who is on the other end, and hooks for its lifetime. */
export interface IpcConnectionContext {
  /** Kernel-reported peer; null when it could not be established (then only `any` methods pass). */
  readonly peer: PeerIdentity | null;
  /** Starts pushing notifications to this connection. */
  subscribe(): void;
  /** Called once when the connection closes (the lock screen going away is a lock trigger). */
  onClose(listener: () => void): void;
}

/** Handles one validated, authorised request; throwing `IpcRefusal` answers with that code, anything else with `internal`. */
export type IpcHandler = (request: IpcRequest, context: IpcConnectionContext) => Promise<IpcResult>;

/** An expected refusal (bad input, not allowed) with a stable code. */
export class IpcRefusal extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Why a connection was refused or closed, for the journal (never the request's content). */
export interface IpcRefusedInfo {
  readonly reason: 'too-large' | 'malformed' | 'bad-request' | 'forbidden';
  readonly method: string | null;
  readonly uid: number | null;
  readonly pid: number | null;
  readonly detail: string;
}

export interface IpcServerOptions {
  readonly endpoint: string;
  readonly handler: IpcHandler;
  readonly logger: Logger;
  /** Peer credentials (Linux); without it every peer is unknown and only `any` methods pass. */
  readonly lookupPeer?: PeerLookup;
  /** Whether `peer` holds `privilege` (the agent knows the console user; the server does not). */
  readonly authorize: (privilege: IpcPrivilege, peer: PeerIdentity | null) => Promise<boolean>;
  /** Told about every refused message (the agent journals it, rate-limited). */
  readonly onRefused?: (info: IpcRefusedInfo) => void;
}

const isPipe = (endpoint: string): boolean => endpoint.startsWith('\\\\.\\pipe\\');

/**
 * The agent's local control endpoint: newline-delimited JSON, one answer line per request line,
 * answered in order per connection. Everything from a client is untrusted:
 * - a line over `MAX_IPC_LINE_BYTES`, a line that is not JSON or not a known request is answered
 *   with an error, reported to `onRefused` and the connection is closed; the agent never crashes;
 * - each method needs the privilege `IPC_METHOD_PRIVILEGE` names, judged from the peer's
 *   kernel-reported uid (never from the message); a refusal closes the connection too.
 * With a peer lookup the socket is world-connectable (0666) because the check is per method; without
 * one it stays owner-only (0600).
 */
export class IpcServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Subscribed connections, with their peer and the chain that keeps their notifications in order. */
  private readonly subscribers = new Map<net.Socket, { readonly peer: PeerIdentity | null; chain: Promise<void> }>();

  private constructor(private readonly options: IpcServerOptions) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /** Listens on `endpoint` (a stale socket file from a crashed agent is replaced: the caller holds the state lock). */
  static async listen(options: IpcServerOptions): Promise<IpcServer> {
    const ipc = new IpcServer(options);
    const { endpoint } = options;
    if (!isPipe(endpoint)) {
      // The socket's directory must be traversable by session users when peers are checked.
      const dir = path.dirname(endpoint);
      const created = await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      // The service runs with umask 077; a directory it made for the socket is opened up explicitly.
      // One that existed already (e.g. systemd's RuntimeDirectory) keeps the mode it was given.
      if (created !== undefined && options.lookupPeer) await fs.chmod(dir, 0o755);
      await fs.rm(endpoint, { force: true });
    }
    await new Promise<void>((resolve, reject) => {
      ipc.server.once('error', reject);
      ipc.server.listen(endpoint, () => {
        ipc.server.off('error', reject);
        resolve();
      });
    });
    if (!isPipe(endpoint)) await fs.chmod(endpoint, options.lookupPeer ? 0o666 : 0o600);
    return ipc;
  }

  /**
   * Pushes a notification to every subscribed connection whose peer holds `privilege` (judged as
   * for a request: the status view names devices and the console user, so it goes to the console
   * user and root only). Each connection gets its notifications in the order they were broadcast.
   */
  broadcast(notification: IpcNotification, privilege: IpcPrivilege = 'any'): void {
    const line = JSON.stringify(notification) + '\n';
    for (const [socket, subscriber] of this.subscribers) {
      subscriber.chain = subscriber.chain.then(async () => {
        if (privilege !== 'any' && !(await this.options.authorize(privilege, subscriber.peer).catch(() => false))) return;
        if (!socket.destroyed) socket.write(line);
      });
    }
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setEncoding('utf8');
    const closeListeners: (() => void)[] = [];
    // The peer is looked up once, before the first request is handled.
    const peer: Promise<PeerIdentity | null> = this.options.lookupPeer ? this.options.lookupPeer(socket).catch(() => null) : Promise.resolve(null);
    const context = (resolved: PeerIdentity | null): IpcConnectionContext => ({
      peer: resolved,
      subscribe: () => {
        if (!this.subscribers.has(socket)) this.subscribers.set(socket, { peer: resolved, chain: Promise.resolve() });
      },
      onClose: (listener) => closeListeners.push(listener),
    });
    let buffer = '';
    let chain = Promise.resolve();
    let closing = false;
    const refuseTooLarge = (): void => {
      closing = true;
      buffer = '';
      chain = chain.then(async () => {
        const who = await peer;
        this.refuse(socket, null, { reason: 'too-large', method: null, uid: who?.uid ?? null, pid: who?.pid ?? null, detail: `request line over ${MAX_IPC_LINE_BYTES} bytes` });
      });
    };
    socket.on('data', (chunk: string) => {
      if (closing) return;
      buffer += chunk;
      let newline: number;
      while (!closing && (newline = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (Buffer.byteLength(line) > MAX_IPC_LINE_BYTES) return refuseTooLarge();
        chain = chain.then(async () => {
          if (closing) return;
          if (!(await this.handleLine(socket, line, await peer, context))) closing = true;
        });
      }
      // An unterminated line already over the limit is refused without waiting for its end.
      if (!closing && Buffer.byteLength(buffer) > MAX_IPC_LINE_BYTES) refuseTooLarge();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.subscribers.delete(socket);
      for (const listener of closeListeners.splice(0)) {
        try {
          listener();
        } catch (error) {
          this.options.logger.error('ipc close listener failed', { error: String(error) });
        }
      }
    });
  }

  /** Answers one line; false when the connection must close. */
  private async handleLine(socket: net.Socket, line: string, peer: PeerIdentity | null, context: (peer: PeerIdentity | null) => IpcConnectionContext): Promise<boolean> {
    if (line.trim() === '') return true;
    const who = { uid: peer?.uid ?? null, pid: peer?.pid ?? null };
    const json = parseUntrustedJson(line);
    if (!json.ok) {
      this.refuse(socket, null, { reason: 'malformed', method: null, ...who, detail: json.error.message }, json.error.code);
      return false;
    }
    const raw = json.value;
    const rawId = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
    const id = typeof rawId === 'number' && Number.isSafeInteger(rawId) && rawId >= 0 ? rawId : null;
    const rawMethod = typeof raw === 'object' && raw !== null ? (raw as { method?: unknown }).method : undefined;
    const method = typeof rawMethod === 'string' ? rawMethod.slice(0, 64) : null;
    const parsed = IpcRequestSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      // Zod messages name paths and expectations, never the offending value (a mistyped PIN stays out of the journal).
      const detail = issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid request';
      this.refuse(socket, id, { reason: 'bad-request', method, ...who, detail });
      return false;
    }
    const request = parsed.data;
    const privilege = IPC_METHOD_PRIVILEGE[request.method];
    if (!(await this.options.authorize(privilege, peer).catch(() => false))) {
      this.refuse(socket, request.id, { reason: 'forbidden', method: request.method, ...who, detail: `${request.method} needs ${privilege} privilege` });
      return false;
    }
    try {
      const result = await this.options.handler(request, context(peer));
      this.send(socket, { id: request.id, ok: true, result });
    } catch (error) {
      if (error instanceof IpcRefusal) {
        this.send(socket, { id: request.id, ok: false, error: { code: error.code, message: error.message } });
      } else {
        this.options.logger.error('ipc handler failed', { method: request.method, error: error instanceof Error ? error.message : String(error) });
        this.send(socket, { id: request.id, ok: false, error: { code: 'internal', message: 'the agent could not complete the request' } });
      }
    }
    return true;
  }

  private refuse(socket: net.Socket, id: number | null, info: IpcRefusedInfo, code: string = info.reason): void {
    this.send(socket, { id, ok: false, error: { code, message: `request refused: ${info.detail}` } });
    socket.end();
    try {
      this.options.onRefused?.(info);
    } catch (error) {
      this.options.logger.error('ipc refusal listener failed', { error: String(error) });
    }
  }

  private send(socket: net.Socket, response: IpcResponse): void {
    if (!socket.destroyed && socket.writable) socket.write(JSON.stringify(response) + '\n');
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
