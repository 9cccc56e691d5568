import { describe, expect, it } from 'vitest';
import { Prefs, type KeyValueStore } from '../../main/prefs.js';

/** main/prefs.ts over a Map standing in for electron-store (the file the user can edit). */

const mapStore = (initial: Record<string, unknown> = {}): KeyValueStore & { data: Map<string, unknown> } => {
  const data = new Map(Object.entries(initial));
  return { data, get: (key) => data.get(key), set: (key, value) => void data.set(key, value) };
};
const screen = [{ x: 0, y: 0, width: 1920, height: 1040 }];

describe('UI preferences', () => {
  it('starts in the OS language (Japanese unless English), keeps the choice, and tells listeners', () => {
    expect(new Prefs(mapStore(), 'ja-JP').get()).toEqual({ language: 'ja' });
    expect(new Prefs(mapStore(), 'fr-FR').get()).toEqual({ language: 'ja' });
    const store = mapStore();
    const prefs = new Prefs(store, 'en-US');
    expect(prefs.language).toBe('en');
    const seen: string[] = [];
    prefs.onDidChange((value) => seen.push(value.language));
    expect(prefs.setLanguage('ja')).toEqual({ language: 'ja' });
    expect(store.data.get('language')).toBe('ja');
    expect(new Prefs(store, 'en-US').language).toBe('ja');
    expect(seen).toEqual(['ja']);
  });

  it('ignores an edited file: a bad language or window falls back to the default', () => {
    const prefs = new Prefs(mapStore({ language: { __proto__: 'en' }, statusWindow: { x: 'left', y: 0, width: 10, height: 10 } }), 'ja');
    expect(prefs.get()).toEqual({ language: 'ja' });
    expect(prefs.statusWindowBounds(screen)).toBeNull();
    expect(() => prefs.setLanguage('fr' as 'ja')).toThrow();
  });

  it('restores the status window where it was, unless that monitor is gone', () => {
    const store = mapStore();
    const prefs = new Prefs(store, 'ja');
    prefs.saveStatusWindowBounds({ x: 100.4, y: 80, width: 560, height: 640 });
    expect(prefs.statusWindowBounds(screen)).toEqual({ x: 100, y: 80, width: 560, height: 640 });
    // Saved on a second monitor at x = 1920 that is no longer attached: open at the default place instead.
    prefs.saveStatusWindowBounds({ x: 2100, y: 80, width: 560, height: 640 });
    expect(prefs.statusWindowBounds(screen)).toBeNull();
    expect(prefs.statusWindowBounds([...screen, { x: 1920, y: 0, width: 1920, height: 1040 }])).toEqual({ x: 2100, y: 80, width: 560, height: 640 });
    // Nonsense sizes are not saved.
    prefs.saveStatusWindowBounds({ x: 0, y: 0, width: 5, height: 5 });
    expect(store.data.get('statusWindow')).toEqual({ x: 2100, y: 80, width: 560, height: 640 });
  });
});
