import type { Logger } from 'winston';
import { z } from 'zod';
import type { PolicyOrigin } from '../policy-source.js';
import type { Journal } from '../journal/journal.js';
import { readJsonFile, writeJsonFileAtomic } from '../state.js';
import type { Tier } from '../../shared/policy.js';
import {
  SELFCHECK_DEFINITIONS,
  SELFCHECK_IDS,
  SelfcheckRunSchema,
  boundEvidence,
  summarize,
  type SelfcheckCheck,
  type SelfcheckRun,
  type SelfcheckTrigger,
} from '../../shared/selfcheck.js';
import { DAY_MS, errorText, type CheckOutcome, type SelfCheck } from './check.js';

/** What a run records about the terminal besides the checks. */
export interface InspectionContext {
  readonly tier: Tier;
  readonly policyVersion: number;
  readonly policyOrigin: PolicyOrigin;
  readonly agentVersion: string;
  readonly platform: string;
}

export interface SelfInspectionOptions {
  readonly checks: readonly SelfCheck[];
  readonly journal: Pick<Journal, 'append'>;
  readonly logger: Logger;
  /** Trusted time, epoch ms (server time + monotonic): a user cannot postpone or backdate a run. */
  readonly nowMs: () => number;
  readonly context: () => InspectionContext;
  /** Where the last run's time is kept across restarts (`selfcheck.json` in the state directory). */
  readonly stateFile: string;
  /** Time between scheduled runs (default one day). */
  readonly intervalMs?: number;
  /** How often the schedule is looked at (default 10 min; only arithmetic, no I/O). */
  readonly pollMs?: number;
  /** A check still running after this long is recorded as unknown (default 60 s). */
  readonly checkTimeoutMs?: number;
}

const StateSchema = z.strictObject({ lastRunAtMs: z.number().int().nonnegative() });

/**
 * Self-inspection (自己点検): runs every check at start, then once a day by the trusted clock, and
 * whenever asked (the server's `selfcheck` command). Runs are serialised; each check runs with a
 * timeout and a check that throws or times out is `unknown` with the error as evidence, never a
 * pass. Every run is one `selfcheck.result` journal entry (all checks + a summary), which reaches
 * the server with the rest of the journal.
 */
export class SelfInspection {
  private readonly intervalMs: number;
  private readonly pollMs: number;
  private readonly checkTimeoutMs: number;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private disposed = false;
  private lastRunAtMs: number | null = null;
  private counter = 0;
  private latest: SelfcheckRun | null = null;

  constructor(private readonly options: SelfInspectionOptions) {
    this.intervalMs = options.intervalMs ?? DAY_MS;
    this.pollMs = options.pollMs ?? 10 * 60_000;
    this.checkTimeoutMs = options.checkTimeoutMs ?? 60_000;
    const ids = options.checks.map((check) => check.id);
    if (new Set(ids).size !== ids.length) throw new Error('self-inspection: duplicate check ids');
  }

  /** The most recent run of this process, or null. */
  get last(): SelfcheckRun | null {
    return this.latest;
  }

  /** Runs the start inspection, then keeps the daily schedule until `dispose()`. */
  async start(): Promise<SelfcheckRun | null> {
    const saved = await readJsonFile(this.options.stateFile, StateSchema).catch(() => null);
    this.lastRunAtMs = saved?.lastRunAtMs ?? null;
    const run = await this.run('start');
    this.schedule();
    return run;
  }

  /** Runs every check now (after any run in progress). Null only after `dispose()`. */
  run(trigger: SelfcheckTrigger, commandId?: string): Promise<SelfcheckRun | null> {
    const next = this.queue.then(() => (this.disposed ? null : this.runNow(trigger, commandId)));
    this.queue = next.catch(() => undefined);
    return next;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.queue;
  }

  private schedule(): void {
    if (this.disposed) return;
    this.timer = setTimeout(() => {
      const due = this.lastRunAtMs === null || this.options.nowMs() - this.lastRunAtMs >= this.intervalMs;
      const work = due ? this.run('daily') : Promise.resolve(null);
      void work
        .catch((error: unknown) => this.options.logger.error('scheduled self-inspection failed', { error: errorText(error) }))
        .finally(() => this.schedule());
    }, Math.min(this.pollMs, this.intervalMs));
    this.timer.unref();
  }

  private async runNow(trigger: SelfcheckTrigger, commandId: string | undefined): Promise<SelfcheckRun> {
    const startedMs = this.options.nowMs();
    const checks: SelfcheckCheck[] = [];
    // Sequential: the checks run programs (lsblk, dpkg-query) and must stay light on a working PC.
    for (const check of [...this.options.checks].sort((a, b) => SELFCHECK_IDS.indexOf(a.id) - SELFCHECK_IDS.indexOf(b.id))) {
      const outcome = await this.runOne(check);
      checks.push({ id: check.id, result: outcome.result, clause: SELFCHECK_DEFINITIONS[check.id].clause, evidence: boundEvidence(outcome.evidence) });
    }
    const finishedMs = Math.max(startedMs, this.options.nowMs());
    const context = this.options.context();
    const run = SelfcheckRunSchema.parse({
      runId: `${startedMs}-${++this.counter}`,
      trigger,
      ...(commandId !== undefined ? { commandId } : {}),
      startedAt: new Date(startedMs).toISOString(),
      finishedAt: new Date(finishedMs).toISOString(),
      tier: context.tier,
      policyVersion: context.policyVersion,
      policyOrigin: context.policyOrigin,
      agentVersion: context.agentVersion,
      platform: context.platform,
      summary: summarize(checks),
      checks,
    });
    await this.options.journal.append('selfcheck.result', run);
    this.latest = run;
    this.lastRunAtMs = finishedMs;
    await writeJsonFileAtomic(this.options.stateFile, { lastRunAtMs: finishedMs }).catch((error: unknown) =>
      this.options.logger.warn('could not save the self-inspection schedule', { error: errorText(error) }),
    );
    this.options.logger.info('self-inspection done', { trigger, ...run.summary });
    return run;
  }

  private async runOne(check: SelfCheck): Promise<CheckOutcome> {
    let timer: NodeJS.Timeout | null = null;
    const timeout = new Promise<CheckOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ result: 'unknown', evidence: { error: `the check did not finish within ${this.checkTimeoutMs} ms` } }), this.checkTimeoutMs);
    });
    try {
      return await Promise.race([
        check.run().catch((error: unknown): CheckOutcome => {
          this.options.logger.error('self-inspection check failed', { check: check.id, error: errorText(error) });
          return { result: 'unknown', evidence: { error: errorText(error) } };
        }),
        timeout,
      ]);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
}
