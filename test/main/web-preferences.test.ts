import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HARDENED_WEB_PREFERENCES, hardenWebContents } from '../../main/web-preferences.js';
import { ROOT } from '../helpers/processes.js';

/**
 * The Electron security checklist where it can be checked without the binary: the hardened web
 * preferences, and every window main opens uses them (a source scan: a new window that builds its
 * own preferences fails here).
 */
describe('window hardening', () => {
  it('isolates and sandboxes pages, with no Node, no devtools and web security on', () => {
    expect(HARDENED_WEB_PREFERENCES).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, nodeIntegrationInWorker: false, nodeIntegrationInSubFrames: false, webSecurity: true, allowRunningInsecureContent: false, webviewTag: false, devTools: false });
  });

  it('every BrowserWindow in main/ spreads the hardened preferences and only adds its preload', async () => {
    const dir = path.join(ROOT, 'main');
    let windows = 0;
    for (const name of await fs.readdir(dir)) {
      if (!name.endsWith('.ts')) continue;
      const code = await fs.readFile(path.join(dir, name), 'utf8');
      for (const match of code.matchAll(/new BrowserWindow\(\{[\s\S]*?webPreferences:\s*(\{[^}]*\})/g)) {
        windows += 1;
        expect(match[1]!.replace(/\s+/g, ' '), name).toMatch(/^\{ \.\.\.HARDENED_WEB_PREFERENCES, preload: [\w.]+ \}$/);
      }
      // A BrowserWindow without webPreferences would get Electron's defaults.
      expect(code.match(/new BrowserWindow\(/g)?.length ?? 0, name).toBe([...code.matchAll(/new BrowserWindow\(\{[\s\S]*?webPreferences:/g)].length);
    }
    // The lock window, the status window and the request form.
    expect(windows).toBe(3);
  });
});

describe('web contents hardening', () => {
  it('denies every window and prevents navigation, redirects and webviews', () => {
    let openHandler: ((details: { url: string }) => { action: string }) | null = null;
    const listeners = new Map<string, (event: { preventDefault(): void }) => void>();
    hardenWebContents({
      setWindowOpenHandler: (handler) => void (openHandler = handler),
      on: (event, listener) => listeners.set(event, listener),
    });
    expect(openHandler!({ url: 'https://evil.example/' })).toEqual({ action: 'deny' });
    expect([...listeners.keys()].sort()).toEqual(['will-attach-webview', 'will-navigate', 'will-redirect']);
    for (const [event, listener] of listeners) {
      let prevented = false;
      listener({ preventDefault: () => void (prevented = true) });
      expect(prevented, event).toBe(true);
    }
  });
});
