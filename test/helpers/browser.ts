import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { ROOT } from './processes.js';

/**
 * Headless Chromium for the renderer pages (DESIGN.md §9: the pages run in any browser against a
 * stand-in of the preload API). Debian's `chromium` package (`.ci/run` installs it), driven by
 * playwright-core; never a downloaded browser. Pages are served from `dist/` over loopback HTTP so
 * their ES modules load as they do from `file://` in Electron.
 */

export const CHROMIUM_PATH = process.env.SEKIMORI_CHROMIUM ?? '/usr/bin/chromium';

/** Where browser tests leave their screenshots. */
export const ARTIFACTS = path.join(ROOT, 'test-artifacts');

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: install Debian's package (apt-get install chromium) or set SEKIMORI_CHROMIUM`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Serves `root` read-only on 127.0.0.1 (a free port). Nothing outside `root` is reachable. */
export async function serveDirectory(root: string): Promise<{ url: string; close: () => Promise<void> }> {
  const base = path.resolve(root);
  const server = http.createServer((request, response) => {
    void (async () => {
      const pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
      const file = path.resolve(base, '.' + pathname);
      if (request.method !== 'GET' || (file !== base && !file.startsWith(base + path.sep))) {
        response.writeHead(404).end();
        return;
      }
      try {
        const body = await fsp.readFile(file);
        response.writeHead(200, { 'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body);
      } catch {
        response.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/**
 * What answers the page's calls: `invoke(channel, args)` gets exactly what the preload would pass
 * to `ipcRenderer.invoke` and returns main's answer (a `BridgeResult`). A scripted fake agent in the
 * tests; a bridge to a real agent can pass `(channel, args) => callChannel({ agent: agentClient }, channel, args)`
 * (`main/ipc-handlers.ts`) instead.
 */
export interface PreloadBackend {
  invoke(channel: string, args: unknown[]): Promise<unknown>;
}

/** What a watched page did that no page should: open dialogs, throw, log errors. */
export interface PageWatch {
  /** Messages of every dialog (alert, confirm, prompt) the page opened; each is dismissed. */
  readonly dialogs: string[];
  /** Uncaught page errors and console errors (CSP violations, failed loads). */
  readonly errors: string[];
}

/**
 * Watches `page` from now on: its dialogs (dismissed), uncaught errors and console errors, but a
 * missing favicon and, with `ignoreFailedLoads`, resources the server refused (the dashboard's
 * calls before login answer 401). Records into `into` when given (several pages, one record).
 */
export function watchPage(page: Page, options: { ignoreFailedLoads?: boolean; into?: PageWatch } = {}): PageWatch {
  const seen = options.into ?? { dialogs: [], errors: [] };
  page.on('dialog', (dialog) => {
    seen.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => seen.errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error' || message.location().url.endsWith('/favicon.ico')) return;
    if (options.ignoreFailedLoads && message.text().startsWith('Failed to load resource')) return;
    seen.errors.push(`console: ${message.text()}`);
  });
  return seen;
}

export interface PreloadPage extends PageWatch {
  readonly page: Page;
  /** Pushes an event to the page as main would (`webContents.send(channel, payload)`). */
  deliver(channel: string, payload: unknown): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens `url` in a fresh context with `window.sekimori` provided by the real preload
 * (`dist/main/preload.cjs`), run in the page before its scripts with a stand-in for the two pieces
 * of `electron` it uses: `contextBridge.exposeInMainWorld` defines the global, and
 * `ipcRenderer.invoke` forwards to `backend` through `page.exposeFunction`.
 */
export async function openWithPreload(browser: Browser, url: string, backend: PreloadBackend, options: { locale?: string } = {}): Promise<PreloadPage> {
  const context = await browser.newContext({ locale: options.locale ?? 'ja-JP', timezoneId: 'Asia/Tokyo', viewport: { width: 1024, height: 900 } });
  const page = await context.newPage();
  const { dialogs, errors } = watchPage(page);
  await page.exposeFunction('__sekimoriInvoke', (channel: string, args: unknown[]) => backend.invoke(channel, args));
  const preload = await fsp.readFile(path.join(ROOT, 'dist/main/preload.cjs'), 'utf8');
  await page.addInitScript({ content: preloadShim(preload) });
  await page.goto(url);
  return {
    page,
    dialogs,
    errors,
    deliver: (channel, payload) => page.evaluate(([c, p]) => (window as unknown as { __sekimoriDeliver: (c: unknown, p: unknown) => void }).__sekimoriDeliver(c, p), [channel, payload] as const),
    close: () => context.close(),
  };
}

export interface BrowserPages {
  /**
   * Opens `dist/<pagePath>` (e.g. `renderer/status.html#device=…`) with the real preload answered
   * by `backend` (`openWithPreload`); the page is checked and closed after the test.
   */
  open(pagePath: string, backend: PreloadBackend, options?: { locale?: string }): Promise<PreloadPage>;
}

/**
 * For a test file of renderer pages: one headless Chromium and a loopback server of `dist/` for
 * the file (and `test-artifacts/` made for screenshots). After each test, every page it opened
 * must have loaded under its CSP without a script error and never opened a dialog; then it is
 * closed.
 */
export function useBrowserPages(): BrowserPages {
  let browser: Browser | undefined;
  let server: { url: string; close: () => Promise<void> } | undefined;
  const opened: PreloadPage[] = [];
  beforeAll(async () => {
    browser = await launchChromium();
    server = await serveDirectory(path.join(ROOT, 'dist'));
    await fsp.mkdir(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });
  afterEach(async () => {
    for (const session of opened.splice(0)) {
      expect(session.errors).toEqual([]);
      expect(session.dialogs).toEqual([]);
      await session.close();
    }
  });
  return {
    async open(pagePath, backend, options) {
      if (browser === undefined || server === undefined) throw new Error('useBrowserPages: open() is for tests (after beforeAll)');
      const session = await openWithPreload(browser, `${server.url}/${pagePath}`, backend, options);
      opened.push(session);
      return session;
    },
  };
}

/** The preload's CommonJS source wrapped with a stand-in `require('electron')`. */
function preloadShim(preloadSource: string): string {
  return `(() => {
  const listeners = new Map();
  const ipcRenderer = {
    invoke: (channel, ...args) => window.__sekimoriInvoke(channel, args),
    on(channel, listener) {
      if (!listeners.has(channel)) listeners.set(channel, new Set());
      listeners.get(channel).add(listener);
      return ipcRenderer;
    },
    removeListener(channel, listener) {
      listeners.get(channel)?.delete(listener);
      return ipcRenderer;
    },
  };
  const contextBridge = {
    exposeInMainWorld(key, api) {
      Object.defineProperty(window, key, { value: api, enumerable: true });
    },
  };
  Object.defineProperty(window, '__sekimoriDeliver', {
    value: (channel, payload) => {
      for (const listener of [...(listeners.get(channel) ?? [])]) listener({}, payload);
    },
  });
  const require = (name) => {
    if (name === 'electron') return { contextBridge, ipcRenderer };
    throw new Error('a sandboxed preload cannot require ' + name);
  };
  const module = { exports: {} };
  (function (require, module, exports) {
${preloadSource}
  })(require, module, module.exports);
})();`;
}
