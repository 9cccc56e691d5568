import fs from 'node:fs/promises';
import path from 'node:path';
import type { CommandRunner } from '../platform/command-runner.js';
import { parseLpstatDestinations, parseLpstatJobs, parsePageLog, parsePrintServiceEvents, type PrintJob } from './print-jobs.js';

/** Where a source resumes reading after a restart (kept in the state directory). */
export interface PrintCursor {
  /** CUPS page_log: inode and byte offset already read. */
  readonly pageLog?: { readonly ino: number; readonly offset: number };
  /** CUPS without page_log: the highest job id seen. */
  readonly lastJobId?: number;
  /** Windows: the last event record id seen and its time. */
  readonly lastRecordId?: number;
  readonly lastTime?: string;
  /** Destinations (CUPS) or the spooler (Windows) this agent stopped, to undo only its own blocking. */
  readonly blockedByAgent?: readonly string[];
}

export type CompletedJobs = { readonly ok: true; readonly jobs: readonly PrintJob[]; readonly available: boolean } | { readonly ok: false; readonly error: string };

export interface PrintEnforcement {
  readonly ok: boolean;
  readonly actions: readonly string[];
  readonly error: string | null;
  /** Jobs that were waiting and were cancelled. */
  readonly cancelled: readonly PrintJob[];
}

/**
 * A platform's print system. `completed()` returns the jobs finished since the cursor (the first
 * call ever only sets the cursor: history before the agent is not journaled). `enforce(true)`
 * refuses new jobs and cancels waiting ones (idempotent; called every poll in block mode);
 * `enforce(false)` undoes only what this agent did. Neither throws for OS failures.
 */
export interface PrintSource {
  readonly cursor: PrintCursor;
  completed(): Promise<CompletedJobs>;
  enforce(blocked: boolean): Promise<PrintEnforcement>;
}

const NOTHING: PrintEnforcement = { ok: true, actions: [], error: null, cancelled: [] };

function failure(what: string, result: { code: number | null; stderr: string; error?: string }): string {
  return `${what}: ${result.error ?? (result.stderr.trim().slice(0, 200) || `exit ${String(result.code)}`)}`;
}

/**
 * CUPS (Linux): jobs from `var/log/cups/page_log` under `rootDir` (user, printer, document, pages,
 * time), else from `lpstat -W completed -o` (user, printer, size; no document name or pages).
 * Blocking: `cupsreject` on every destination (`lpstat -e`), `cancel` each waiting job.
 */
export class CupsPrintSource implements PrintSource {
  private state: PrintCursor;
  /** When the fallback found no lpstat, it is not looked for again before this time (ms). */
  private lpstatRetryAt = 0;

  constructor(
    private readonly options: { readonly rootDir: string; readonly commands: CommandRunner; readonly cursor: PrintCursor | null; readonly nowMs?: () => number },
  ) {
    this.state = options.cursor ?? {};
  }

  get cursor(): PrintCursor {
    return this.state;
  }

  async completed(): Promise<CompletedJobs> {
    const file = path.join(this.options.rootDir, 'var', 'log', 'cups', 'page_log');
    const stat = await fs.stat(file).catch(() => null);
    if (stat !== null) return this.fromPageLog(file, stat.ino, stat.size);
    return this.fromLpstat();
  }

  private async fromPageLog(file: string, ino: number, size: number): Promise<CompletedJobs> {
    const known = this.state.pageLog;
    // page_log appears with the first job CUPS logs: if lpstat was read before, take that file from
    // its start and skip the jobs lpstat already gave; otherwise (first run) it is the baseline.
    const afterJob = known === undefined ? this.state.lastJobId : undefined;
    if (known === undefined && afterJob === undefined) {
      this.state = { ...this.state, pageLog: { ino, offset: size } };
      return { ok: true, jobs: [], available: true };
    }
    // Rotated (new inode) or truncated: read the new file from its start.
    const start = known !== undefined && known.ino === ino && known.offset <= size ? known.offset : 0;
    if (start === size) return { ok: true, jobs: [], available: true };
    const handle = await fs.open(file, 'r');
    try {
      const length = Math.min(size - start, 4 * 1024 * 1024);
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, start);
      const text = buffer.subarray(0, bytesRead).toString('utf8');
      // Only whole lines: a line being written is read at the next poll.
      const end = text.lastIndexOf('\n');
      if (end < 0) return { ok: true, jobs: [], available: true };
      this.state = { ...this.state, pageLog: { ino, offset: start + Buffer.byteLength(text.slice(0, end + 1)) } };
      const jobs = parsePageLog(text.slice(0, end + 1));
      return { ok: true, jobs: afterJob === undefined ? jobs : jobs.filter((job) => Number(job.jobId) > afterJob), available: true };
    } finally {
      await handle.close();
    }
  }

  private async fromLpstat(): Promise<CompletedJobs> {
    const now = (this.options.nowMs ?? Date.now)();
    if (now < this.lpstatRetryAt) return { ok: true, jobs: [], available: false };
    const result = await this.options.commands.run('lpstat', ['-W', 'completed', '-o'], { timeoutMs: 15_000 });
    if (result.error !== undefined && /ENOENT/.test(result.error)) {
      this.lpstatRetryAt = now + 10 * 60_000;
      return { ok: true, jobs: [], available: false };
    }
    if (result.code !== 0 || result.error !== undefined) return { ok: false, error: failure('lpstat -W completed -o', result) };
    const jobs = parseLpstatJobs(result.stdout);
    const highest = Math.max(0, ...jobs.map((job) => Number(job.jobId)));
    const last = this.state.lastJobId;
    this.state = { ...this.state, lastJobId: Math.max(last ?? 0, highest) };
    if (last === undefined) return { ok: true, jobs: [], available: true };
    return { ok: true, jobs: jobs.filter((job) => Number(job.jobId) > last), available: true };
  }

  async enforce(blocked: boolean): Promise<PrintEnforcement> {
    const { commands } = this.options;
    if (!blocked) {
      const ours = this.state.blockedByAgent ?? [];
      if (ours.length === 0) return NOTHING;
      const actions: string[] = [];
      for (const destination of ours) {
        const result = await commands.run('cupsaccept', [destination], { timeoutMs: 15_000 });
        if (result.code !== 0 || result.error !== undefined) return { ok: false, actions, error: failure(`cupsaccept ${destination}`, result), cancelled: [] };
        actions.push(`cupsaccept ${destination}`);
      }
      this.state = { ...this.state, blockedByAgent: [] };
      return { ok: true, actions, error: null, cancelled: [] };
    }
    const listed = await commands.run('lpstat', ['-e'], { timeoutMs: 15_000 });
    if (listed.code !== 0 || listed.error !== undefined) return { ok: false, actions: [], error: failure('lpstat -e', listed), cancelled: [] };
    const actions: string[] = [];
    const ours = new Set(this.state.blockedByAgent ?? []);
    for (const destination of parseLpstatDestinations(listed.stdout)) {
      if (ours.has(destination)) continue;
      const result = await commands.run('cupsreject', ['-r', 'Sekimori: printing is blocked by the security policy', destination], { timeoutMs: 15_000 });
      if (result.code !== 0 || result.error !== undefined) return { ok: false, actions, error: failure(`cupsreject ${destination}`, result), cancelled: [] };
      actions.push(`cupsreject ${destination}`);
      ours.add(destination);
    }
    this.state = { ...this.state, blockedByAgent: [...ours] };
    const waiting = await commands.run('lpstat', ['-W', 'not-completed', '-o'], { timeoutMs: 15_000 });
    if (waiting.code !== 0 || waiting.error !== undefined) return { ok: false, actions, error: failure('lpstat -W not-completed -o', waiting), cancelled: [] };
    const cancelled: PrintJob[] = [];
    for (const job of parseLpstatJobs(waiting.stdout)) {
      const result = await commands.run('cancel', [job.jobId], { timeoutMs: 15_000 });
      if (result.code !== 0 || result.error !== undefined) return { ok: false, actions, error: failure(`cancel ${job.jobId}`, result), cancelled };
      actions.push(`cancel ${job.jobId}`);
      cancelled.push(job);
    }
    return { ok: true, actions, error: null, cancelled };
  }
}

/** The PowerShell that reads event 307 ("Document printed") after a time, oldest first. */
export function printEventsScript(afterIso: string): string {
  // The time is ours (an ISO string checked here), never text from outside: nothing to inject.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/.test(afterIso)) throw new RangeError(`not an ISO UTC time: ${afterIso}`);
  return (
    `Get-WinEvent -FilterHashtable @{LogName='Microsoft-Windows-PrintService/Operational'; Id=307; StartTime=[datetime]::Parse('${afterIso}').ToLocalTime()} -ErrorAction SilentlyContinue ` +
    "| Sort-Object RecordId | Select-Object RecordId,@{n='Time';e={$_.TimeCreated.ToUniversalTime().ToString('o')}},@{n='Params';e={@($_.Properties | ForEach-Object { [string]$_.Value })}} " +
    '| ConvertTo-Json -Compress -Depth 3'
  );
}

/**
 * Windows: the print spooler's PrintService/Operational log, event 307 (job id, document, user,
 * computer, printer, port, bytes, pages). The log is off by default: `enable()` turns it on
 * (`wevtutil sl … /e:true`). Blocking stops and disables the spooler service (`sc.exe`); undoing
 * it re-enables and starts the spooler only if this agent had stopped it.
 */
export class WindowsPrintSource implements PrintSource {
  private state: PrintCursor;
  private enabled = false;

  constructor(private readonly options: { readonly commands: CommandRunner; readonly cursor: PrintCursor | null; readonly nowMs: () => number }) {
    this.state = options.cursor ?? {};
  }

  get cursor(): PrintCursor {
    return this.state;
  }

  async completed(): Promise<CompletedJobs> {
    if (!this.enabled) {
      const result = await this.options.commands.run('wevtutil.exe', ['sl', 'Microsoft-Windows-PrintService/Operational', '/e:true'], { timeoutMs: 15_000 });
      if (result.code !== 0 || result.error !== undefined) return { ok: false, error: failure('wevtutil sl', result) };
      this.enabled = true;
    }
    if (this.state.lastTime === undefined) {
      this.state = { ...this.state, lastTime: new Date(this.options.nowMs()).toISOString(), lastRecordId: 0 };
      return { ok: true, jobs: [], available: true };
    }
    const result = await this.options.commands.run('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', printEventsScript(this.state.lastTime)], { timeoutMs: 60_000 });
    if (result.code !== 0 || result.error !== undefined) return { ok: false, error: failure('Get-WinEvent', result) };
    let events;
    try {
      events = parsePrintServiceEvents(result.stdout);
    } catch (error) {
      return { ok: false, error: `Get-WinEvent output not recognised: ${error instanceof Error ? error.message : String(error)}` };
    }
    const lastRecordId = this.state.lastRecordId ?? 0;
    const fresh = events.filter((event) => event.recordId > lastRecordId);
    const newest = fresh.at(-1);
    if (newest) this.state = { ...this.state, lastRecordId: newest.recordId, lastTime: newest.job.time ?? this.state.lastTime };
    return { ok: true, jobs: fresh.map((event) => event.job), available: true };
  }

  async enforce(blocked: boolean): Promise<PrintEnforcement> {
    const { commands } = this.options;
    const ours = (this.state.blockedByAgent ?? []).includes('Spooler');
    if (blocked === ours) return NOTHING;
    const steps: string[][] = blocked ? [['config', 'Spooler', 'start=', 'disabled'], ['stop', 'Spooler']] : [['config', 'Spooler', 'start=', 'auto'], ['start', 'Spooler']];
    const actions: string[] = [];
    for (const args of steps) {
      const result = await commands.run('sc.exe', args, { timeoutMs: 30_000 });
      // 1062: the service was not started (stop); 1056: already running (start). Both mean "done".
      if ((result.code !== 0 && result.code !== 1062 && result.code !== 1056) || result.error !== undefined) return { ok: false, actions, error: failure(`sc.exe ${args.join(' ')}`, result), cancelled: [] };
      actions.push(`sc.exe ${args.join(' ')}`);
    }
    this.state = { ...this.state, blockedByAgent: blocked ? ['Spooler'] : [] };
    return { ok: true, actions, error: null, cancelled: [] };
  }
}
