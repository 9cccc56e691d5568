import { z } from 'zod';

/**
 * A clock that exceptions (一時許可) can trust (DESIGN.md §5): a wall clock moved backwards never
 * extends an exception.
 *
 * The clock keeps an anchor — a trusted time and the monotonic reading when it was taken — and
 * answers `max(anchor + monotonic elapsed, wall clock)`, then moves the anchor up to its answer:
 * - After `sync(serverTime)` the anchor is the server's time (the server is the trusted source, so
 *   a sync may also move the clock back, e.g. after a wall clock set far ahead).
 * - Before any sync (or after a restart, from the persisted state) the anchor is the highest time
 *   seen, so the clock never goes backwards either.
 * - A wall clock moved backwards is outvoted by `anchor + elapsed`: time keeps running at the
 *   monotonic rate. A wall clock moved forwards is believed: exceptions then end early, the safe
 *   direction. That is also what covers sleep: Node's monotonic clock (CLOCK_MONOTONIC on Linux)
 *   stops while the machine is suspended, the wall clock does not.
 * Across a restart the monotonic clock starts over, so the time the machine was off (and since the
 *   last `state()` was persisted) is not counted unless the wall clock shows it; persist often.
 *
 * Pure: every source is injected. Units are milliseconds since the Unix epoch (monotonic: any origin).
 */
export interface ClockSources {
  /** The OS wall clock: `Date.now()`. Untrusted — the user may set it. */
  readonly wallNow: () => number;
  /** A monotonic clock in ms, e.g. `performance.now()`; only differences are used. */
  readonly monotonicNow: () => number;
}

/** What to persist between runs (small JSON; the caller stores it, e.g. in the state dir). */
export const TrustedClockStateSchema = z.strictObject({
  /** The highest trusted time handed out, epoch ms. */
  trustedMs: z.number().int().nonnegative(),
  /** Server time of the last sync, epoch ms; null before the first sync ever. */
  lastServerSyncMs: z.number().int().nonnegative().nullable(),
});
export type TrustedClockState = z.infer<typeof TrustedClockStateSchema>;

export const systemClockSources: ClockSources = {
  wallNow: () => Date.now(),
  monotonicNow: () => Number(process.hrtime.bigint() / 1_000_000n),
};

export class TrustedClock {
  private anchorMs: number;
  private anchorMonotonic: number;
  private lastServerSyncMs: number | null;
  /** The last sync of this run: server time and the monotonic reading then (for `serverSkew`). */
  private syncPoint: { serverMs: number; monotonic: number } | null = null;

  /** `persisted` is the last `state()`; null (or absent) on the first run. */
  constructor(
    private readonly sources: ClockSources = systemClockSources,
    persisted: TrustedClockState | null = null,
  ) {
    this.anchorMonotonic = sources.monotonicNow();
    this.anchorMs = Math.max(persisted?.trustedMs ?? 0, sources.wallNow());
    this.lastServerSyncMs = persisted?.lastServerSyncMs ?? null;
  }

  /** Records the server's time (e.g. from a heartbeat answer), corrected by the caller for latency. */
  sync(serverTimeMs: number): void {
    if (!Number.isFinite(serverTimeMs) || serverTimeMs < 0) throw new RangeError(`server time must be a finite epoch ms, got ${serverTimeMs}`);
    this.anchorMs = serverTimeMs;
    this.anchorMonotonic = this.sources.monotonicNow();
    this.lastServerSyncMs = serverTimeMs;
    this.syncPoint = { serverMs: serverTimeMs, monotonic: this.anchorMonotonic };
  }

  /**
   * How far the OS wall clock is from the server's time, estimated as the last sync of this run plus
   * the monotonic time since (positive: the wall clock is ahead). Null before a sync in this run.
   * Unlike `nowMs()`, this is not clamped to the wall clock: it is what self-inspection compares.
   */
  serverSkew(): { readonly skewMs: number; readonly sinceSyncMs: number } | null {
    if (this.syncPoint === null) return null;
    const sinceSyncMs = Math.max(0, this.sources.monotonicNow() - this.syncPoint.monotonic);
    return { skewMs: Math.round(this.sources.wallNow() - (this.syncPoint.serverMs + sinceSyncMs)), sinceSyncMs: Math.round(sinceSyncMs) };
  }

  /** The trusted time, whole epoch ms (stored in integer fields); never less than any earlier answer since the last sync. */
  nowMs(): number {
    const monotonic = this.sources.monotonicNow();
    // A monotonic clock never runs backwards; clamp anyway so a faulty source cannot rewind us.
    const floor = this.anchorMs + Math.max(0, monotonic - this.anchorMonotonic);
    const now = Math.max(floor, this.sources.wallNow());
    this.anchorMs = now;
    this.anchorMonotonic = monotonic;
    // Whole ms out (the anchor keeps its fraction — half a round trip, `performance.now()` — so
    // frequent reads lose nothing); flooring keeps the answers monotonic.
    return Math.floor(now);
  }

  now(): Date {
    return new Date(this.nowMs());
  }

  /** Whether a server time was ever recorded (this run or a persisted earlier one). */
  get synced(): boolean {
    return this.lastServerSyncMs !== null;
  }

  /** The state to persist; call after `nowMs()` or `sync()` so it holds the latest time. */
  state(): TrustedClockState {
    return { trustedMs: Math.floor(this.anchorMs), lastServerSyncMs: this.lastServerSyncMs === null ? null : Math.floor(this.lastServerSyncMs) };
  }
}
