import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import net from 'node:net';
import { z } from 'zod';
import type { JournalEntry } from '../../shared/journal.js';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import { BoundedQueue } from './bounded-queue.js';
import { eventFields } from './event-fields.js';
import {
  DEFAULT_FACILITY,
  MAX_HOSTNAME,
  Severity,
  formatSyslog,
  isPrintUsAscii,
  octetCountingFrame,
  syslogTimestamp,
  type StructuredDataElement,
} from './syslog.js';

/**
 * Forwarding of stored journal events to a SIEM (DESIGN.md §8): RFC 5424 syslog over UDP
 * (RFC 5426) or TCP (RFC 6587 octet counting), and/or JSON lines appended to a file.
 *
 * `forward(deviceId, entries)` never waits and never throws: it formats each event once per target
 * and puts it in that target's bounded queue (count and bytes); when a queue is full the OLDEST
 * events are dropped and counted (`sekimori_forward_dropped_total`). Each target drains its queue
 * on its own, so a dead TCP collector never slows the file target, and never slows ingest.
 *
 * Delivery is best effort: the journal in SQLite is the record, forwarding is a copy. TCP: an
 * event counts as sent once handed to the kernel; events in flight when a connection drops are
 * lost. UDP: loss is silent by nature. File: an event counts once written and fdatasync'd.
 */

const TARGET_NAME = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lower-case letters, digits, - and _, at most 32');

export const SyslogTargetSchema = z.strictObject({
  type: z.literal('syslog'),
  /** Shown in metrics (`target` label). Default `syslog-udp` / `syslog-tcp`. */
  name: TARGET_NAME.optional(),
  transport: z.enum(['udp', 'tcp']),
  host: z.string().min(1).max(255),
  port: z.int().min(1).max(65535),
  /** RFC 5424 facility, default 13 (log audit). */
  facility: z.int().min(0).max(23).default(DEFAULT_FACILITY),
  appName: z.string().regex(/^[\x21-\x7e]{1,48}$/).default('sekimori'),
  /** SD-ID of the event parameters; `name@PEN` with the operator's IANA private enterprise number. 32473 is the documentation PEN (RFC 5612). */
  sdId: z.string().regex(/^[^\s="\]@]{1,32}@[0-9]+(\.[0-9]+)*$/).max(32).default('sekimori@32473'),
  /** Longest message sent, in bytes; MSG is cut beyond (on a character boundary). UDP default 8192, TCP 65536. */
  maxMessageBytes: z.int().min(480).max(65_000).optional(),
});

export const JsonLinesTargetSchema = z.strictObject({
  type: z.literal('jsonl'),
  name: TARGET_NAME.optional(),
  /** The file events are appended to (created 0600). Rotated to FILE.1 … FILE.N by size. */
  path: z.string().min(1),
  maxFileBytes: z.int().min(4096).default(100 * 1024 * 1024),
  /** Rotated files kept (FILE.1 is the newest). */
  maxFiles: z.int().min(1).max(1000).default(10),
});

export const ForwardTargetSchema = z.discriminatedUnion('type', [SyslogTargetSchema, JsonLinesTargetSchema]);
export type ForwardTarget = z.input<typeof ForwardTargetSchema>;

export const ForwardingConfigSchema = z
  .strictObject({
    /** Events each target may hold while it cannot send; beyond, the oldest are dropped. */
    queueLength: z.int().min(1).max(1_000_000).default(10_000),
    queueBytes: z.int().min(64 * 1024).max(1024 * 1024 * 1024).default(32 * 1024 * 1024),
    targets: z.array(ForwardTargetSchema).max(8),
  })
  .superRefine((config, ctx) => {
    const names = config.targets.map(targetName);
    names.forEach((name, index) => {
      if (names.indexOf(name) !== index) ctx.addIssue({ code: 'custom', path: ['targets', index, 'name'], message: `duplicate target name ${name}` });
    });
  });
export type ForwardingConfig = z.input<typeof ForwardingConfigSchema>;

function targetName(target: z.output<typeof ForwardTargetSchema>): string {
  return target.name ?? (target.type === 'syslog' ? `syslog-${target.transport}` : 'jsonl');
}

/** What a target has done, for metrics. Counters are totals since the forwarder started. */
export interface ForwarderStats {
  readonly name: string;
  readonly queued: number;
  readonly sent: number;
  readonly dropped: number;
  readonly errors: number;
}

export interface EventForwarderOptions {
  /** The terminal's hostname (ops-db.ts `hostnameOf`); cached. Absent: no hostnames. */
  readonly hostnameOf?: (deviceId: string) => string | null;
  readonly clock?: Clock;
  /** Operational log for connection errors (rate-limited by the caller's logger); never gets event content. */
  readonly onError?: (target: string, error: unknown) => void;
  /** First reconnect/retry delay in ms (doubles to 30 s). Tests shorten it. */
  readonly retryMs?: number;
}

/** One event as forwarded: the JSON line, and the MSG of a syslog message. */
export interface ForwardedEventRecord {
  readonly deviceId: string;
  readonly hostname: string | null;
  readonly seq: number;
  readonly time: string;
  readonly tz: string;
  readonly type: string;
  readonly data: JournalEntry['data'];
  readonly prev: string;
  readonly hash: string;
  /** When the server forwarded it (server clock, UTC). */
  readonly forwardedAt: string;
}

/** Syslog severity of an event type: chain/tamper alarms critical, refusals warning, approvals notice. */
export function severityOf(type: string): number {
  if (type.startsWith('tamper.')) return Severity.critical;
  switch (type) {
    case 'auth.failed':
    case 'auth.lockedOut':
    case 'device.blocked':
    case 'export.blocked':
    case 'network.violation':
    case 'policy.rejected':
    case 'ipc.refused':
      return Severity.warning;
    case 'device.allowed':
    case 'device.readonly':
    case 'auth.recovered':
    case 'auth.factorsReset':
    case 'command.executed':
    case 'policy.applied':
    case 'exception.granted':
    case 'exception.used':
    case 'exception.expired':
      return Severity.notice;
    default:
      return Severity.informational;
  }
}

/** The RFC 5424 message of one event (before framing). */
export function syslogMessageFor(
  record: ForwardedEventRecord,
  options: { facility: number; appName: string; sdId: string; maxMessageBytes: number },
): Buffer {
  const fields = eventFields(record.data);
  const params: [string, string][] = [
    ['deviceId', record.deviceId],
    ['seq', String(record.seq)],
    ['type', record.type],
    ['hash', record.hash],
  ];
  if (record.hostname !== null) params.push(['hostname', record.hostname]);
  if (fields.user !== null) params.push(['user', fields.user]);
  if (fields.decision !== null) params.push(['decision', fields.decision]);
  if (fields.usbId !== null) params.push(['usbId', fields.usbId]);
  if (fields.usbName !== null) params.push(['usbName', fields.usbName]);
  if (fields.usbSerial !== null) params.push(['usbSerial', fields.usbSerial]);
  if (fields.exceptionId !== null) params.push(['exceptionId', fields.exceptionId]);
  const structuredData: StructuredDataElement[] = [{ id: options.sdId, params }];
  return formatSyslog(
    {
      facility: options.facility,
      severity: severityOf(record.type),
      timestamp: syslogTimestamp(record.time),
      // HOSTNAME must be PRINTUSASCII: a hostname that is not (Japanese, spaces, control
      // characters) is replaced by the device id; the original stays in SD and MSG.
      hostname: record.hostname !== null && isPrintUsAscii(record.hostname, MAX_HOSTNAME) ? record.hostname : record.deviceId,
      appName: options.appName,
      procId: null,
      msgId: record.type,
      structuredData,
      message: JSON.stringify(record),
    },
    options.maxMessageBytes,
  );
}

/** A JSON line (JSON.stringify escapes control characters and lone surrogates: one line per event, always). */
export function jsonLineFor(record: ForwardedEventRecord): Buffer {
  return Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
}

const MAX_HOSTNAME_CACHE = 10_000;
const MAX_RETRY_MS = 30_000;

/**
 * Fans stored events out to the configured targets. Create with `EventForwarder.create(config)`
 * (validates the config), call `start()` once, `forward()` for every stored batch, `close()` at
 * shutdown (flushes for at most `timeoutMs`).
 */
export class EventForwarder {
  private readonly hostnames = new Map<string, string | null>();
  private readonly clock: Clock;

  private constructor(
    private readonly targets: readonly ForwardTargetRunner[],
    private readonly options: EventForwarderOptions,
  ) {
    this.clock = options.clock ?? systemClock;
  }

  /** Throws a ZodError for an invalid config (the composition root reports it and refuses to start). */
  static create(config: ForwardingConfig, options: EventForwarderOptions = {}): EventForwarder {
    const parsed = ForwardingConfigSchema.parse(config);
    const retryMs = options.retryMs ?? 1000;
    const onError = options.onError ?? (() => {});
    const targets = parsed.targets.map((target): ForwardTargetRunner => {
      const queue = new BoundedQueue(parsed.queueLength, parsed.queueBytes);
      const name = targetName(target);
      switch (target.type) {
        case 'syslog': {
          const format = { facility: target.facility, appName: target.appName, sdId: target.sdId, maxMessageBytes: target.maxMessageBytes ?? (target.transport === 'udp' ? 8192 : 65_536) };
          const toBytes = (record: ForwardedEventRecord) => syslogMessageFor(record, format);
          return target.transport === 'udp'
            ? new UdpTarget(name, queue, toBytes, target.host, target.port, retryMs, onError)
            : new TcpTarget(name, queue, (record) => octetCountingFrame(toBytes(record)), target.host, target.port, retryMs, onError);
        }
        case 'jsonl':
          return new FileTarget(name, queue, jsonLineFor, target.path, target.maxFileBytes, target.maxFiles, retryMs, onError);
        default:
          throw new Error('unknown forwarding target');
      }
    });
    return new EventForwarder(targets, options);
  }

  /** Opens sockets and files. Failures are retried in the background, never thrown. */
  start(): void {
    for (const target of this.targets) target.start();
  }

  /**
   * Queues `entries` (newly stored events of `deviceId`) for every target and returns at once.
   * Never throws: an event that cannot be formatted is counted as an error of the target.
   */
  forward(deviceId: string, entries: readonly JournalEntry[]): void {
    if (this.targets.length === 0 || entries.length === 0) return;
    const hostname = this.hostnameFor(deviceId);
    const forwardedAt = this.clock().toISOString();
    for (const entry of entries) {
      const record: ForwardedEventRecord = {
        deviceId,
        hostname,
        seq: entry.seq,
        time: entry.time,
        tz: entry.tz,
        type: entry.type,
        data: entry.data,
        prev: entry.prev,
        hash: entry.hash,
        forwardedAt,
      };
      for (const target of this.targets) target.enqueue(record);
    }
  }

  stats(): ForwarderStats[] {
    return this.targets.map((target) => target.stats());
  }

  /** Tries to send what is queued for up to `timeoutMs`, then closes every socket and file. Idempotent. */
  async close(timeoutMs = 2000): Promise<void> {
    await Promise.all(this.targets.map((target) => target.close(timeoutMs)));
  }

  private hostnameFor(deviceId: string): string | null {
    if (!this.options.hostnameOf) return null;
    if (this.hostnames.has(deviceId)) return this.hostnames.get(deviceId) ?? null;
    let hostname: string | null = null;
    try {
      hostname = this.options.hostnameOf(deviceId);
    } catch {
      // A busy or closed database costs the hostname, never the forwarding.
      return null;
    }
    if (this.hostnames.size >= MAX_HOSTNAME_CACHE) this.hostnames.clear();
    this.hostnames.set(deviceId, hostname);
    return hostname;
  }
}

/** One target: a queue of formatted messages and the loop that drains it. */
abstract class ForwardTargetRunner {
  protected sent = 0;
  protected errors = 0;
  protected closed = false;
  private pumping = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly name: string,
    protected readonly queue: BoundedQueue,
    private readonly toBytes: (record: ForwardedEventRecord) => Buffer,
    private readonly retryMs: number,
    private readonly onError: (target: string, error: unknown) => void,
  ) {
    this.retryDelay = retryMs;
  }

  abstract start(): void;

  /**
   * Sends one batch and resolves with how many of its messages were delivered (the others were
   * lost and counted as errors by the target); rejects when nothing could be sent, and the batch
   * is put back at the front of the queue.
   */
  protected abstract send(batch: readonly Buffer[]): Promise<number>;
  /** Whether `send` can be tried now (a TCP target waits for its connection). */
  protected abstract ready(): boolean;
  protected abstract closeTransport(): Promise<void>;

  enqueue(record: ForwardedEventRecord): void {
    if (this.closed) return;
    try {
      this.queue.push(this.toBytes(record));
    } catch (error) {
      this.fail(error);
      return;
    }
    this.pump();
  }

  stats(): ForwarderStats {
    return { name: this.name, queued: this.queue.length, sent: this.sent, dropped: this.queue.dropped, errors: this.errors };
  }

  async close(timeoutMs: number): Promise<void> {
    if (!this.closed && (this.pumping || (this.queue.length > 0 && this.ready()))) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
    }
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    await this.closeTransport().catch(() => {});
  }

  /** Resolves when the queue is empty and nothing is being sent. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && !this.pumping) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drains the queue in batches; one loop at a time. */
  protected pump(): void {
    if (this.pumping || this.closed || this.retryTimer !== undefined || !this.ready()) return;
    this.pumping = true;
    void this.drain().finally(() => {
      this.pumping = false;
      if (this.queue.length === 0 || this.closed) for (const resolve of this.idleWaiters.splice(0)) resolve();
    });
  }

  private async drain(): Promise<void> {
    while (!this.closed && this.queue.length > 0 && this.ready()) {
      const batch = this.queue.take(512, 1024 * 1024);
      try {
        this.sent += await this.send(batch);
        this.retryDelay = this.retryMs;
      } catch (error) {
        this.queue.unshiftAll(batch);
        this.fail(error);
        this.retryLater();
        return;
      }
    }
  }

  protected fail(error: unknown): void {
    this.errors += 1;
    try {
      this.onError(this.name, error);
    } catch {
      // The error reporter must not break forwarding.
    }
  }

  /** Pumps again after the current back-off (doubling to 30 s, with jitter). */
  private retryLater(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, backoff(this.retryDelay));
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, MAX_RETRY_MS);
  }
}

/** `delay` ms with full jitter on its upper half (so targets restarted together do not retry in step). */
function backoff(delay: number): number {
  return delay * (0.5 + Math.random() / 2);
}

/** Re-opens a connection after the current back-off (doubling to 30 s); reset by `succeeded`. */
class Reconnector {
  private timer: NodeJS.Timeout | undefined;
  private delay: number;

  constructor(private readonly firstDelay: number) {
    this.delay = firstDelay;
  }

  schedule(connect: () => void): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      connect();
    }, backoff(this.delay));
    this.timer.unref();
    this.delay = Math.min(this.delay * 2, MAX_RETRY_MS);
  }

  succeeded(): void {
    this.delay = this.firstDelay;
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * A collector at host:port over a socket (UDP or TCP): the socket, whether it is connected, and the
 * back-off that reconnects it. Subclasses open the socket and call `connectedNow` once it is.
 */
abstract class SocketTarget<S> extends ForwardTargetRunner {
  protected socket: S | undefined;
  protected connected = false;
  protected readonly reconnector: Reconnector;

  constructor(
    name: string,
    queue: BoundedQueue,
    toBytes: (record: ForwardedEventRecord) => Buffer,
    protected readonly host: string,
    protected readonly port: number,
    retryMs: number,
    onError: (target: string, error: unknown) => void,
  ) {
    super(name, queue, toBytes, retryMs, onError);
    this.reconnector = new Reconnector(retryMs);
  }

  /** The socket is connected: reset the back-off and send what is queued. */
  protected connectedNow(): void {
    this.connected = true;
    this.reconnector.succeeded();
    this.pump();
  }

  /** Stops reconnecting and forgets the socket; returns it for the subclass to close. */
  protected detach(): S | undefined {
    this.reconnector.cancel();
    const socket = this.socket;
    this.socket = undefined;
    this.connected = false;
    return socket;
  }
}

/** RFC 5426: one message per datagram. */
class UdpTarget extends SocketTarget<dgram.Socket> {

  start(): void {
    if (this.closed || this.socket) return;
    const socket = dgram.createSocket(net.isIPv6(this.host) ? 'udp6' : 'udp4');
    this.socket = socket;
    socket.unref();
    socket.on('error', (error) => {
      this.fail(error);
      // Before connect() succeeded (a name that does not resolve): start over later.
      if (!this.connected && this.socket === socket) {
        this.socket = undefined;
        socket.close();
        this.reconnector.schedule(() => this.start());
      }
    });
    // connect() fixes the destination once (one DNS lookup), and ICMP port-unreachable comes back as a send error.
    socket.connect(this.port, this.host, () => this.connectedNow());
  }

  protected ready(): boolean {
    return this.connected && this.socket !== undefined;
  }

  protected async send(batch: readonly Buffer[]): Promise<number> {
    const socket = this.socket;
    if (!socket) throw new Error('udp socket closed');
    let delivered = 0;
    for (const message of batch) {
      // A refused datagram is lost, not retried: UDP syslog is lossy by design (RFC 5426).
      const error = await new Promise<Error | null>((resolve) => socket.send(message, (sendError) => resolve(sendError ?? null)));
      if (error) this.fail(error);
      else delivered += 1;
    }
    return delivered;
  }

  protected closeTransport(): Promise<void> {
    const socket = this.detach();
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }
}

/** RFC 6587 octet counting over TCP, reconnecting with back-off. */
class TcpTarget extends SocketTarget<net.Socket> {

  start(): void {
    if (this.closed || this.socket) return;
    const socket = net.connect({ host: this.host, port: this.port });
    this.socket = socket;
    socket.setKeepAlive(true, 30_000);
    socket.unref();
    socket.on('connect', () => this.connectedNow());
    // A collector has nothing to say; whatever it sends is read and discarded so the socket never stalls.
    socket.on('data', () => {});
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.connected = false;
      this.socket = undefined;
      if (!this.closed) this.reconnector.schedule(() => this.start());
    });
  }

  protected ready(): boolean {
    return this.connected && this.socket !== undefined && !this.socket.destroyed;
  }

  protected send(batch: readonly Buffer[]): Promise<number> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new Error('not connected'));
    // One write per batch; its callback (the data reached the kernel) is the back-pressure.
    return new Promise((resolve, reject) => socket.write(Buffer.concat(batch), (error) => (error ? reject(error) : resolve(batch.length))));
  }

  protected closeTransport(): Promise<void> {
    const socket = this.detach();
    if (!socket || socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
      // A collector that never closes its side is not waited for.
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  }
}

/** JSON lines appended to a file: one write and one fdatasync per batch, rotation by size. */
class FileTarget extends ForwardTargetRunner {
  private handle: fs.FileHandle | undefined;
  private size = 0;
  private opening: Promise<void> | undefined;

  constructor(
    name: string,
    queue: BoundedQueue,
    toBytes: (record: ForwardedEventRecord) => Buffer,
    private readonly file: string,
    private readonly maxFileBytes: number,
    private readonly maxFiles: number,
    retryMs: number,
    onError: (target: string, error: unknown) => void,
  ) {
    super(name, queue, toBytes, retryMs, onError);
  }

  start(): void {
    // Opened lazily by the first batch.
  }

  protected ready(): boolean {
    return true;
  }

  protected async send(batch: readonly Buffer[]): Promise<number> {
    const bytes = Buffer.concat(batch);
    let handle = await this.open();
    if (this.size > 0 && this.size + bytes.length > this.maxFileBytes) {
      await this.rotate();
      handle = await this.open();
    }
    let written = 0;
    while (written < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
      written += bytesWritten;
      this.size += bytesWritten;
    }
    // One fdatasync per batch: under load a batch holds many events, so they share it.
    await handle.datasync();
    return batch.length;
  }

  private async open(): Promise<fs.FileHandle> {
    if (this.handle) return this.handle;
    this.opening ??= (async () => {
      // 0600: events name users and devices. 'a': O_APPEND, never overwriting.
      const handle = await fs.open(this.file, 'a', 0o600);
      this.size = (await handle.stat()).size;
      this.handle = handle;
    })().finally(() => {
      this.opening = undefined;
    });
    await this.opening;
    if (!this.handle) throw new Error('file not open');
    return this.handle;
  }

  /** FILE → FILE.1 → … → FILE.maxFiles (the oldest is overwritten). */
  private async rotate(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
    for (let index = this.maxFiles - 1; index >= 1; index -= 1) {
      await fs.rename(`${this.file}.${index}`, `${this.file}.${index + 1}`).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    }
    await fs.rename(this.file, `${this.file}.1`);
    this.size = 0;
  }

  protected async closeTransport(): Promise<void> {
    await this.opening?.catch(() => {});
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }
}
