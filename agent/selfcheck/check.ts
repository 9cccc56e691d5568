import type { SelfcheckId, SelfcheckResult } from '../../shared/selfcheck.js';

/** What one check found: its result and small evidence (JSON, no secrets; bounded by the runner). */
export interface CheckOutcome {
  readonly result: SelfcheckResult;
  readonly evidence: Record<string, unknown>;
}

/**
 * One self-inspection check. `run()` may reject (a bug or an OS surprise): the runner records the
 * check as `unknown` with the error, never as a pass.
 */
export interface SelfCheck {
  readonly id: SelfcheckId;
  run(): Promise<CheckOutcome>;
}

export const pass = (evidence: Record<string, unknown>): CheckOutcome => ({ result: 'pass', evidence });
export const fail = (evidence: Record<string, unknown>): CheckOutcome => ({ result: 'fail', evidence });
export const unknown = (evidence: Record<string, unknown>): CheckOutcome => ({ result: 'unknown', evidence });

export function errorText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return (code && !message.startsWith(code) ? `${code}: ${message}` : message).slice(0, 300);
}

export const DAY_MS = 86_400_000;
