import path from 'node:path';
import { app, BrowserWindow } from 'electron';
import { t } from '../shared/i18n.js';

/**
 * The Electron main process's composition root. It renders state the agent owns; it holds no
 * security state of its own. The tray, lock windows and the agent connection come with the
 * desktop-app and multi-factor issues; what is here already follows the security checklist.
 */
if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('web-contents-created', (_event, contents) => {
    // No page may open windows or navigate away from the app's own files.
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
    contents.on('will-navigate', (event) => event.preventDefault());
    contents.on('will-attach-webview', (event) => event.preventDefault());
  });

  const openStatusWindow = async (): Promise<void> => {
    const window = new BrowserWindow({
      width: 520,
      height: 420,
      title: t('app.name'),
      webPreferences: { contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true },
    });
    window.setContentProtection(true);
    await window.loadFile(path.join(import.meta.dirname, '../renderer/status.html'));
  };

  app.on('second-instance', () => {
    void openStatusWindow();
  });
  app.whenReady().then(openStatusWindow).catch((error: unknown) => {
    console.error('sekimori app failed to start', error);
    app.exit(1);
  });
}
