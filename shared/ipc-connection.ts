import { IpcNotificationSchema, IpcRequestSchema, IpcResponseSchema, MAX_IPC_LINE_BYTES, type IpcNotification, type IpcRequest, type IpcResponse } from './ipc.js';
import { parseUntrustedJson } from './safe-json.js';

/**
 * The client side of the agent's local IPC (newline-delimited JSON, `shared/ipc.ts`), independent of
 * the transport: the owner feeds what arrives with `receive` and passes a `write` that sends one line.
 * No `node:*`: the Electron main process wraps a socket around it, tests wrap anything.
 *
 * Everything from the agent is validated (`IpcResponseSchema`, `IpcNotificationSchema`). A line
 * that breaks the framing or the protocol (over `MAX_IPC_LINE_BYTES`, not JSON, not a response or
 * notification, an error without an id) closes the connection: every pending request is rejected
 * with an `IpcConnectionError` and `onDidClose` reports why. `receive` never throws.
 */

/** A request as the caller writes it: the connection adds the `id`. */
export type IpcRequestInput = WithoutId<IpcRequest>;
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
/** The `result` of a successful answer (plain JSON; the caller validates its shape). */
export type IpcResult = Extract<IpcResponse, { ok: true }>['result'];

export type IpcConnectionErrorCode =
  /** No answer within the request's timeout (the connection stays open). */
  | 'timeout'
  /** The connection was closed (by the owner, or after a protocol error) before the answer came. */
  | 'closed'
  /** The agent sent something that breaks the protocol. */
  | 'protocol'
  /** A line longer than `MAX_IPC_LINE_BYTES`, either way. */
  | 'too-large'
  /** The request itself is not a valid `IpcRequest` (never sent). */
  | 'bad-request';

/** The transport or protocol failed; the request may or may not have reached the agent. */
export class IpcConnectionError extends Error {
  constructor(readonly code: IpcConnectionErrorCode, message: string) {
    super(message);
    this.name = 'IpcConnectionError';
  }
}

/** The agent answered the request with `ok: false` (`code` is the agent's, e.g. `forbidden`, `bad-request`). */
export class IpcRequestRefused extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'IpcRequestRefused';
  }
}

/** Timers, injectable for tests (defaults to the global ones, present in Node and browsers). */
export interface IpcTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface IpcConnectionOptions {
  /** Default per-request timeout, ms (10 000). */
  readonly timeoutMs?: number;
  readonly timers?: IpcTimers;
}

interface Pending {
  readonly resolve: (result: IpcResult) => void;
  readonly reject: (error: Error) => void;
  readonly timer: unknown;
}

type Listener<T> = (value: T) => void;

const globalTimers: IpcTimers = {
  setTimeout: (callback, ms) => (globalThis as unknown as { setTimeout: (cb: () => void, ms: number) => unknown }).setTimeout(callback, ms),
  clearTimeout: (handle) => (globalThis as unknown as { clearTimeout: (handle: unknown) => void }).clearTimeout(handle),
};

/** UTF-8 length of `text` in bytes, without TextEncoder (not in `shared/`'s libs). Lone surrogates count as 3 (U+FFFD). */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

export class IpcConnection {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly notificationListeners = new Set<Listener<IpcNotification>>();
  private readonly errorListeners = new Set<Listener<IpcConnectionError>>();
  private readonly closeListeners = new Set<Listener<string>>();
  private closedReason: string | null = null;
  private readonly timeoutMs: number;
  private readonly timers: IpcTimers;

  /** `write` sends one line (the trailing newline included); it may throw, which rejects that request. */
  constructor(private readonly write: (line: string) => void, options: IpcConnectionOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.timers = options.timers ?? globalTimers;
  }

  /** Whether `close` ran (by the owner or after a protocol error). */
  get closed(): boolean {
    return this.closedReason !== null;
  }

  /** Requests waiting for their answer. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Sends `request` and resolves with the agent's `result`. Rejects with `IpcRequestRefused` when
   * the agent answers `ok: false`, and with `IpcConnectionError` on timeout, close or a bad request.
   */
  request(request: IpcRequestInput, options: { timeoutMs?: number } = {}): Promise<IpcResult> {
    if (this.closedReason !== null) return Promise.reject(new IpcConnectionError('closed', `the connection is closed: ${this.closedReason}`));
    const id = this.nextId++;
    const parsed = IpcRequestSchema.safeParse({ ...request, id });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return Promise.reject(new IpcConnectionError('bad-request', issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid request'));
    }
    const line = JSON.stringify(parsed.data);
    if (utf8ByteLength(line) + 1 > MAX_IPC_LINE_BYTES) {
      return Promise.reject(new IpcConnectionError('too-large', `request line over ${MAX_IPC_LINE_BYTES} bytes`));
    }
    return new Promise<IpcResult>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        if (this.pending.delete(id)) reject(new IpcConnectionError('timeout', `no answer to ${request.method} in time`));
      }, options.timeoutMs ?? this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.write(line + '\n');
      } catch (error) {
        this.settle(id)?.reject(new IpcConnectionError('closed', `could not send ${request.method}: ${error instanceof Error ? error.message : String(error)}`));
      }
    });
  }

  /** Feeds data from the transport (any split of the stream). Never throws. */
  receive(chunk: string): void {
    if (this.closedReason !== null) return;
    this.buffer += chunk;
    let newline: number;
    while (this.closedReason === null && (newline = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      if (utf8ByteLength(line) + 1 > MAX_IPC_LINE_BYTES) {
        this.fail('too-large', `the agent sent a line over ${MAX_IPC_LINE_BYTES} bytes`);
        return;
      }
      this.handleLine(line);
    }
    // A partial line that can no longer fit: the framing is lost, stop before buffering more.
    if (this.closedReason === null && utf8ByteLength(this.buffer) + 1 > MAX_IPC_LINE_BYTES) {
      this.fail('too-large', `the agent sent a line over ${MAX_IPC_LINE_BYTES} bytes`);
    }
  }

  /** Called with every valid notification, in order. Returns a function that removes the listener. */
  onNotification(listener: Listener<IpcNotification>): () => void {
    return this.add(this.notificationListeners, listener);
  }

  /** Called with every protocol problem (before the close it causes, or alone for a dropped notification). */
  onError(listener: Listener<IpcConnectionError>): () => void {
    return this.add(this.errorListeners, listener);
  }

  /** Called once, with the reason, when the connection closes. */
  onDidClose(listener: Listener<string>): () => void {
    return this.add(this.closeListeners, listener);
  }

  /** Rejects every pending request with `closed` and ignores anything received from now on. Idempotent. */
  close(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    this.buffer = '';
    for (const id of [...this.pending.keys()]) {
      this.settle(id)?.reject(new IpcConnectionError('closed', `the connection closed: ${reason}`));
    }
    for (const listener of [...this.closeListeners]) this.call(listener, reason);
  }

  private handleLine(line: string): void {
    if (line.trim() === '') return;
    const json = parseUntrustedJson(line);
    if (!json.ok) {
      this.fail('protocol', `the agent sent a line that is not JSON (${json.error.code})`);
      return;
    }
    const raw = json.value;
    if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && !('id' in raw) && 'event' in raw) {
      const notification = IpcNotificationSchema.safeParse(raw);
      if (notification.success) {
        for (const listener of [...this.notificationListeners]) this.call(listener, notification.data);
      } else {
        // A notification this client does not understand (a newer agent): drop it, keep the connection.
        this.report(new IpcConnectionError('protocol', 'the agent sent a notification that does not match the contract; dropped'));
      }
      return;
    }
    const response = IpcResponseSchema.safeParse(raw);
    if (!response.success) {
      this.fail('protocol', 'the agent sent a message that is neither a response nor a notification');
      return;
    }
    const answer = response.data;
    if (answer.id === null) {
      // The agent could not tell which request it answers: nothing can be trusted to correlate any more.
      if (!answer.ok) this.fail('protocol', `the agent refused a line: ${answer.error.code}: ${answer.error.message}`);
      return;
    }
    // An unknown id is a late answer to a request that already timed out: nothing waits for it.
    const pending = this.settle(answer.id);
    if (!pending) return;
    if (answer.ok) pending.resolve(answer.result);
    else pending.reject(new IpcRequestRefused(answer.error.code, answer.error.message));
  }

  private settle(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) return undefined;
    this.pending.delete(id);
    this.timers.clearTimeout(pending.timer);
    return pending;
  }

  private fail(code: IpcConnectionErrorCode, message: string): void {
    this.report(new IpcConnectionError(code, message));
    this.close(message);
  }

  private report(error: IpcConnectionError): void {
    for (const listener of [...this.errorListeners]) this.call(listener, error);
  }

  private add<T>(set: Set<Listener<T>>, listener: Listener<T>): () => void {
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** A listener's exception is a bug in the listener; it must not break the stream for the others. */
  private call<T>(listener: Listener<T>, value: T): void {
    try {
      listener(value);
    } catch (error) {
      (globalThis as unknown as { queueMicrotask: (cb: () => void) => void }).queueMicrotask(() => {
        throw error;
      });
    }
  }
}
