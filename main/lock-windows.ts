import type { LockView } from '../shared/ipc.js';
import type { AgentConnectionState } from './agent-client.js';

/**
 * Lock-window bookkeeping without Electron (DESIGN.md §9): one lock window per display while the
 * lock shows, re-created when displays come and go, moved when a display's bounds change,
 * re-created when one dies, and re-asserted on top periodically. The Electron calls live behind
 * `LockWindowFactory` (`lock-window.ts`), so this logic is tested with plain objects.
 */

export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface DisplayLike {
  readonly id: number;
  readonly bounds: Rect;
}

/** One lock window, as the controller drives it. */
export interface LockWindowHandle {
  /** Covers `bounds`, back on top at the `screen-saver` level, visible. */
  reassert(bounds: Rect): void;
  focus(): void;
  send(channel: string, payload: unknown): void;
  /** Closes the window for good (the only way a lock window closes). */
  destroy(): void;
  isDestroyed(): boolean;
}

export interface LockWindowFactory {
  /** A new lock window covering `display`; `onGone` is called if it dies or closes by itself. */
  create(display: DisplayLike, onGone: () => void): LockWindowHandle;
}

/** Whether the lock must show: everything except a live connection whose view is `unlocked` (fail closed). */
export function shouldShowLock(connection: AgentConnectionState, view: LockView | null): boolean {
  return !(connection === 'connected' && view !== null && view.state === 'unlocked');
}

export interface DisplayPlan {
  readonly create: readonly DisplayLike[];
  readonly destroy: readonly number[];
  readonly move: readonly DisplayLike[];
}

/** What to do so that there is exactly one window per display, covering it. Pure. */
export function planLockWindows(windows: ReadonlyMap<number, Rect>, displays: readonly DisplayLike[]): DisplayPlan {
  const wanted = new Map(displays.map((display) => [display.id, display]));
  const create: DisplayLike[] = [];
  const move: DisplayLike[] = [];
  for (const display of wanted.values()) {
    const bounds = windows.get(display.id);
    if (bounds === undefined) create.push(display);
    else if (!sameRect(bounds, display.bounds)) move.push(display);
  }
  const destroy = [...windows.keys()].filter((id) => !wanted.has(id));
  return { create, destroy, move };
}

function sameRect(a: Rect, b: Rect): boolean {
  return a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height;
}

export interface LockWindowsOptions {
  readonly factory: LockWindowFactory;
  readonly displays: () => readonly DisplayLike[];
  readonly primaryDisplayId: () => number;
  /** Runs `callback` every `ms` until the returned function is called. */
  readonly every: (ms: number, callback: () => void) => () => void;
  /** How often the windows are put back on top, ms (default 1 000). */
  readonly reassertMs?: number;
}

interface Entry {
  readonly handle: LockWindowHandle;
  bounds: Rect;
}

export class LockWindows {
  private readonly windows = new Map<number, Entry>();
  private stopTimer: (() => void) | null = null;
  private shown = false;

  constructor(private readonly options: LockWindowsOptions) {}

  get visible(): boolean {
    return this.shown;
  }

  /** How many lock windows exist (one per display while shown, none while hidden). */
  get count(): number {
    return this.windows.size;
  }

  /** Covers every display (idempotent) and keeps re-asserting until `hide`. */
  show(): void {
    if (!this.shown) {
      this.shown = true;
      this.stopTimer = this.options.every(this.options.reassertMs ?? 1_000, () => this.reassert());
    }
    this.reconcile();
  }

  /** Closes every lock window. */
  hide(): void {
    this.shown = false;
    this.stopTimer?.();
    this.stopTimer = null;
    for (const [id, entry] of [...this.windows]) {
      this.windows.delete(id);
      if (!entry.handle.isDestroyed()) entry.handle.destroy();
    }
  }

  /** A display was added or removed or changed its bounds. */
  displaysChanged(): void {
    if (this.shown) this.reconcile();
  }

  /** Puts every window back on top and replaces any that died. */
  reassert(): void {
    if (!this.shown) return;
    this.reconcile();
    for (const entry of this.windows.values()) entry.handle.reassert(entry.bounds);
  }

  /** Sends to every lock window. */
  broadcast(channel: string, payload: unknown): void {
    for (const entry of this.windows.values()) {
      if (!entry.handle.isDestroyed()) entry.handle.send(channel, payload);
    }
  }

  dispose(): void {
    this.hide();
  }

  private reconcile(): void {
    for (const [id, entry] of [...this.windows]) {
      if (entry.handle.isDestroyed()) this.windows.delete(id);
    }
    const current = new Map([...this.windows].map(([id, entry]) => [id, entry.bounds]));
    const plan = planLockWindows(current, this.options.displays());
    for (const id of plan.destroy) {
      this.windows.get(id)?.handle.destroy();
      this.windows.delete(id);
    }
    for (const display of plan.move) {
      const entry = this.windows.get(display.id);
      if (!entry) continue;
      entry.bounds = display.bounds;
      entry.handle.reassert(display.bounds);
    }
    for (const display of plan.create) {
      const handle = this.options.factory.create(display, () => this.gone(display.id, handle));
      this.windows.set(display.id, { handle, bounds: display.bounds });
      handle.reassert(display.bounds);
    }
    if (plan.create.length > 0 || plan.destroy.length > 0) this.windows.get(this.options.primaryDisplayId())?.handle.focus();
  }

  /** A window died or closed by itself: while the lock shows, replace it at once. */
  private gone(displayId: number, handle: LockWindowHandle): void {
    if (this.windows.get(displayId)?.handle !== handle) return;
    this.windows.delete(displayId);
    if (this.shown) this.reconcile();
  }
}
