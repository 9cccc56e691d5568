import fs from 'node:fs/promises';
import net from 'node:net';
import type { Logger } from 'winston';
import { parseUntrustedJson } from '../../shared/safe-json.js';
import { IpcRequestSchema, MAX_IPC_LINE_BYTES, type IpcRequest, type IpcResponse } from '../../shared/ipc.js';

/** Handles one validated request; throwing `IpcRefusal` answers with that code, anything else with `internal`. */
export type IpcResult = Extract<IpcResponse, { ok: true }>['result'];
export type IpcHandler = (request: IpcRequest) => Promise<IpcResult>;

/** An expected refusal (bad input, not allowed) with a stable code. */
export class IpcRefusal extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/**
 * The agent's local control endpoint. It accepts newline-delimited JSON and answers each line with
 * one line. Everything from a client is untrusted: a line that is too long, not JSON or not a
 * known request gets an error answer and never reaches the handler; the agent never crashes on it.
 */
export class IpcServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly endpoint: string, private readonly handler: IpcHandler, private readonly logger: Logger) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /** Listens on `endpoint` (a stale socket file from a crashed agent is replaced: the caller holds the state lock). */
  static async listen(endpoint: string, handler: IpcHandler, logger: Logger): Promise<IpcServer> {
    const ipc = new IpcServer(endpoint, handler, logger);
    if (!endpoint.startsWith('\\\\.\\pipe\\')) await fs.rm(endpoint, { force: true });
    await new Promise<void>((resolve, reject) => {
      ipc.server.once('error', reject);
      ipc.server.listen(endpoint, () => {
        ipc.server.off('error', reject);
        resolve();
      });
    });
    // Root-only until the app's peer check lands (the process umask already makes it 0600).
    if (!endpoint.startsWith('\\\\.\\pipe\\')) await fs.chmod(endpoint, 0o600);
    return ipc;
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setEncoding('utf8');
    let buffer = '';
    let chain = Promise.resolve();
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (Buffer.byteLength(buffer) > MAX_IPC_LINE_BYTES && !buffer.includes('\n')) {
        this.send(socket, { id: null, ok: false, error: { code: 'too-large', message: `request line over ${MAX_IPC_LINE_BYTES} bytes` } });
        socket.end();
        buffer = '';
        return;
      }
      let newline: number;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        // Answer in order, one request at a time per connection.
        chain = chain.then(() => this.handleLine(socket, line));
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private async handleLine(socket: net.Socket, line: string): Promise<void> {
    if (line.trim() === '') return;
    const json = parseUntrustedJson(line);
    if (!json.ok) {
      this.send(socket, { id: null, ok: false, error: { code: json.error.code, message: `request refused: ${json.error.message}` } });
      return;
    }
    const raw = json.value;
    const parsed = IpcRequestSchema.safeParse(raw);
    if (!parsed.success) {
      const id = typeof raw === 'object' && raw !== null && Number.isSafeInteger((raw as { id?: unknown }).id) ? ((raw as { id: number }).id) : null;
      const issue = parsed.error.issues[0];
      this.send(socket, { id: id !== null && id >= 0 ? id : null, ok: false, error: { code: 'bad-request', message: issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid request' } });
      return;
    }
    try {
      const result = await this.handler(parsed.data);
      this.send(socket, { id: parsed.data.id, ok: true, result });
    } catch (error) {
      if (error instanceof IpcRefusal) {
        this.send(socket, { id: parsed.data.id, ok: false, error: { code: error.code, message: error.message } });
      } else {
        this.logger.error('ipc handler failed', { method: parsed.data.method, error: error instanceof Error ? error.message : String(error) });
        this.send(socket, { id: parsed.data.id, ok: false, error: { code: 'internal', message: 'the agent could not complete the request' } });
      }
    }
  }

  private send(socket: net.Socket, response: IpcResponse): void {
    if (!socket.destroyed) socket.write(JSON.stringify(response) + '\n');
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
