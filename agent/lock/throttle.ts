import { z } from 'zod';

/**
 * Unlock throttling (DESIGN.md §6), pure. The caller persists `ThrottleState` (in the secrets file)
 * before it answers the attempt, so a restart never resets it.
 *
 * Exactly:
 * - Every failed factor (wrong PIN, wrong / replayed / malformed TOTP code) is one failure: both
 *   `consecutive` and `total` go up by one.
 * - Only a *complete* unlock (every required factor passed in one attempt) resets `consecutive` to 0.
 *   A right PIN alone does not: otherwise someone who knows the PIN could guess codes for ever.
 *   `total` is never reset except by an administrator's recovery (it is for reports).
 * - Back-off: after the 5th consecutive failure, the next attempt waits
 *   `min(30 s × 2^(consecutive − 5), 1 h)` from the last failure: 30 s, 1 min, 2 min, 4 min, … 1 h.
 *   An attempt during the back-off is refused without checking anything and is not counted.
 * - Lock-out: when `consecutive` reaches the policy's `maxFailures`, `lockedOut` is set. Nothing
 *   but an administrator's recovery (`clearThrottle`) clears it; no timer does.
 * - Times are epoch ms from the agent's trusted clock (never runs backwards). A wall clock set
 *   forwards would shorten a back-off; it cannot end a lock-out.
 */
export const ThrottleStateSchema = z.strictObject({
  consecutive: z.int().min(0),
  total: z.int().min(0),
  lastFailureMs: z.number().int().nonnegative().nullable(),
  lockedOut: z.boolean(),
  lockedOutAtMs: z.number().int().nonnegative().nullable(),
});
export type ThrottleState = z.infer<typeof ThrottleStateSchema>;

export const INITIAL_THROTTLE: ThrottleState = { consecutive: 0, total: 0, lastFailureMs: null, lockedOut: false, lockedOutAtMs: null };

export const BACKOFF_AFTER_FAILURES = 5;
export const BACKOFF_BASE_MS = 30_000;
export const BACKOFF_MAX_MS = 3_600_000;

/** The wait after `consecutive` failures, ms (0 below the threshold). */
export function backoffMs(consecutive: number): number {
  if (consecutive < BACKOFF_AFTER_FAILURES) return 0;
  const exponent = Math.min(consecutive - BACKOFF_AFTER_FAILURES, 20);
  return Math.min(BACKOFF_BASE_MS * 2 ** exponent, BACKOFF_MAX_MS);
}

export type ThrottleVerdict =
  | { readonly allowed: true; readonly remainingBeforeLockout: number }
  | { readonly allowed: false; readonly reason: 'backoff'; readonly retryAtMs: number; readonly remainingBeforeLockout: number }
  | { readonly allowed: false; readonly reason: 'locked-out'; readonly remainingBeforeLockout: 0 };

/** May an attempt be made now? `remainingBeforeLockout` is what the lock screen shows. */
export function assessThrottle(state: ThrottleState, nowMs: number, maxFailures: number): ThrottleVerdict {
  if (state.lockedOut || state.consecutive >= maxFailures) return { allowed: false, reason: 'locked-out', remainingBeforeLockout: 0 };
  const remainingBeforeLockout = maxFailures - state.consecutive;
  const wait = backoffMs(state.consecutive);
  if (wait > 0 && state.lastFailureMs !== null && nowMs < state.lastFailureMs + wait) {
    return { allowed: false, reason: 'backoff', retryAtMs: state.lastFailureMs + wait, remainingBeforeLockout };
  }
  return { allowed: true, remainingBeforeLockout };
}

/** One more failure; sets `lockedOut` when `maxFailures` is reached. */
export function recordFailure(state: ThrottleState, nowMs: number, maxFailures: number): ThrottleState {
  const consecutive = state.consecutive + 1;
  const lockedOut = state.lockedOut || consecutive >= maxFailures;
  return {
    consecutive,
    total: state.total + 1,
    lastFailureMs: nowMs,
    lockedOut,
    lockedOutAtMs: state.lockedOutAtMs ?? (lockedOut ? nowMs : null),
  };
}

/** A complete unlock: the consecutive count goes back to 0. A lock-out is not cleared by this. */
export function recordSuccess(state: ThrottleState): ThrottleState {
  if (state.lockedOut) return state;
  return { ...state, consecutive: 0, lastFailureMs: null };
}

/** Administrator recovery: clears the lock-out and every count. */
export function clearThrottle(): ThrottleState {
  return { ...INITIAL_THROTTLE };
}
