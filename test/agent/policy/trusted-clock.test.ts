import { describe, expect, it } from 'vitest';
import { TrustedClock, TrustedClockStateSchema, type ClockSources } from '../../../agent/policy/trusted-clock.js';

/** Hand-driven clocks: `wall` is what the user can set, `monotonic` only moves forward. */
function sources(): ClockSources & { wall: number; monotonic: number } {
  const state = {
    wall: Date.parse('2026-11-25T09:00:00Z'),
    monotonic: 1_000,
    wallNow: () => state.wall,
    monotonicNow: () => state.monotonic,
  };
  return state;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('TrustedClock', () => {
  it('uses the wall clock before the first server sync', () => {
    const clock = new TrustedClock(sources());
    expect(clock.now().toISOString()).toBe('2026-11-25T09:00:00.000Z');
    expect(clock.synced).toBe(false);
  });

  it('keeps running at monotonic speed when the wall clock is moved backwards before any sync', () => {
    const source = sources();
    const clock = new TrustedClock(source);
    const start = clock.nowMs();
    source.wall -= 8 * HOUR;
    source.monotonic += MINUTE;
    expect(clock.nowMs()).toBe(start + MINUTE);
  });

  it('counts from the server time plus monotonic time after a sync, whatever the wall clock says', () => {
    const source = sources();
    const clock = new TrustedClock(source);
    const server = Date.parse('2026-11-25T10:00:00Z');
    clock.sync(server);
    source.wall -= 5 * HOUR;
    source.monotonic += 30 * MINUTE;
    expect(clock.nowMs()).toBe(server + 30 * MINUTE);
    expect(clock.synced).toBe(true);
  });

  it('never extends an exception when the wall clock goes back after a later time was seen', () => {
    const source = sources();
    const clock = new TrustedClock(source);
    const until = source.wall + HOUR;
    source.wall += 2 * HOUR; // the exception has ended
    source.monotonic += 2 * HOUR;
    expect(clock.nowMs()).toBeGreaterThanOrEqual(until);
    source.wall -= 3 * HOUR; // set back before the exception ended
    source.monotonic += 1;
    expect(clock.nowMs()).toBeGreaterThanOrEqual(until);
  });

  it('believes a wall clock moved forward, which can only end exceptions sooner', () => {
    const source = sources();
    const clock = new TrustedClock(source);
    clock.sync(source.wall);
    source.wall += 3 * HOUR;
    source.monotonic += 1;
    expect(clock.nowMs()).toBe(source.wall);
  });

  it('counts time the machine slept, which the monotonic clock does not see', () => {
    const source = sources();
    const clock = new TrustedClock(source);
    clock.sync(source.wall);
    source.wall += 10 * HOUR; // suspended: the wall clock ran, the monotonic clock stood still
    expect(clock.nowMs()).toBe(source.wall);
  });

  it('lets a server sync correct a wall clock that was set far ahead', () => {
    const source = sources();
    const clock = new TrustedClock(source);
    source.wall += 365 * 24 * HOUR;
    clock.nowMs();
    source.wall -= 365 * 24 * HOUR;
    clock.sync(source.wall);
    expect(clock.nowMs()).toBe(source.wall);
  });

  it('does not go back across a restart when the wall clock was set back while it was off', () => {
    const source = sources();
    const first = new TrustedClock(source);
    source.monotonic += HOUR;
    source.wall += HOUR;
    const seen = first.nowMs();
    const state = TrustedClockStateSchema.parse(JSON.parse(JSON.stringify(first.state())));

    const rebooted = { ...sources(), wall: seen - 6 * HOUR, monotonic: 5 };
    const boot = { wallNow: () => rebooted.wall, monotonicNow: () => rebooted.monotonic };
    const second = new TrustedClock(boot, state);
    expect(second.nowMs()).toBe(seen);
    rebooted.monotonic += MINUTE;
    expect(second.nowMs()).toBe(seen + MINUTE);
  });

  it('remembers across a restart that a server sync happened', () => {
    const source = sources();
    const clock = new TrustedClock(source);
    clock.sync(source.wall);
    const restarted = new TrustedClock(source, clock.state());
    expect(restarted.synced).toBe(true);
  });

  it('refuses a server time that is not a finite epoch', () => {
    expect(() => new TrustedClock(sources()).sync(Number.NaN)).toThrow(RangeError);
  });
});

describe('TrustedClock whole milliseconds', () => {
  it('answers whole ms after a sync with a fractional server time, and frequent reads lose no time', () => {
    let monotonic = 0.25;
    const clock = new TrustedClock({ wallNow: () => 0, monotonicNow: () => monotonic }, null);
    clock.sync(1_700_000_000_000.5);
    for (let i = 0; i < 10_000; i++) {
      monotonic += 0.3;
      expect(Number.isInteger(clock.nowMs())).toBe(true);
    }
    // 10,000 reads 0.3 ms apart: 3,000 ms passed, not 0 (flooring the anchor on each read would lose it all).
    expect(clock.nowMs()).toBe(1_700_000_003_000);
  });
});
