import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { app, BrowserWindow, ipcMain, powerMonitor, screen, session } from 'electron';
import { t } from '../shared/i18n.js';
import { startActivityReporter } from './activity-reporter.js';
import { AgentClient, defaultAgentEndpoint } from './agent-client.js';
import { EVENT_CHANNELS } from './bridge-api.js';
import { createIpcRouter, registerIpcHandlers } from './ipc-handlers.js';
import { ElectronLockWindowFactory } from './lock-window.js';
import { LockWindows, shouldShowLock } from './lock-windows.js';

/**
 * The Electron main process's composition root. It renders state the agent owns and forwards
 * input; it holds no security state of its own. The lock windows show whenever the agent's lock is
 * not `unlocked` and whenever the agent cannot be reached (fail closed: "保護サービスに接続できません").
 * `process.platform` and the environment are read here only.
 */
const log = (message: string): void => console.log(message);

const every = (ms: number, callback: () => void): (() => void) => {
  const timer = setInterval(callback, ms);
  return () => clearInterval(timer);
};

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  const rendererDir = path.join(import.meta.dirname, '../renderer');
  const preload = path.join(import.meta.dirname, 'preload.cjs');
  const pages = {
    lock: path.join(rendererDir, 'lock.html'),
    status: path.join(rendererDir, 'status.html'),
  };

  app.on('web-contents-created', (_event, contents) => {
    // No page may open windows or navigate away from the app's own files.
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
    contents.on('will-navigate', (event) => event.preventDefault());
    contents.on('will-redirect', (event) => event.preventDefault());
    contents.on('will-attach-webview', (event) => event.preventDefault());
  });
  // The app is a tray app: closing the status window (or unlocking) does not quit it.
  app.on('window-all-closed', () => undefined);

  const agent = new AgentClient({ endpoint: defaultAgentEndpoint(process.platform, process.env), log });
  const stopIpc = registerIpcHandlers(ipcMain, createIpcRouter({
    agent,
    pages: { lock: pathToFileURL(pages.lock).href, status: pathToFileURL(pages.status).href },
    log,
  }));

  const openStatusWindow = async (): Promise<void> => {
    const window = new BrowserWindow({
      width: 520,
      height: 420,
      title: t('app.name'),
      webPreferences: { preload, contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true },
    });
    window.setContentProtection(true);
    await window.loadFile(pages.status);
  };

  app.on('second-instance', () => {
    void openStatusWindow();
  });

  app.whenReady().then(async () => {
    // Pages need no permission (camera, notifications, …): deny every request.
    session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));

    const lockWindows = new LockWindows({
      factory: new ElectronLockWindowFactory({ page: pages.lock, preload, log }),
      displays: () => screen.getAllDisplays(),
      primaryDisplayId: () => screen.getPrimaryDisplay().id,
      every,
    });
    const update = (): void => {
      if (shouldShowLock(agent.state, agent.lockView)) lockWindows.show();
      else lockWindows.hide();
    };
    agent.onLockChanged((view) => {
      lockWindows.broadcast(EVENT_CHANNELS.lockChanged, view);
      update();
    });
    agent.onConnection((state) => {
      lockWindows.broadcast(EVENT_CHANNELS.connectionChanged, state);
      update();
    });
    screen.on('display-added', () => lockWindows.displaysChanged());
    screen.on('display-removed', () => lockWindows.displaysChanged());
    screen.on('display-metrics-changed', () => lockWindows.displaysChanged());
    // The OS events the agent acts on (it decides; the app only reports them).
    powerMonitor.on('lock-screen', () => {
      agent.sessionEvent('os-session-lock').catch((error: unknown) => log(`[main] os-session-lock not reported: ${String(error)}`));
    });
    powerMonitor.on('resume', () => {
      agent.sessionEvent('resume').catch((error: unknown) => log(`[main] resume not reported: ${String(error)}`));
    });
    const stopActivity = startActivityReporter({
      systemIdleSeconds: () => powerMonitor.getSystemIdleTime(),
      lockView: () => agent.lockView,
      sendActivity: () => agent.activity(),
      intervalMs: 10_000,
      every,
      log,
    });
    app.on('before-quit', () => {
      stopActivity();
      stopIpc();
      agent.dispose();
      lockWindows.dispose();
    });

    update(); // locked until the agent says otherwise
    agent.start();
    await openStatusWindow();
  }).catch((error: unknown) => {
    console.error('sekimori app failed to start', error);
    app.exit(1);
  });
}
