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
