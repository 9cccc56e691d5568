import net from 'node:net';

/** One QMP event as QEMU sends it. */
export interface QmpEvent {
  readonly event: string;
  readonly data?: Record<string, unknown>;
  readonly timestamp?: { seconds: number; microseconds: number };
}

/** A QMP command QEMU refused (`{"error": {"class", "desc"}}`). */
export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    desc: string,
  ) {
    super(`QMP ${command}: ${errorClass}: ${desc}`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A small client for QEMU's machine protocol over a unix socket: newline-delimited JSON, one
 * greeting, `qmp_capabilities`, then commands tagged with an `id` and asynchronous events.
 */
export class Qmp {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, { command: string; resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly events: QmpEvent[] = [];
  private readonly eventWaiters: { predicate: (event: QmpEvent) => boolean; resolve: (event: QmpEvent) => void }[] = [];
  private closedError: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('QMP socket closed')));
  }

  /** Connects (retrying while QEMU creates the socket), reads the greeting and enters command mode. */
  static connect(socketPath: string, timeoutMs = 10_000): Promise<Qmp> {
    return connectWithRetry(socketPath, timeoutMs, 'QMP', async (socket) => {
      const qmp = new Qmp(socket);
      await qmp.greeting();
      await qmp.execute('qmp_capabilities');
      return qmp;
    });
  }

  private greetingResolve: (() => void) | null = null;

  private greeting(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.greetingResolve = resolve;
      setTimeout(() => reject(new Error('no QMP greeting')), 5000);
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let newline = this.buffer.indexOf('\n'); newline >= 0; newline = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line === '') continue;
      const message = JSON.parse(line) as Record<string, unknown>;
      if ('QMP' in message) {
        this.greetingResolve?.();
        this.greetingResolve = null;
      } else if ('event' in message) {
        const event = message as unknown as QmpEvent;
        const waiter = this.eventWaiters.findIndex((candidate) => candidate.predicate(event));
        if (waiter >= 0) this.eventWaiters.splice(waiter, 1)[0]!.resolve(event);
        else this.events.push(event);
      } else if (typeof message.id === 'string') {
        const pending = this.pending.get(message.id);
        if (!pending) continue;
        this.pending.delete(message.id);
        const error = message.error as { class?: string; desc?: string } | undefined;
        if (error) pending.reject(new QmpError(pending.command, error.class ?? 'Error', error.desc ?? ''));
        else pending.resolve(message.return);
      }
    }
  }

  private fail(error: Error): void {
    this.closedError ??= error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }

  /** Runs one command; resolves with its `return`, rejects with a QmpError. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = `c${this.nextId++}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { command, resolve, reject });
      this.socket.write(JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id }) + '\n');
    });
  }

  /** Resolves with the first event (already received or future) that matches. */
  waitEvent(name: string, predicate: (data: Record<string, unknown>) => boolean = () => true, timeoutMs = 10_000): Promise<QmpEvent> {
    const matches = (event: QmpEvent): boolean => event.event === name && predicate(event.data ?? {});
    const seen = this.events.findIndex(matches);
    if (seen >= 0) return Promise.resolve(this.events.splice(seen, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter = { predicate: matches, resolve: (event: QmpEvent) => (clearTimeout(timer), resolve(event)) };
      const timer = setTimeout(() => {
        this.eventWaiters.splice(this.eventWaiters.indexOf(waiter), 1);
        reject(new Error(`no QMP event ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.eventWaiters.push(waiter);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * Connects to a Unix socket QEMU is still creating and runs `setup` on it, retrying both every 50 ms
 * until `timeoutMs`; the error names `what` (QMP, the guest channel).
 */
export async function connectWithRetry<T>(socketPath: string, timeoutMs: number, what: string, setup: (socket: net.Socket) => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const socket = await new Promise<net.Socket>((resolve, reject) => {
        const candidate = net.connect(socketPath);
        candidate.once('connect', () => resolve(candidate));
        candidate.once('error', reject);
      });
      return await setup(socket);
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`cannot connect to ${what} at ${socketPath}: ${String(error)}`);
      await sleep(50);
    }
  }
}
