import { describe, expect, it } from 'vitest';
import { reportActivityOnce } from '../../main/activity-reporter.js';
import { LockWindows, planLockWindows, shouldShowLock, type DisplayLike, type LockWindowFactory, type LockWindowHandle, type Rect } from '../../main/lock-windows.js';
import { baseView } from '../renderer/scripted-lock-agent.js';

/** main/lock-windows.ts (display bookkeeping) and main/activity-reporter.ts, with plain fakes. */

const display = (id: number, x: number, width = 1920, height = 1080): DisplayLike => ({ id, bounds: { x, y: 0, width, height } });

class FakeWindow implements LockWindowHandle {
  destroyed = false;
  focused = 0;
  readonly reasserted: Rect[] = [];
  readonly sent: [string, unknown][] = [];
  constructor(readonly displayId: number, readonly onGone: () => void) {}
  reassert(bounds: Rect): void {
    this.reasserted.push(bounds);
  }
  focus(): void {
    this.focused++;
  }
  send(channel: string, payload: unknown): void {
    this.sent.push([channel, payload]);
  }
  destroy(): void {
    this.destroyed = true;
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  /** The window died on its own (renderer crash, closed by the OS). */
  die(): void {
    this.destroyed = true;
    this.onGone();
  }
}

function setup(initial: DisplayLike[]) {
  let displays = initial;
  const created: FakeWindow[] = [];
  const factory: LockWindowFactory = {
    create: (d, onGone) => {
      const window = new FakeWindow(d.id, onGone);
      created.push(window);
      return window;
    },
  };
  const timers: { ms: number; callback: () => void; stopped: boolean }[] = [];
  const windows = new LockWindows({
    factory,
    displays: () => displays,
    primaryDisplayId: () => displays[0]!.id,
    every: (ms, callback) => {
      const timer = { ms, callback, stopped: false };
      timers.push(timer);
      return () => {
        timer.stopped = true;
      };
    },
  });
  const live = () => created.filter((window) => !window.destroyed);
  return {
    windows,
    created,
    live,
    timers,
    setDisplays: (next: DisplayLike[]) => {
      displays = next;
    },
  };
}

describe('shouldShowLock (fail closed)', () => {
  it('hides the lock only for a live connection whose view is unlocked', () => {
    expect(shouldShowLock('connected', baseView({ state: 'unlocked' }))).toBe(false);
    expect(shouldShowLock('connected', baseView({ state: 'locked' }))).toBe(true);
    expect(shouldShowLock('connected', baseView({ state: 'second-factor' }))).toBe(true);
    expect(shouldShowLock('connected', null)).toBe(true);
    expect(shouldShowLock('connecting', baseView({ state: 'unlocked' }))).toBe(true);
    expect(shouldShowLock('unavailable', baseView({ state: 'unlocked' }))).toBe(true);
  });
});

describe('planLockWindows', () => {
  it('creates, destroys and moves so there is exactly one window per display', () => {
    const windows = new Map<number, Rect>([
      [1, display(1, 0).bounds],
      [2, display(2, 1920).bounds],
      [3, display(3, 3840).bounds],
    ]);
    const plan = planLockWindows(windows, [display(1, 0), display(2, 1920, 2560, 1440), display(4, 5000)]);
    expect(plan.create.map((d) => d.id)).toEqual([4]);
    expect(plan.destroy).toEqual([3]);
    expect(plan.move.map((d) => d.id)).toEqual([2]);
    expect(planLockWindows(new Map(), [])).toEqual({ create: [], destroy: [], move: [] });
  });
});

describe('LockWindows', () => {
  it('covers every display with one window when shown, focuses the primary one, and closes all when hidden', () => {
    const { windows, created, live, timers } = setup([display(7, 0), display(8, 1920)]);
    windows.show();
    windows.show();
    expect(created.map((window) => window.displayId)).toEqual([7, 8]);
    expect(created.map((window) => window.reasserted)).toEqual([[display(7, 0).bounds], [display(8, 1920).bounds]]);
    expect(created[0]!.focused).toBe(1);
    expect(created[1]!.focused).toBe(0);
    expect(timers.filter((timer) => !timer.stopped)).toHaveLength(1);
    windows.hide();
    expect(live()).toEqual([]);
    expect(windows.count).toBe(0);
    expect(timers.every((timer) => timer.stopped)).toBe(true);
  });

  it('re-creates windows when displays are added or removed, and moves them when bounds change', () => {
    const { windows, created, live, setDisplays } = setup([display(1, 0)]);
    windows.show();
    setDisplays([display(1, 0), display(2, 1920)]);
    windows.displaysChanged();
    expect(live().map((window) => window.displayId)).toEqual([1, 2]);
    setDisplays([display(2, 0, 2560, 1440)]);
    windows.displaysChanged();
    expect(live().map((window) => window.displayId)).toEqual([2]);
    expect(created[0]!.destroyed).toBe(true);
    expect(created[1]!.reasserted.at(-1)).toEqual({ x: 0, y: 0, width: 2560, height: 1440 });
    expect(windows.count).toBe(1);
  });

  it('ignores display changes while hidden', () => {
    const { windows, created, setDisplays } = setup([display(1, 0)]);
    setDisplays([display(1, 0), display(2, 1920)]);
    windows.displaysChanged();
    expect(created).toEqual([]);
  });

  it('re-asserts every window on top periodically, and replaces one that died', () => {
    const { windows, created, live, timers } = setup([display(1, 0), display(2, 1920)]);
    windows.show();
    const tick = timers[0]!;
    tick.callback();
    expect(created.map((window) => window.reasserted.length)).toEqual([2, 2]);
    created[1]!.die();
    expect(live().map((window) => window.displayId)).toEqual([1, 2]);
    expect(created).toHaveLength(3);
    // A window destroyed without telling (e.g. its closed event was missed) is replaced at the next tick.
    created[0]!.destroyed = true;
    tick.callback();
    expect(live().map((window) => window.displayId).sort()).toEqual([1, 2]);
    expect(windows.count).toBe(2);
  });

  it('does not replace windows that die after the lock was hidden', () => {
    const { windows, created } = setup([display(1, 0)]);
    windows.show();
    const window = created[0]!;
    windows.hide();
    window.onGone();
    expect(created).toHaveLength(1);
  });

  it('broadcasts to every live window', () => {
    const { windows, created } = setup([display(1, 0), display(2, 1920)]);
    windows.show();
    windows.broadcast('sekimori:lock.changed', { state: 'locked' });
    expect(created.map((window) => window.sent)).toEqual([[['sekimori:lock.changed', { state: 'locked' }]], [['sekimori:lock.changed', { state: 'locked' }]]]);
  });
});

describe('activity reporter', () => {
  const base = { intervalMs: 10_000, log: () => undefined };
  it('reports activity only while unlocked and after recent input', async () => {
    const sent: string[] = [];
    const sendActivity = () => (sent.push('activity'), Promise.resolve());
    expect(reportActivityOnce({ ...base, systemIdleSeconds: () => 2, lockView: () => baseView({ state: 'unlocked' }), sendActivity })).toBe(true);
    expect(reportActivityOnce({ ...base, systemIdleSeconds: () => 60, lockView: () => baseView({ state: 'unlocked' }), sendActivity })).toBe(false);
    expect(reportActivityOnce({ ...base, systemIdleSeconds: () => 0, lockView: () => baseView({ state: 'locked' }), sendActivity })).toBe(false);
    expect(reportActivityOnce({ ...base, systemIdleSeconds: () => 0, lockView: () => null, sendActivity })).toBe(false);
    expect(sent).toEqual(['activity']);
    // A failed report is logged, never thrown.
    const logs: string[] = [];
    reportActivityOnce({ ...base, log: (message) => logs.push(message), systemIdleSeconds: () => 0, lockView: () => baseView({ state: 'unlocked' }), sendActivity: () => Promise.reject(new Error('agent gone')) });
    await new Promise((resolve) => setImmediate(resolve));
    expect(logs.join('\n')).toContain('agent gone');
  });
});
