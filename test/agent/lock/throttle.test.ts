import { describe, expect, it } from 'vitest';
import { INITIAL_THROTTLE, assessThrottle, backoffMs, clearThrottle, recordFailure, recordSuccess, type ThrottleState } from '../../../agent/lock/throttle.js';

const T0 = 1_700_000_000_000;
function failures(n: number, max = 10, start = INITIAL_THROTTLE): ThrottleState {
  let s = start;
  for (let i = 0; i < n; i++) s = recordFailure(s, T0 + i, max);
  return s;
}

describe('throttle', () => {
  it('backs off min(30 s × 2^(n − 5), 1 h) from the 5th consecutive failure', () => {
    expect([0, 4, 5, 6, 7, 10, 12, 13, 50].map(backoffMs)).toEqual([0, 0, 30_000, 60_000, 120_000, 960_000, 3_600_000, 3_600_000, 3_600_000]);
  });

  it('allows four failures in a row without waiting, then makes the fifth wait', () => {
    expect(assessThrottle(failures(4), T0 + 4, 10)).toEqual({ allowed: true, remainingBeforeLockout: 6 });
    const five = failures(5);
    expect(assessThrottle(five, T0 + 5, 10)).toEqual({ allowed: false, reason: 'backoff', retryAtMs: T0 + 4 + 30_000, remainingBeforeLockout: 5 });
    expect(assessThrottle(five, T0 + 4 + 30_000, 10).allowed).toBe(true);
  });

  it('locks out at maxFailures and a lock-out never ends on a timer', () => {
    const s = failures(10);
    expect(s.lockedOut).toBe(true);
    expect(s.lockedOutAtMs).toBe(T0 + 9);
    for (const later of [T0 + 86_400_000, T0 + 365 * 86_400_000]) expect(assessThrottle(s, later, 10)).toEqual({ allowed: false, reason: 'locked-out', remainingBeforeLockout: 0 });
  });

  it('locks out when a new policy lowers maxFailures below the current count', () => {
    expect(assessThrottle(failures(4), T0 + 10, 3)).toMatchObject({ allowed: false, reason: 'locked-out' });
  });

  it('resets the consecutive count on a complete unlock but keeps the total, and not once locked out', () => {
    const s = recordSuccess(failures(6));
    expect(s).toMatchObject({ consecutive: 0, total: 6, lockedOut: false });
    expect(assessThrottle(s, T0 + 7, 10).allowed).toBe(true);
    const out = failures(10);
    expect(recordSuccess(out)).toEqual(out);
  });

  it('clears everything only through administrator recovery', () => {
    expect(clearThrottle()).toEqual(INITIAL_THROTTLE);
    expect(assessThrottle(clearThrottle(), T0, 10).allowed).toBe(true);
  });
});
