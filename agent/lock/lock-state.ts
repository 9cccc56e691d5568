import { assertNever } from '../../shared/result.js';
import type { LockState, LockTransition, LockTrigger } from '../../shared/lock.js';

/**
 * The lock state machine (DESIGN.md §6): `locked → second-factor → unlocked`, and back to `locked`
 * on any lock trigger. Pure: `stepLock` is a function of (snapshot, event, now, config); the
 * `LockStateMachine` class only holds the snapshot, reads the injected clock and tells listeners.
 *
 * Rules, in one place:
 * - Only factor events (and an administrator's recovery) move the lock towards `unlocked`; nothing
 *   time-driven ever does. So no clock jump can unlock anything.
 * - Every lock starts a new `epoch`. A factor result carries the epoch its attempt started in; a
 *   result from an older epoch is ignored (a PIN typed before a resume does not count after it).
 * - Time is read from the injected clock, which should be monotonic (and count sleep: a resume is
 *   also delivered as its own event). A clock that runs backwards locks (`clock-jump`), because it
 *   is either a bug or tampering; one that jumps forwards just counts as elapsed time, which can
 *   only make the idle or second-factor timers fire earlier (the safe direction).
 * - Idle: while `unlocked`, `idleSeconds` (policy; 0 = never) without `activity` locks. Activity
 *   restarts the timer. Idle is checked on every event, including `tick`.
 * - The second-factor step expires after `secondFactorTimeoutMs` (back to `locked`).
 * - Once a lock screen has sent a `ui-heartbeat`, it must keep sending one at least every
 *   `uiHeartbeatTimeoutMs` while not `unlocked`; a missing heartbeat or `ui-gone` produces a
 *   transition to `locked` even when already `locked`, because the caller must respond (OS session
 *   lock, restart the lock screen). It is reported once: the watch stops until a lock screen sends a
 *   heartbeat again (a terminal whose UI is dead for a weekend journals one record, not 11,520).
 *   Before any lock screen appeared (service start, no desktop session) nothing is expected.
 *   Other lock triggers in `locked` are no-ops (no record).
 */

/** Events the agent feeds in. `attemptEpoch` is `LockSnapshot.epoch` when the attempt started. */
export type LockEvent =
  | { readonly type: 'session-start' }
  | { readonly type: 'resume' }
  | { readonly type: 'os-session-lock' }
  | { readonly type: 'remote-lock' }
  | { readonly type: 'manual-lock' }
  | { readonly type: 'policy-violation' }
  | { readonly type: 'ui-gone' }
  | { readonly type: 'ui-heartbeat' }
  | { readonly type: 'activity' }
  | { readonly type: 'tick' }
  | { readonly type: 'first-factor-ok'; readonly attemptEpoch: number }
  | { readonly type: 'second-factor-ok'; readonly attemptEpoch: number }
  | { readonly type: 'recovery-unlock'; readonly attemptEpoch: number };

export interface LockConfig {
  /** Policy `lock.idleSeconds`; 0 = never lock on idle. */
  readonly idleSeconds: number;
  /** 2 for PIN + TOTP; 1 when the policy names a single factor (first factor unlocks). */
  readonly requiredFactors: 1 | 2;
  /** Time allowed between the first and the second factor, ms. */
  readonly secondFactorTimeoutMs: number;
  /** Longest gap between lock-screen heartbeats while not unlocked, ms. */
  readonly uiHeartbeatTimeoutMs: number;
}

export const DEFAULT_LOCK_CONFIG: LockConfig = {
  idleSeconds: 600,
  requiredFactors: 2,
  secondFactorTimeoutMs: 120_000,
  uiHeartbeatTimeoutMs: 15_000,
};

export interface LockSnapshot {
  readonly state: LockState;
  /** Incremented on every lock; factor results from older epochs are ignored. */
  readonly epoch: number;
  /** Clock reading of the last event (to detect a clock running backwards). */
  readonly lastClockMs: number;
  readonly lastActivityMs: number;
  /** When the second-factor step began. */
  readonly secondFactorSinceMs: number;
  readonly lastHeartbeatMs: number;
  /** True while a lock screen is known to be alive (it sent a heartbeat and has not gone missing since). */
  readonly uiWatched: boolean;
}

export interface LockStep {
  readonly snapshot: LockSnapshot;
  /** Zero, one or (timer + event) two transitions, in order. */
  readonly transitions: readonly LockTransition[];
}

/** The state at agent start: locked (the agent never starts unlocked). */
export function initialLockSnapshot(nowMs: number): LockSnapshot {
  return { state: 'locked', epoch: 0, lastClockMs: nowMs, lastActivityMs: nowMs, secondFactorSinceMs: nowMs, lastHeartbeatMs: nowMs, uiWatched: false };
}

type LockTriggerOnly = Extract<LockTrigger, 'session-start' | 'idle' | 'resume' | 'os-session-lock' | 'remote-lock' | 'manual-lock' | 'policy-violation' | 'ui-gone' | 'ui-heartbeat-missed' | 'clock-jump' | 'second-factor-timeout'>;

/** Lock triggers that produce a record even when already `locked`. */
const ALWAYS_REPORTED: ReadonlySet<LockTrigger> = new Set<LockTrigger>(['ui-gone', 'ui-heartbeat-missed', 'clock-jump']);

function lock(snapshot: LockSnapshot, trigger: LockTriggerOnly, nowMs: number, out: LockTransition[]): LockSnapshot {
  if (snapshot.state === 'locked' && !ALWAYS_REPORTED.has(trigger)) return snapshot;
  out.push({ from: snapshot.state, to: 'locked', trigger, at: nowMs });
  // A missing or gone lock screen is reported once; the watch resumes with its next heartbeat.
  const uiWatched = trigger === 'ui-gone' || trigger === 'ui-heartbeat-missed' ? false : snapshot.uiWatched;
  return { ...snapshot, state: 'locked', epoch: snapshot.epoch + 1, lastHeartbeatMs: nowMs, uiWatched };
}

/** Timers (clock jump, second-factor timeout, idle, heartbeat) evaluated before any event. */
function applyTimers(snapshot: LockSnapshot, nowMs: number, config: LockConfig, out: LockTransition[]): LockSnapshot {
  let s = snapshot;
  if (nowMs < s.lastClockMs) {
    s = lock(s, 'clock-jump', nowMs, out);
    // Re-base every timer on the new reading so the next tick does not see a huge elapsed time.
    return { ...s, lastClockMs: nowMs, lastActivityMs: nowMs, secondFactorSinceMs: nowMs, lastHeartbeatMs: nowMs };
  }
  s = { ...s, lastClockMs: nowMs };
  switch (s.state) {
    case 'unlocked':
      if (config.idleSeconds > 0 && nowMs - s.lastActivityMs >= config.idleSeconds * 1000) s = lock(s, 'idle', nowMs, out);
      break;
    case 'second-factor':
      if (nowMs - s.secondFactorSinceMs >= config.secondFactorTimeoutMs) s = lock(s, 'second-factor-timeout', nowMs, out);
      else if (s.uiWatched && nowMs - s.lastHeartbeatMs >= config.uiHeartbeatTimeoutMs) s = lock(s, 'ui-heartbeat-missed', nowMs, out);
      break;
    case 'locked':
      if (s.uiWatched && nowMs - s.lastHeartbeatMs >= config.uiHeartbeatTimeoutMs) s = lock(s, 'ui-heartbeat-missed', nowMs, out);
      break;
    default:
      assertNever(s.state, 'lock state');
  }
  return s;
}

/**
 * One step: timers first (so a late event cannot slip in after a deadline passed), then the event.
 * Pure and total: any event in any state yields a snapshot; never throws for valid input.
 */
export function stepLock(snapshot: LockSnapshot, event: LockEvent, nowMs: number, config: LockConfig): LockStep {
  const out: LockTransition[] = [];
  let s = applyTimers(snapshot, nowMs, config, out);
  switch (event.type) {
    case 'tick':
      break;
    case 'session-start':
    case 'resume':
    case 'os-session-lock':
    case 'remote-lock':
    case 'manual-lock':
    case 'policy-violation':
      s = lock(s, event.type, nowMs, out);
      break;
    case 'ui-gone':
      // While unlocked the lock screen is not needed; losing it then is the supervisor's business.
      if (s.state !== 'unlocked') s = lock(s, 'ui-gone', nowMs, out);
      break;
    case 'ui-heartbeat':
      s = { ...s, lastHeartbeatMs: nowMs, uiWatched: true };
      break;
    case 'activity':
      if (s.state === 'unlocked') s = { ...s, lastActivityMs: nowMs };
      break;
    case 'first-factor-ok':
      if (s.state === 'locked' && event.attemptEpoch === s.epoch) {
        const to = config.requiredFactors === 1 ? 'unlocked' : 'second-factor';
        out.push({ from: 'locked', to, trigger: 'first-factor', at: nowMs });
        s = { ...s, state: to, secondFactorSinceMs: nowMs, lastActivityMs: nowMs, lastHeartbeatMs: nowMs };
      }
      break;
    case 'second-factor-ok':
      if (s.state === 'second-factor' && event.attemptEpoch === s.epoch) {
        out.push({ from: 'second-factor', to: 'unlocked', trigger: 'second-factor', at: nowMs });
        s = { ...s, state: 'unlocked', lastActivityMs: nowMs };
      }
      break;
    case 'recovery-unlock':
      if (s.state !== 'unlocked' && event.attemptEpoch === s.epoch) {
        out.push({ from: s.state, to: 'unlocked', trigger: 'recovery', at: nowMs });
        s = { ...s, state: 'unlocked', lastActivityMs: nowMs };
      }
      break;
    default:
      assertNever(event, 'lock event');
  }
  return { snapshot: s, transitions: out };
}

/** Milliseconds until the next timer could fire (for scheduling a `tick`); null when none is pending. */
export function nextLockDeadlineMs(snapshot: LockSnapshot, nowMs: number, config: LockConfig): number | null {
  switch (snapshot.state) {
    case 'unlocked':
      return config.idleSeconds > 0 ? Math.max(0, snapshot.lastActivityMs + config.idleSeconds * 1000 - nowMs) : null;
    case 'second-factor': {
      const secondFactorDue = snapshot.secondFactorSinceMs + config.secondFactorTimeoutMs;
      const heartbeatDue = snapshot.uiWatched ? snapshot.lastHeartbeatMs + config.uiHeartbeatTimeoutMs : Infinity;
      return Math.max(0, Math.min(secondFactorDue, heartbeatDue) - nowMs);
    }
    case 'locked':
      return snapshot.uiWatched ? Math.max(0, snapshot.lastHeartbeatMs + config.uiHeartbeatTimeoutMs - nowMs) : null;
    default:
      return assertNever(snapshot.state, 'lock state');
  }
}

export interface Disposable {
  dispose(): void;
}

/** Where events come from (OS session watcher, IPC, a tick timer); the class subscribes once. */
export interface LockEventSource {
  subscribe(listener: (event: LockEvent) => void): Disposable;
}

/**
 * The stateful shell around `stepLock`: injected clock (monotonic ms; must keep counting during
 * sleep, e.g. CLOCK_BOOTTIME, or rely on the `resume` event) and optional event source. Listeners
 * get every transition; the caller journals `lock.locked` (to = locked) / `lock.unlocked`
 * (to = unlocked) and pushes the state to the lock screen.
 */
export class LockStateMachine implements Disposable {
  private current: LockSnapshot;
  private readonly listeners = new Set<(transition: LockTransition) => void>();
  private subscription: Disposable | null = null;

  constructor(
    private config: LockConfig,
    private readonly clock: () => number,
    source?: LockEventSource,
  ) {
    this.current = initialLockSnapshot(clock());
    if (source) this.subscription = source.subscribe((event) => this.dispatch(event));
  }

  get snapshot(): LockSnapshot {
    return this.current;
  }

  get state(): LockState {
    return this.current.state;
  }

  /** Applies a policy change (e.g. a new idleSeconds) from now on; does not change the state. */
  setConfig(config: LockConfig): void {
    this.config = config;
  }

  /** Feeds one event; returns the transitions it caused (already delivered to listeners). */
  dispatch(event: LockEvent): readonly LockTransition[] {
    const step = stepLock(this.current, event, this.clock(), this.config);
    this.current = step.snapshot;
    for (const transition of step.transitions) for (const listener of this.listeners) listener(transition);
    return step.transitions;
  }

  /** Milliseconds until a `tick` may change something, or null. */
  nextDeadlineMs(): number | null {
    return nextLockDeadlineMs(this.current, this.clock(), this.config);
  }

  onDidTransition(listener: (transition: LockTransition) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  dispose(): void {
    this.subscription?.dispose();
    this.subscription = null;
    this.listeners.clear();
  }
}
