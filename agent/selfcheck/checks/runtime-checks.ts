import fs from 'node:fs/promises';
import path from 'node:path';
import { LOCK_MACHINE_KEY_FILE, LOCK_SECRETS_FILE } from '../../lock/secrets-store.js';
import { DAY_MS, errorText, fail, pass, unknown, type CheckOutcome, type SelfCheck } from '../check.js';

/** Default: Kerberos allows 5 min; audit timestamps should be far closer. */
export const DEFAULT_MAX_CLOCK_SKEW_SECONDS = 60;

/**
 * `time-sync`: the OS wall clock is within `maxSkewSeconds` of the server's time, estimated by the
 * trusted clock (the last server time of this run plus monotonic time since). Unknown before the
 * first contact with the server in this run.
 */
export function timeSyncCheck(options: {
  readonly skew: () => { readonly skewMs: number; readonly sinceSyncMs: number } | null;
  readonly maxSkewSeconds: () => number;
}): SelfCheck {
  return {
    id: 'time-sync',
    run() {
      const maxSkewSeconds = options.maxSkewSeconds();
      const skew = options.skew();
      if (skew === null) return Promise.resolve(unknown({ maxSkewSeconds, detail: 'no server time received since the agent started' }));
      const skewSeconds = Math.round(skew.skewMs / 100) / 10;
      const evidence = { skewSeconds, maxSkewSeconds, sinceSyncSeconds: Math.round(skew.sinceSyncMs / 1000) };
      return Promise.resolve(Math.abs(skew.skewMs) <= maxSkewSeconds * 1000 ? pass(evidence) : fail(evidence));
    },
  };
}

/** State files that hold secrets: owner-only, or the agent must not trust them. */
export const SECRET_STATE_FILES = ['credentials.json', 'config.json', LOCK_SECRETS_FILE, LOCK_MACHINE_KEY_FILE, 'lock-recovery.json'] as const;
/** Other state files the agent writes 0600 (umask 077); others reading them is a finding too. */
export const OTHER_STATE_FILES = ['journal.jsonl', 'policy.json', 'reporter.json', 'clock.json'] as const;

/**
 * `agent-integrity`: the agent runs (it answers this check) with its journal writable, the state
 * directory is 0700 and owned by the agent's user, every secret file is 0600 and owned by it, and —
 * when someone is logged in at the console — the lock screen is connected. Windows keeps its state
 * under ACLs set by the installer: permissions are unknown there.
 */
export function agentIntegrityCheck(options: {
  readonly platform: NodeJS.Platform;
  readonly stateDir: string;
  /** The agent's uid (root for the service); null on Windows. */
  readonly uid: number | null;
  readonly pid: number;
  readonly startedAtMs: number;
  readonly nowMs: () => number;
  /** Whether a console user is logged in and whether a lock screen is connected; null when unknown. */
  readonly ui: () => Promise<{ readonly consoleUser: boolean; readonly lockScreenConnected: boolean } | null>;
}): SelfCheck {
  return {
    id: 'agent-integrity',
    async run(): Promise<CheckOutcome> {
      const problems: string[] = [];
      const evidence: Record<string, unknown> = { pid: options.pid, uptimeMinutes: Math.round((options.nowMs() - options.startedAtMs) / 60_000) };
      const ui = await options.ui().catch(() => null);
      evidence.ui = ui;
      if (ui?.consoleUser && !ui.lockScreenConnected) problems.push('a user is logged in but the lock screen is not connected');
      if (options.platform === 'win32' || options.uid === null) {
        return problems.length > 0 ? fail({ ...evidence, problems }) : unknown({ ...evidence, detail: 'file permissions are ACLs here (set by the installer); not checked' });
      }
      const modes: Record<string, string> = {};
      try {
        const dir = await fs.stat(options.stateDir);
        modes['.'] = (dir.mode & 0o777).toString(8);
        if ((dir.mode & 0o077) !== 0) problems.push(`state directory mode ${modes['.']}, expected 700`);
        if (dir.uid !== options.uid) problems.push(`state directory owned by uid ${dir.uid}, not the agent's ${options.uid}`);
      } catch (error) {
        return fail({ ...evidence, problems: [`cannot read the state directory: ${errorText(error)}`] });
      }
      for (const name of [...SECRET_STATE_FILES, ...OTHER_STATE_FILES]) {
        const stat = await fs.stat(path.join(options.stateDir, name)).catch(() => null);
        if (stat === null) continue;
        modes[name] = (stat.mode & 0o777).toString(8);
        if ((stat.mode & 0o077) !== 0) problems.push(`${name} mode ${modes[name]}, expected 600`);
        if (stat.uid !== options.uid) problems.push(`${name} owned by uid ${stat.uid}`);
      }
      evidence.modes = modes;
      return problems.length > 0 ? fail({ ...evidence, problems }) : pass(evidence);
    },
  };
}

/** What the journal-upload check reads from the reporter and the journal. */
export interface UploadState {
  readonly serverUrl: string | null;
  readonly ackSeq: number;
  readonly lastContactAt: string | null;
  readonly problem: string | null;
  readonly journalLength: number;
  /** Where the local chain was found broken at start (seq), or null. */
  readonly chainBrokenAt: number | null;
}

/** Longest a terminal may go without reaching the server before the check fails. */
export const MAX_CONTACT_AGE_MS = DAY_MS;

/**
 * `journal-upload`: the journal reaches the server — a server is configured and reached within a
 * day, uploads are not stuck (`problem`: the server refused the chain, …), and the local chain
 * verified when the journal was opened. Evidence: ack vs length (entries not yet delivered).
 */
export function journalUploadCheck(options: { readonly state: () => UploadState; readonly nowMs: () => number }): SelfCheck {
  return {
    id: 'journal-upload',
    run() {
      const state = options.state();
      const contactMs = state.lastContactAt === null ? Number.NaN : Date.parse(state.lastContactAt);
      const evidence: Record<string, unknown> = {
        journalLength: state.journalLength,
        ackSeq: state.ackSeq,
        pending: Math.max(0, state.journalLength - state.ackSeq),
        lastContactAt: state.lastContactAt,
        contactAgeMinutes: Number.isNaN(contactMs) ? null : Math.max(0, Math.round((options.nowMs() - contactMs) / 60_000)),
        problem: state.problem,
        chainBrokenAt: state.chainBrokenAt,
      };
      const problems: string[] = [];
      if (state.chainBrokenAt !== null) problems.push(`the local journal chain is broken at seq ${state.chainBrokenAt}`);
      if (state.serverUrl === null) {
        return Promise.resolve(problems.length > 0 ? fail({ ...evidence, problems }) : unknown({ ...evidence, detail: 'no server configured: nothing is uploaded' }));
      }
      if (state.problem !== null) problems.push(`uploads are stuck: ${state.problem}`);
      if (Number.isNaN(contactMs)) problems.push('the server was never reached');
      else if (options.nowMs() - contactMs > MAX_CONTACT_AGE_MS) problems.push('no contact with the server for more than a day');
      return Promise.resolve(problems.length > 0 ? fail({ ...evidence, problems }) : pass(evidence));
    },
  };
}
