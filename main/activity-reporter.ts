import type { LockView } from '../shared/ipc.js';

/**
 * While the session is unlocked no lock page runs, so main tells the agent about the user's
 * activity (the agent locks after `idleSeconds` without it, DESIGN.md §6). Every `intervalMs` it
 * reads the OS idle time and sends one `lock.activity` if there was input during the interval.
 * Pure apart from the injected functions, so it is tested without Electron.
 */
export interface ActivityReporterOptions {
  /** Seconds since the last keyboard or mouse input (Electron: `powerMonitor.getSystemIdleTime`). */
  readonly systemIdleSeconds: () => number;
  readonly lockView: () => LockView | null;
  readonly sendActivity: () => Promise<void>;
  readonly intervalMs: number;
  readonly every: (ms: number, callback: () => void) => () => void;
  readonly log?: (message: string) => void;
}

/** Starts reporting; returns a function that stops it. */
export function startActivityReporter(options: ActivityReporterOptions): () => void {
  return options.every(options.intervalMs, () => reportActivityOnce(options));
}

/** One check: sends activity when unlocked and the last input is newer than the interval. */
export function reportActivityOnce(options: Omit<ActivityReporterOptions, 'every'>): boolean {
  if (options.lockView()?.state !== 'unlocked') return false;
  if (options.systemIdleSeconds() * 1000 >= options.intervalMs) return false;
  options.sendActivity().catch((error: unknown) => options.log?.(`[activity] not reported: ${error instanceof Error ? error.message : String(error)}`));
  return true;
}
