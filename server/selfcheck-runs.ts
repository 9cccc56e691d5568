import { z } from 'zod';
import type { JournalEntry } from '../shared/journal.js';
import { SelfcheckRunSchema, type SelfcheckRun } from '../shared/selfcheck.js';

/**
 * Self-inspection runs (自己点検, shared/selfcheck.ts) on the server side, pure: which uploaded
 * journal entries are runs, the fiscal year of an instant, department names, and the compact form
 * of a year's runs the report is built from.
 */

/** The journal entry type of one self-inspection run. */
export const SELFCHECK_EVENT_TYPE = 'selfcheck.result';

/** A department (所属) name as an administrator sets it: trimmed, 1–100 characters, no control characters. */
export const DepartmentSchema = z
  .string()
  .trim()
  .min(1)
  .max(100)
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  .refine((value) => !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(value), { message: 'control characters are not allowed' });

/**
 * The run an entry carries: its `data` when the entry is a `selfcheck.result` whose data validates
 * with `SelfcheckRunSchema`; null for other entries and for invalid data (that entry is kept as an
 * event only). Never throws: a run a tampered or newer agent wrote must not fail the upload.
 */
export function selfcheckRunOf(entry: JournalEntry): SelfcheckRun | null {
  if (entry.type !== SELFCHECK_EVENT_TYPE) return null;
  try {
    const parsed = SelfcheckRunSchema.safeParse(entry.data);
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** UTC ISO with milliseconds (what the store keeps and compares as text). */
export function normalisedInstant(iso: string): string {
  return new Date(Date.parse(iso)).toISOString();
}

const JST_OFFSET_MS = 9 * 3_600_000;

/** The Japanese fiscal year (年度, April 1 – March 31 in Japan time) `at` falls in, by its starting year. */
export function fiscalYearOf(at: Date): number {
  const jst = new Date(at.getTime() + JST_OFFSET_MS);
  return jst.getUTCMonth() < 3 ? jst.getUTCFullYear() - 1 : jst.getUTCFullYear();
}

/**
 * A terminal's runs for `buildSelfcheckReport` with the evidence it never reads left out. The
 * report shows, per check, the evidence of the latest run carrying it (valid runs ordered by
 * `finishedAt`, ties in the order given) and only counts the others; here every other run's
 * evidence becomes `{}` (which still validates), so the report is the same while a year of daily
 * runs costs a fraction of the memory and of the report's validation time.
 *
 * `runs` are JSON values as stored (validated at ingest, not here: the report validates them again
 * and counts the ones that fail). A value that does not look like a run passes through unchanged.
 */
export function compactForReport(runs: readonly unknown[]): unknown[] {
  const order = runs.flatMap((run, index) => {
    const shape = runShape(run);
    return shape === null ? [] : [{ shape, index, at: Date.parse(shape.finishedAt) }];
  });
  // Stable, like the report's sort: "latest" here is the report's latest.
  order.sort((a, b) => a.at - b.at || a.index - b.index);
  const keep = new Map<string, number>();
  for (const { shape, index } of order) {
    for (const check of shape.checks) keep.set(check.id, index);
  }
  return runs.map((run, index) => {
    const shape = runShape(run);
    if (shape === null) return run;
    return { ...shape, checks: shape.checks.map((check) => (keep.get(check.id) === index ? check : { ...check, evidence: {} })) };
  });
}

interface RunShape {
  readonly finishedAt: string;
  readonly checks: readonly ({ readonly id: string } & Record<string, unknown>)[];
}

function runShape(value: unknown): (RunShape & Record<string, unknown>) | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const run = value as Record<string, unknown>;
  if (typeof run.finishedAt !== 'string' || Number.isNaN(Date.parse(run.finishedAt)) || !Array.isArray(run.checks)) return null;
  const checks = run.checks as unknown[];
  if (!checks.every((check) => check !== null && typeof check === 'object' && typeof (check as Record<string, unknown>).id === 'string')) return null;
  return run as RunShape & Record<string, unknown>;
}
