import { describe, expect, it } from 'vitest';
import { Backoff } from '../../agent/reporter/backoff.js';

describe('Backoff (full jitter)', () => {
  it('doubles the ceiling with each failure up to the maximum, and draws below it', () => {
    const top = new Backoff(100, 1600, () => 0.999_999);
    expect(Array.from({ length: 7 }, () => top.next())).toEqual([99, 199, 399, 799, 1599, 1599, 1599]);
    const bottom = new Backoff(100, 1600, () => 0);
    expect(bottom.next()).toBe(0);
  });

  it('spreads agents apart: 500 agents retrying after the same outage do not retry in step', () => {
    const delays = Array.from({ length: 500 }, () => {
      const backoff = new Backoff(1000, 60_000);
      for (let i = 0; i < 5; i += 1) backoff.next();
      return backoff.next();
    });
    const distinctSeconds = new Set(delays.map((delay) => Math.floor(delay / 1000)));
    expect(distinctSeconds.size).toBeGreaterThan(20);
    expect(Math.max(...delays)).toBeLessThan(32_000);
  });

  it('starts again from the base after a success', () => {
    const backoff = new Backoff(100, 10_000, () => 0.999_999);
    for (let i = 0; i < 5; i += 1) backoff.next();
    expect(backoff.failures).toBe(5);
    backoff.reset();
    expect(backoff.next()).toBe(99);
  });

  it('refuses nonsensical bounds', () => {
    expect(() => new Backoff(0, 100)).toThrow(RangeError);
    expect(() => new Backoff(100, 50)).toThrow(RangeError);
  });
});
