import { describe, expect, it } from 'vitest';
import type { LockState } from '../../../shared/lock.js';
import {
  DEFAULT_LOCK_CONFIG,
  LockStateMachine,
  initialLockSnapshot,
  nextLockDeadlineMs,
  stepLock,
  type LockConfig,
  type LockEvent,
  type LockEventSource,
  type LockSnapshot,
} from '../../../agent/lock/lock-state.js';

const config: LockConfig = { idleSeconds: 300, requiredFactors: 2, secondFactorTimeoutMs: 120_000, uiHeartbeatTimeoutMs: 15_000 };
const T0 = 1_000_000;

/** A snapshot in `state` at T0 with a live lock screen (reached through real events, so epochs are consistent). */
function reach(state: LockState, cfg: LockConfig = config): LockSnapshot {
  let s = stepLock(initialLockSnapshot(T0), { type: 'ui-heartbeat' }, T0, cfg).snapshot;
  if (state === 'locked') return s;
  s = stepLock(s, { type: 'first-factor-ok', attemptEpoch: s.epoch }, T0, cfg).snapshot;
  if (state === 'second-factor') return s;
  return stepLock(s, { type: 'second-factor-ok', attemptEpoch: s.epoch }, T0, cfg).snapshot;
}

const LOCK_EVENTS = ['session-start', 'resume', 'os-session-lock', 'remote-lock', 'manual-lock', 'policy-violation'] as const;
const STATES: readonly LockState[] = ['locked', 'second-factor', 'unlocked'];

describe('lock state machine', () => {
  it('starts locked and unlocks only through the first then the second factor', () => {
    let s = initialLockSnapshot(T0);
    expect(s.state).toBe('locked');
    const first = stepLock(s, { type: 'first-factor-ok', attemptEpoch: 0 }, T0 + 1, config);
    expect(first.transitions).toEqual([{ from: 'locked', to: 'second-factor', trigger: 'first-factor', at: T0 + 1 }]);
    s = first.snapshot;
    const second = stepLock(s, { type: 'second-factor-ok', attemptEpoch: 0 }, T0 + 2, config);
    expect(second.transitions).toEqual([{ from: 'second-factor', to: 'unlocked', trigger: 'second-factor', at: T0 + 2 }]);
    expect(second.snapshot.state).toBe('unlocked');
  });

  it('does not accept a second factor while locked, nor a first factor while in second-factor', () => {
    expect(stepLock(reach('locked'), { type: 'second-factor-ok', attemptEpoch: 0 }, T0, config).snapshot.state).toBe('locked');
    const s = reach('second-factor');
    const again = stepLock(s, { type: 'first-factor-ok', attemptEpoch: s.epoch }, T0, config);
    expect(again.snapshot.state).toBe('second-factor');
    expect(again.transitions).toEqual([]);
  });

  it('unlocks on the first factor when the policy requires one factor', () => {
    const one: LockConfig = { ...config, requiredFactors: 1 };
    const step = stepLock(initialLockSnapshot(T0), { type: 'first-factor-ok', attemptEpoch: 0 }, T0, one);
    expect(step.transitions).toEqual([{ from: 'locked', to: 'unlocked', trigger: 'first-factor', at: T0 }]);
  });

  for (const trigger of LOCK_EVENTS) {
    for (const from of STATES) {
      it(`${trigger} in ${from} leaves it locked${from === 'locked' ? ' without a record' : ' with one journal record'}`, () => {
        const before = reach(from);
        const step = stepLock(before, { type: trigger }, T0 + 10, config);
        expect(step.snapshot.state).toBe('locked');
        expect(step.transitions).toEqual(from === 'locked' ? [] : [{ from, to: 'locked', trigger, at: T0 + 10 }]);
        if (from !== 'locked') expect(step.snapshot.epoch).toBe(before.epoch + 1);
      });
    }
  }

  for (const from of STATES) {
    it(`ui-gone in ${from} ${from === 'unlocked' ? 'changes nothing (the lock screen is not needed)' : 'locks and is always reported'}`, () => {
      const step = stepLock(reach(from), { type: 'ui-gone' }, T0 + 10, config);
      if (from === 'unlocked') {
        expect(step.snapshot.state).toBe('unlocked');
        expect(step.transitions).toEqual([]);
      } else {
        expect(step.snapshot.state).toBe('locked');
        expect(step.transitions).toEqual([{ from, to: 'locked', trigger: 'ui-gone', at: T0 + 10 }]);
      }
    });

    it(`a missing UI heartbeat in ${from} ${from === 'unlocked' ? 'is not required' : 'locks once, then not again until the next deadline'}`, () => {
      const late = T0 + config.uiHeartbeatTimeoutMs;
      const step = stepLock(reach(from), { type: 'tick' }, late, config);
      if (from === 'unlocked') {
        expect(step.transitions).toEqual([]);
        return;
      }
      expect(step.transitions).toEqual([{ from, to: 'locked', trigger: 'ui-heartbeat-missed', at: late }]);
      expect(stepLock(step.snapshot, { type: 'tick' }, late + 1, config).transitions).toEqual([]);
    });

    it(`activity, heartbeats and ticks in ${from} never unlock anything`, () => {
      let s = reach(from);
      for (const type of ['activity', 'ui-heartbeat', 'tick'] as const) {
        const step = stepLock(s, { type }, T0 + 1, config);
        expect(step.transitions.every((t) => t.to === 'locked')).toBe(true);
        s = step.snapshot;
      }
      expect(s.state).toBe(from);
    });
  }

  it('expects no heartbeat before a lock screen ever appeared (service start, no desktop session)', () => {
    const s = initialLockSnapshot(T0);
    expect(stepLock(s, { type: 'tick' }, T0 + 3_600_000, config).transitions).toEqual([]);
    expect(nextLockDeadlineMs(s, T0, config)).toBeNull();
  });

  it('reports a lock screen that went missing once, and watches again from its next heartbeat', () => {
    let s = reach('locked');
    const missed = stepLock(s, { type: 'tick' }, T0 + 15_000, config);
    expect(missed.transitions.map((t) => t.trigger)).toEqual(['ui-heartbeat-missed']);
    s = missed.snapshot;
    expect(stepLock(s, { type: 'tick' }, T0 + 3_600_000, config).transitions).toEqual([]);
    expect(nextLockDeadlineMs(s, T0 + 15_000, config)).toBeNull();
    s = stepLock(s, { type: 'ui-heartbeat' }, T0 + 20_000, config).snapshot;
    expect(stepLock(s, { type: 'tick' }, T0 + 35_000, config).transitions.map((t) => t.trigger)).toEqual(['ui-heartbeat-missed']);
    const gone = stepLock(stepLock(s, { type: 'ui-gone' }, T0 + 21_000, config).snapshot, { type: 'tick' }, T0 + 60_000, config);
    expect(gone.transitions).toEqual([]);
  });

  it('heartbeats keep a locked screen from being reported as missing', () => {
    let s = reach('locked');
    for (let t = T0; t < T0 + 60_000; t += 10_000) {
      const step = stepLock(s, { type: 'ui-heartbeat' }, t, config);
      expect(step.transitions).toEqual([]);
      s = step.snapshot;
    }
  });

  it('locks after idleSeconds without activity, exactly at the deadline', () => {
    const s = reach('unlocked');
    expect(stepLock(s, { type: 'tick' }, T0 + 299_999, config).snapshot.state).toBe('unlocked');
    expect(stepLock(s, { type: 'tick' }, T0 + 300_000, config).transitions).toEqual([{ from: 'unlocked', to: 'locked', trigger: 'idle', at: T0 + 300_000 }]);
  });

  it('restarts the idle timer on activity', () => {
    let s = reach('unlocked');
    s = stepLock(s, { type: 'activity' }, T0 + 200_000, config).snapshot;
    expect(stepLock(s, { type: 'tick' }, T0 + 300_000, config).snapshot.state).toBe('unlocked');
    expect(stepLock(s, { type: 'tick' }, T0 + 499_999, config).snapshot.state).toBe('unlocked');
    expect(stepLock(s, { type: 'tick' }, T0 + 500_000, config).snapshot.state).toBe('locked');
  });

  it('never locks on idle when idleSeconds is 0', () => {
    const never: LockConfig = { ...config, idleSeconds: 0 };
    const s = reach('unlocked', never);
    expect(stepLock(s, { type: 'tick' }, T0 + 365 * 86_400_000, never).snapshot.state).toBe('unlocked');
    expect(nextLockDeadlineMs(s, T0, never)).toBeNull();
  });

  it('locks on idle before it applies a late activity event (activity after the deadline does not rescue it)', () => {
    const step = stepLock(reach('unlocked'), { type: 'activity' }, T0 + 300_001, config);
    expect(step.snapshot.state).toBe('locked');
    expect(step.transitions.map((t) => t.trigger)).toEqual(['idle']);
  });

  it('returns to locked when the second factor does not come in time', () => {
    let s = reach('second-factor');
    s = stepLock(s, { type: 'ui-heartbeat' }, T0 + 10_000, config).snapshot;
    s = stepLock(s, { type: 'ui-heartbeat' }, T0 + 20_000, config).snapshot;
    const step = stepLock(s, { type: 'second-factor-ok', attemptEpoch: s.epoch }, T0 + 120_000, config);
    expect(step.snapshot.state).toBe('locked');
    expect(step.transitions.map((t) => t.trigger)).toEqual(['second-factor-timeout']);
  });

  it('does not let an unlock survive a resume, even when the factor result arrives after it', () => {
    let s = reach('second-factor');
    const attemptEpoch = s.epoch; // the code was typed before the machine slept
    s = stepLock(s, { type: 'resume' }, T0 + 1, config).snapshot;
    const late = stepLock(s, { type: 'second-factor-ok', attemptEpoch }, T0 + 2, config);
    expect(late.snapshot.state).toBe('locked');
    expect(late.transitions).toEqual([]);
    const unlocked = stepLock(reach('unlocked'), { type: 'resume' }, T0 + 1, config);
    expect(unlocked.snapshot.state).toBe('locked');
  });

  it('handles two triggers at the same instant: one lock record, the second is a no-op', () => {
    let s = reach('unlocked');
    const a = stepLock(s, { type: 'os-session-lock' }, T0 + 5, config);
    s = a.snapshot;
    const b = stepLock(s, { type: 'resume' }, T0 + 5, config);
    expect(a.transitions).toHaveLength(1);
    expect(b.transitions).toEqual([]);
    expect(b.snapshot.state).toBe('locked');
  });

  it('reports a timer and an event in the same step in order (idle, then nothing more for a lock event)', () => {
    const step = stepLock(reach('unlocked'), { type: 'remote-lock' }, T0 + 400_000, config);
    expect(step.transitions.map((t) => t.trigger)).toEqual(['idle']);
  });

  it('locks when the clock runs backwards, and a backwards jump never extends the idle time', () => {
    let s = reach('unlocked');
    s = stepLock(s, { type: 'activity' }, T0 + 100_000, config).snapshot;
    const back = stepLock(s, { type: 'tick' }, T0 - 3_600_000, config);
    expect(back.transitions).toEqual([{ from: 'unlocked', to: 'locked', trigger: 'clock-jump', at: T0 - 3_600_000 }]);
    expect(back.snapshot.state).toBe('locked');
  });

  it('counts a forward jump as elapsed time: it can only lock sooner', () => {
    const s = reach('unlocked');
    expect(stepLock(s, { type: 'activity' }, T0 + 10 * 86_400_000, config).transitions.map((t) => t.trigger)).toEqual(['idle']);
    const sf = reach('second-factor');
    const jumped = stepLock(sf, { type: 'second-factor-ok', attemptEpoch: sf.epoch }, T0 + 86_400_000, config);
    expect(jumped.snapshot.state).toBe('locked');
  });

  it('does not unlock a locked machine whatever the clock does', () => {
    for (const t of [T0 - 1e9, T0, T0 + 1, T0 + 1e12, 0]) {
      expect(stepLock(reach('locked'), { type: 'tick' }, t, config).snapshot.state).toBe('locked');
    }
  });

  it('accepts an administrator recovery unlock only for the current epoch', () => {
    const s = reach('locked');
    expect(stepLock(s, { type: 'recovery-unlock', attemptEpoch: s.epoch + 1 }, T0, config).snapshot.state).toBe('locked');
    expect(stepLock(s, { type: 'recovery-unlock', attemptEpoch: s.epoch }, T0, config).transitions).toEqual([{ from: 'locked', to: 'unlocked', trigger: 'recovery', at: T0 }]);
  });

  it('names the next deadline for scheduling ticks', () => {
    expect(nextLockDeadlineMs(reach('unlocked'), T0 + 1000, config)).toBe(299_000);
    expect(nextLockDeadlineMs(reach('second-factor'), T0, config)).toBe(15_000);
    expect(nextLockDeadlineMs(reach('locked'), T0 + 20_000, config)).toBe(0);
  });
});

describe('LockStateMachine', () => {
  it('reads the injected clock, takes events from the source and tells listeners every transition', () => {
    let now = T0;
    let emit: (event: LockEvent) => void = () => undefined;
    let disposed = false;
    const source: LockEventSource = {
      subscribe(listener) {
        emit = listener;
        return { dispose: () => { disposed = true; } };
      },
    };
    const machine = new LockStateMachine(DEFAULT_LOCK_CONFIG, () => now, source);
    const seen: string[] = [];
    machine.onDidTransition((t) => seen.push(`${t.from}>${t.to}:${t.trigger}`));
    emit({ type: 'first-factor-ok', attemptEpoch: machine.snapshot.epoch });
    emit({ type: 'second-factor-ok', attemptEpoch: machine.snapshot.epoch });
    now += DEFAULT_LOCK_CONFIG.idleSeconds * 1000;
    expect(machine.nextDeadlineMs()).toBe(0);
    emit({ type: 'tick' });
    expect(seen).toEqual(['locked>second-factor:first-factor', 'second-factor>unlocked:second-factor', 'unlocked>locked:idle']);
    expect(machine.state).toBe('locked');
    machine.dispose();
    expect(disposed).toBe(true);
  });
});
