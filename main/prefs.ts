import { z } from 'zod';
import { pickLocale, type Locale } from '../shared/i18n.js';
import type { UiPrefs } from '../shared/preload-api.js';

/**
 * The staff member's display preferences: language and where the status window was. They live in
 * electron-store (a JSON file in the user's profile that the user can edit), so nothing security
 * depends on is kept there — the agent owns state and secrets. What is read back is validated and
 * anything off-shape falls back to the default, never to an error the user would see.
 */

export interface WindowBounds {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** The part of electron-store used here (a Map-backed stand-in in tests). */
export interface KeyValueStore {
  get(key: string): unknown;
  set(key: string, value: unknown): void;
}

const LocaleSchema = z.enum(['ja', 'en']);
const BoundsSchema = z.strictObject({
  x: z.int().min(-100_000).max(100_000),
  y: z.int().min(-100_000).max(100_000),
  width: z.int().min(200).max(10_000),
  height: z.int().min(150).max(10_000),
});

/** The electron-store schema (JSON Schema, checked by electron-store on every write). */
export const PREFS_STORE_SCHEMA = {
  language: { type: 'string', enum: ['ja', 'en'] },
  statusWindow: {
    type: 'object',
    properties: { x: { type: 'integer' }, y: { type: 'integer' }, width: { type: 'integer' }, height: { type: 'integer' } },
    required: ['x', 'y', 'width', 'height'],
    additionalProperties: false,
  },
} as const;

export class Prefs {
  private readonly listeners = new Set<(prefs: UiPrefs) => void>();

  /** `systemLocale`: the OS language, used until the staff member picks one. */
  constructor(
    private readonly store: KeyValueStore,
    private readonly systemLocale: string,
  ) {}

  get(): UiPrefs {
    const saved = LocaleSchema.safeParse(this.store.get('language'));
    return { language: saved.success ? saved.data : pickLocale(this.systemLocale) };
  }

  get language(): Locale {
    return this.get().language;
  }

  setLanguage(language: Locale): UiPrefs {
    this.store.set('language', LocaleSchema.parse(language));
    const prefs = this.get();
    for (const listener of [...this.listeners]) listener(prefs);
    return prefs;
  }

  onDidChange(listener: (prefs: UiPrefs) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** The saved status-window bounds, if they are sane and still on one of `displays` (work areas). */
  statusWindowBounds(displays: readonly WindowBounds[]): WindowBounds | null {
    const saved = BoundsSchema.safeParse(this.store.get('statusWindow'));
    if (!saved.success) return null;
    const bounds = saved.data;
    // A window saved on a monitor that is gone would open off-screen: only keep it if its title bar is visible.
    const visible = displays.some((area) => bounds.x + 80 > area.x && bounds.x < area.x + area.width - 80 && bounds.y >= area.y && bounds.y < area.y + area.height - 40);
    return visible ? bounds : null;
  }

  saveStatusWindowBounds(bounds: WindowBounds): void {
    const parsed = BoundsSchema.safeParse({ x: Math.round(bounds.x), y: Math.round(bounds.y), width: Math.round(bounds.width), height: Math.round(bounds.height) });
    if (parsed.success) this.store.set('statusWindow', parsed.data);
  }
}
