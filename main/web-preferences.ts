/**
 * The web preferences of every window the app opens (Electron security checklist, DESIGN.md §9):
 * context isolation, the sandbox, no Node in pages, web security on, no devtools for staff, no
 * spellchecker (it would send typed text to a dictionary service on some platforms). One constant,
 * so a new window cannot forget one; `test/main/web-preferences.test.ts` checks every
 * `new BrowserWindow` in main/ spreads it.
 */
export const HARDENED_WEB_PREFERENCES = {
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  nodeIntegrationInSubFrames: false,
  webSecurity: true,
  allowRunningInsecureContent: false,
  experimentalFeatures: false,
  webviewTag: false,
  navigateOnDragDrop: false,
  devTools: false,
  spellcheck: false,
} as const;

/** The parts of Electron's `WebContents` the hardening uses (a fake in tests). */
export interface WebContentsLike {
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' }): void;
  on(event: 'will-navigate' | 'will-redirect' | 'will-attach-webview', listener: (event: { preventDefault(): void }) => void): unknown;
}

/**
 * Applied to every web contents the app creates (`app.on('web-contents-created')`): no page may
 * open a window, navigate or be redirected away from the app's own file, or attach a <webview>.
 */
export function hardenWebContents(contents: WebContentsLike, log: (message: string) => void = () => undefined): void {
  contents.setWindowOpenHandler(() => {
    log('[main] a page tried to open a window: denied');
    return { action: 'deny' };
  });
  for (const event of ['will-navigate', 'will-redirect', 'will-attach-webview'] as const) {
    contents.on(event, (details) => {
      log(`[main] ${event} prevented`);
      details.preventDefault();
    });
  }
}
