import fs from 'node:fs/promises';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { EVENT_TYPE_PATTERN, chainEntry, formatUtcOffset, type JournalEntry } from '../../shared/journal.js';
import { parseEntryLine } from '../../shared/journal-line.js';
import { sha256Hex } from '../crypto.js';
import { scanJournal, type JournalScan } from './journal-scan.js';

/** What `Journal.open` found and repaired. */
export interface JournalOpenReport {
  readonly scan: JournalScan;
  /** Set when a torn tail was cut off; the cut bytes are kept in `savedTo` for forensics. */
  readonly recovered: { readonly bytes: number; readonly savedTo: string } | null;
}

export interface JournalOptions {
  /** Wall clock for entry times (injectable for tests). */
  readonly now?: () => Date;
}

interface PendingWrite {
  /** The entry's line with its newline. */
  readonly line: string;
  readonly entry: JournalEntry;
  readonly resolve: (entry: JournalEntry) => void;
  readonly reject: (error: Error) => void;
}

/**
 * The append-only, hash-chained audit journal of one agent (DESIGN.md §7): one canonical-JSON entry
 * per line. `append` resolves only after the entry is on disk (fdatasync); appends that arrive while
 * a write is in flight share the next write and sync (group commit), so throughput scales with
 * concurrency instead of being capped at one fsync per event.
 *
 * One process owns a journal at a time (see `StateLock`). After a failed write the journal refuses
 * further appends: the process must restart and recover the tail, rather than carry on with an
 * in-memory chain the file may not match (fail closed).
 */
export class Journal {
  private readonly events = new EventEmitter();
  private readonly pending: PendingWrite[] = [];
  private flushing: Promise<void> | null = null;
  private failure: Error | null = null;
  private closed = false;
  private head: { seq: number; hash: string };
  private durable: { seq: number; hash: string };
  /** Start offset of every entry's line, plus the end of the last queued line. */
  private readonly lineStarts: number[];
  private endOffset: number;
  private readonly now: () => Date;

  private constructor(
    readonly file: string,
    private readonly handle: fs.FileHandle,
    scan: JournalScan,
    options: JournalOptions,
  ) {
    this.head = { ...scan.head };
    this.durable = { ...scan.head };
    this.lineStarts = [...scan.lineStarts];
    this.endOffset = scan.validBytes;
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Opens (creating if needed) the journal at `file`, cutting off a torn tail left by a crash.
   * The caller must hold the state lock. Throws on I/O errors (environment, not input).
   */
  static async open(file: string, options: JournalOptions = {}): Promise<{ journal: Journal; report: JournalOpenReport }> {
    const scan = await scanJournal(file);
    let recovered: JournalOpenReport['recovered'] = null;
    if (scan.tornTail !== null) {
      recovered = await cutTornTail(file, scan);
    }
    const existed = scan.validBytes > 0 || scan.tornTail !== null;
    const handle = await fs.open(file, 'a', 0o600);
    if (!existed) await syncDirectory(path.dirname(file));
    const journal = new Journal(file, handle, scan, options);
    return { journal, report: { scan, recovered } };
  }

  /** Number of entries, including those queued but not yet on disk. */
  get length(): number {
    return this.head.seq;
  }

  /** Last entry that is on disk; only these may be reported to the server. */
  get durableHead(): { readonly seq: number; readonly hash: string } {
    return this.durable;
  }

  /** Fires after entries reach the disk, with the new durable head. */
  onDidPersist(listener: (head: { seq: number; hash: string }) => void): () => void {
    this.events.on('persist', listener);
    return () => this.events.off('persist', listener);
  }

  /**
   * Fires after entries reach the disk, with those entries in order: the agent's own views (the
   * status window) follow the journal instead of keeping a second record of the same facts.
   */
  onDidPersistEntries(listener: (entries: readonly JournalEntry[]) => void): () => void {
    this.events.on('entries', listener);
    return () => this.events.off('entries', listener);
  }

  /**
   * Appends one event and resolves with the entry once it is durable. Rejects with a `TypeError` for
   * an invalid type or data (nothing is written), or with the I/O error if the write fails.
   */
  append(type: string, data: Record<string, unknown>): Promise<JournalEntry> {
    if (this.closed) return Promise.reject(new Error('journal is closed'));
    if (this.failure) return Promise.reject(new Error(`journal unusable after a failed write: ${this.failure.message}`));
    if (type.length > 64 || !EVENT_TYPE_PATTERN.test(type)) return Promise.reject(new TypeError(`bad event type: ${type.slice(0, 80)}`));
    const now = this.now();
    const time = now.toISOString();
    let built: { entry: JournalEntry; line: string };
    try {
      built = chainEntry(this.head, { time, tz: this.utcOffset(now), type, data }, sha256Hex);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new TypeError(String(error)));
    }
    const { entry } = built;
    const line = built.line + '\n';
    const bytes = Buffer.byteLength(line, 'utf8');
    this.head = { seq: entry.seq, hash: entry.hash };
    this.lineStarts.push(this.endOffset);
    this.endOffset += bytes;
    return new Promise<JournalEntry>((resolve, reject) => {
      this.pending.push({ line, entry, resolve, reject });
      this.scheduleFlush();
    });
  }

  private offsetCache = { minute: Number.NaN, text: '' };

  /** The UTC offset the user's clock shows (`+09:00`), looked up once a minute: it is costly and changes at most hourly (DST). */
  private utcOffset(now: Date): string {
    const minute = Math.floor(now.getTime() / 60_000);
    if (minute !== this.offsetCache.minute) this.offsetCache = { minute, text: formatUtcOffset(-now.getTimezoneOffset()) };
    return this.offsetCache.text;
  }

  private scheduleFlush(): void {
    if (this.flushing) return;
    // Start the write on the next turn, not now: appends made by the callers that the last round
    // just released (and by requests that arrived in the same I/O turn) then share this round's
    // fsync instead of the first of them going alone.
    this.flushing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flushLoop()).finally(() => {
      this.flushing = null;
      // An append made while the last round settled found `flushing` still set: pick it up here.
      if (this.pending.length > 0 && this.failure === null) this.scheduleFlush();
    });
  }

  /** Writes everything queued, one write + one fdatasync per round, until the queue is empty. */
  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.pending.length);
      try {
        let text = '';
        for (const item of batch) text += item.line;
        await this.handle.write(text, null, 'utf8');
        await this.handle.datasync();
      } catch (error) {
        this.failure = error instanceof Error ? error : new Error(String(error));
        const rest = this.pending.splice(0, this.pending.length);
        for (const item of [...batch, ...rest]) item.reject(this.failure);
        return;
      }
      const last = batch[batch.length - 1]!.entry;
      this.durable = { seq: last.seq, hash: last.hash };
      for (const item of batch) item.resolve(item.entry);
      this.events.emit('persist', this.durable);
      if (this.events.listenerCount('entries') > 0) this.events.emit('entries', batch.map((item) => item.entry));
    }
  }

  /**
   * Reads up to `max` durable entries starting at `fromSeq` (1-based). Throws when a line in that
   * range no longer parses (damaged in the middle): the caller must see the damage, not a shorter list.
   */
  async read(fromSeq: number, max: number): Promise<JournalEntry[]> {
    const first = Math.max(1, fromSeq);
    const last = Math.min(this.durable.seq, first + max - 1);
    if (last < first) return [];
    const start = this.lineStarts[first - 1]!;
    const end = last < this.lineStarts.length ? this.lineStarts[last]! : this.endOffset;
    const buffer = Buffer.allocUnsafe(end - start);
    const reader = await fs.open(this.file, 'r');
    try {
      await reader.read(buffer, 0, buffer.length, start);
    } finally {
      await reader.close();
    }
    const entries: JournalEntry[] = [];
    for (const line of buffer.toString('utf8').split('\n')) {
      if (line === '') continue;
      const parsed = parseEntryLine(line, sha256Hex);
      if (parsed.kind !== 'entry') throw new Error(`journal entry near seq ${first + entries.length} is unreadable`);
      entries.push(parsed.entry);
    }
    return entries;
  }

  /** Waits for queued writes, then closes the file. Appends after this are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing) await this.flushing;
    await this.handle.close();
    this.events.removeAllListeners();
  }
}

/** Moves a torn tail out of the journal into a side file, then truncates and syncs the journal. */
async function cutTornTail(file: string, scan: JournalScan): Promise<{ bytes: number; savedTo: string }> {
  const torn = scan.tornTail!;
  const handle = await fs.open(file, 'r+');
  try {
    const tail = Buffer.allocUnsafe(torn.bytes);
    await handle.read(tail, 0, torn.bytes, torn.offset);
    const savedTo = `${file}.torn-${Date.now()}`;
    await fs.writeFile(savedTo, tail, { mode: 0o600 });
    await handle.truncate(torn.offset);
    await handle.sync();
    return { bytes: torn.bytes, savedTo };
  } finally {
    await handle.close();
  }
}

/** fsync a directory so a newly created file's name survives a crash (Linux; no-op where unsupported). */
async function syncDirectory(dir: string): Promise<void> {
  let handle: fs.FileHandle | null = null;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // Windows cannot open a directory for sync; NTFS journals the metadata itself.
  } finally {
    await handle?.close();
  }
}
