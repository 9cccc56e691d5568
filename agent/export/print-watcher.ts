import type { Logger } from 'winston';
import { z } from 'zod';
import type { Journal } from '../journal/journal.js';
import { readJsonFile, writeJsonFileAtomic } from '../state.js';
import type { PrintJob } from './print-jobs.js';
import type { PrintCursor, PrintSource } from './print-sources.js';

export type PrintMode = 'log' | 'block';

export interface PrintWatcherOptions {
  readonly source: PrintSource;
  readonly journal: Pick<Journal, 'append'>;
  readonly logger: Logger;
  /** The policy's printing mode now (`log` when the policy has no `printing` section); audit mode never blocks. */
  readonly mode: () => { readonly mode: PrintMode; readonly audit: boolean };
  /** Where the source's cursor is kept (`print-log.json` in the state directory). */
  readonly stateFile: string;
  /** Poll period (default 15 s). */
  readonly intervalMs?: number;
}

export const PrintCursorSchema = z.strictObject({
  pageLog: z.strictObject({ ino: z.number().nonnegative(), offset: z.number().int().nonnegative() }).optional(),
  lastJobId: z.number().int().nonnegative().optional(),
  lastRecordId: z.number().int().nonnegative().optional(),
  lastTime: z.string().max(40).optional(),
  blockedByAgent: z.array(z.string().max(127)).max(1000).optional(),
});

/** Loads the cursor a previous run kept; null on the first run (or an unreadable file). */
export async function loadPrintCursor(file: string): Promise<PrintCursor | null> {
  return readJsonFile(file, PrintCursorSchema).catch(() => null);
}

function describeJob(job: PrintJob): Record<string, unknown> {
  return { jobId: job.jobId, printer: job.printer, user: job.user, document: job.document, pages: job.pages, time: job.time, sizeBytes: job.sizeBytes, host: job.host, source: job.source };
}

/**
 * Printing as an export channel (持ち出し): every finished job is journaled on every tier
 * (`export.printed`: user, time, printer, document, pages where the platform tells); in `block`
 * mode the print system refuses new jobs and waiting jobs are cancelled, each journaled
 * `export.blocked` (channel `print`). Switching back to `log` undoes only this agent's blocking.
 * Polls; never throws into the caller.
 */
export class PrintWatcher {
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | null = null;
  private queue: Promise<void> = Promise.resolve();
  private disposed = false;
  private lastMode: PrintMode | null = null;
  private savedCursor = '';

  constructor(private readonly options: PrintWatcherOptions) {
    this.intervalMs = options.intervalMs ?? 15_000;
  }

  async start(): Promise<void> {
    await this.poll();
    this.schedule();
  }

  /** One poll now (serialised with the timer's). */
  poll(): Promise<void> {
    const next = this.queue.then(() => this.pass()).catch((error: unknown) => {
      this.options.logger.error('print watch failed', { error: error instanceof Error ? error.message : String(error) });
    });
    this.queue = next;
    return next;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.queue;
  }

  private schedule(): void {
    if (this.disposed) return;
    this.timer = setTimeout(() => {
      void this.poll().finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  private async pass(): Promise<void> {
    const { mode, audit } = this.options.mode();
    const { journal, source } = this.options;
    const blocked = mode === 'block' && !audit;
    // Enforce first: a job sent between two polls is cancelled before it is read as finished.
    if (blocked || this.lastMode !== mode) {
      const outcome = await source.enforce(blocked);
      if (outcome.actions.length > 0 || !outcome.ok || (mode === 'block' && this.lastMode !== mode)) {
        await journal.append(blocked ? 'export.blocked' : 'export.allowed', {
          channel: 'print',
          decision: mode === 'block' ? 'block' : 'allow',
          audit,
          enforced: { ok: outcome.ok, actions: [...outcome.actions].slice(0, 50), error: outcome.error },
          cancelledJobs: outcome.cancelled.length,
        });
      }
      for (const job of outcome.cancelled) {
        await journal.append('export.blocked', { channel: 'print', decision: 'block', audit, job: describeJob(job), enforced: { ok: true, actions: [`cancel ${job.jobId}`], error: null } });
      }
    }
    this.lastMode = mode;
    const finished = await source.completed();
    if (!finished.ok) {
      this.options.logger.warn('print jobs unreadable', { error: finished.error });
    } else {
      for (const job of finished.jobs) await journal.append('export.printed', { channel: 'print', mode, audit, ...describeJob(job) });
    }
    await this.saveCursor();
  }

  private async saveCursor(): Promise<void> {
    const text = JSON.stringify(this.options.source.cursor);
    if (text === this.savedCursor) return;
    await writeJsonFileAtomic(this.options.stateFile, this.options.source.cursor);
    this.savedCursor = text;
  }
}
