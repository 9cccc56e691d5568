import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { app, dialog, ipcMain, Notification, powerMonitor, screen, session } from 'electron';
import ElectronStore from 'electron-store';
import { t } from '../shared/i18n.js';
import type { StatusView } from '../shared/ipc.js';
import { startActivityReporter } from './activity-reporter.js';
import { AgentClient, defaultAgentEndpoint } from './agent-client.js';
import { AppWindows } from './app-windows.js';
import { EVENT_CHANNELS } from './bridge-api.js';
import { createIpcRouter, registerIpcHandlers } from './ipc-handlers.js';
import { ElectronLockWindowFactory } from './lock-window.js';
import { LockWindows, shouldShowLock } from './lock-windows.js';
import { BlockedNotifier } from './notifications.js';
import { PREFS_STORE_SCHEMA, Prefs } from './prefs.js';
import { AppTray } from './tray.js';
import { hardenWebContents } from './web-preferences.js';
import { trayModel, type TrayAction } from './tray-model.js';

/**
 * The Electron main process's composition root. It renders state the agent owns and forwards
 * input; it holds no security state of its own. The lock windows show whenever the agent's lock is
 * not `unlocked` and whenever the agent cannot be reached (fail closed: "保護サービスに接続できません").
 * `process.platform` and the environment are read here only.
 *
 * Started by the installer's auto-start entry with `--autostart` (tray only); started by hand it
 * also opens the status window. There is no "quit" in the tray: the app is part of the protection
 * (it shows the lock), and an administrator stops it by uninstalling.
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
    request: path.join(rendererDir, 'request.html'),
  };
  // Packaged: resources/icons/tray (electron-builder.yml extraResources); from a checkout: build/icons/tray.
  const trayIconDir = app.isPackaged ? path.join(process.resourcesPath, 'icons/tray') : path.join(import.meta.dirname, '../../build/icons/tray');
  const autostarted = process.argv.includes('--autostart');

  // No page may open windows or navigate away from the app's own files.
  app.on('web-contents-created', (_event, contents) => hardenWebContents(contents, log));
  // The app is a tray app: closing the status window (or unlocking) does not quit it.
  app.on('window-all-closed', () => undefined);

  const prefs = new Prefs(new ElectronStore({ name: 'preferences', schema: PREFS_STORE_SCHEMA, clearInvalidConfig: true }), app.getLocale());
  const agent = new AgentClient({ endpoint: defaultAgentEndpoint(process.platform, process.env), log });
  const windows = new AppWindows({ preload, pages: { status: pages.status, request: pages.request }, prefs, title: () => t('app.name', prefs.language), log });
  const stopIpc = registerIpcHandlers(
    ipcMain,
    createIpcRouter({
      agent,
      app: {
        openRequestForm: (deviceKey) => windows.openRequest(deviceKey),
        prefs: () => prefs.get(),
        setLanguage: (language) => prefs.setLanguage(language),
      },
      pages: { lock: pathToFileURL(pages.lock).href, status: pathToFileURL(pages.status).href, request: pathToFileURL(pages.request).href },
      log,
    }),
  );

  app.on('second-instance', () => {
    void windows.openStatus();
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
    let status: StatusView | null = null;
    const onTrayAction = (action: TrayAction): void => {
      const done = (what: string) => (error: unknown) => log(`[main] ${what} failed: ${String(error)}`);
      switch (action) {
        case 'open-status':
          windows.openStatus().catch(done('status window'));
          break;
        case 'request-device':
          windows.openRequest(null).catch(done('request form'));
          break;
        case 'lock-now':
          agent.lockNow().catch(done('lock now'));
          break;
        case 'about':
          void dialog.showMessageBox({ type: 'info', title: t('tray.about.title', prefs.language), message: t('app.name', prefs.language), detail: t('tray.about.detail', prefs.language).replace('{version}', app.getVersion()) });
          break;
      }
    };
    const trayInput = () => ({ connection: agent.state, lock: agent.lockView, status: agent.state === 'connected' ? status : null, locale: prefs.language });
    const tray = new AppTray({ iconDir: trayIconDir, platform: process.platform, onAction: onTrayAction, log }, trayModel(trayInput()));
    const notifier = new BlockedNotifier({
      show: (content) => {
        if (!Notification.isSupported()) return;
        const notification = new Notification({ title: content.title, body: content.body, silent: false });
        const key = content.requestDeviceKey;
        notification.on('click', () => {
          (key === null ? windows.openStatus() : windows.openRequest(key)).catch((error: unknown) => log(`[main] notification click: ${String(error)}`));
        });
        notification.show();
      },
      locale: () => prefs.language,
      nowMs: () => Date.now(),
      setTimer: (callback, ms) => setTimeout(callback, ms),
      clearTimer: (timer) => clearTimeout(timer as NodeJS.Timeout),
    });

    const update = (): void => {
      if (shouldShowLock(agent.state, agent.lockView)) lockWindows.show();
      else lockWindows.hide();
      tray.show(trayModel(trayInput()));
    };
    agent.onLockChanged((view) => {
      lockWindows.broadcast(EVENT_CHANNELS.lockChanged, view);
      windows.broadcast(EVENT_CHANNELS.lockChanged, view);
      update();
    });
    agent.onConnection((state) => {
      lockWindows.broadcast(EVENT_CHANNELS.connectionChanged, state);
      windows.broadcast(EVENT_CHANNELS.connectionChanged, state);
      if (state === 'connected') {
        // The first status after each (re)connect; later ones are pushed by the agent.
        agent.statusView().then((view) => {
          status = view;
          windows.broadcast(EVENT_CHANNELS.statusChanged, view);
          update();
        }).catch((error: unknown) => log(`[main] status not available: ${String(error)}`));
      }
      update();
    });
    agent.onStatusChanged((view) => {
      status = view;
      windows.broadcast(EVENT_CHANNELS.statusChanged, view);
      update();
    });
    agent.onBlocked((notice) => notifier.blocked(notice));
    prefs.onDidChange((value) => {
      lockWindows.broadcast(EVENT_CHANNELS.prefsChanged, value);
      windows.broadcast(EVENT_CHANNELS.prefsChanged, value);
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
      notifier.dispose();
      agent.dispose();
      lockWindows.dispose();
      windows.dispose();
      tray.dispose();
    });

    update(); // locked until the agent says otherwise
    agent.start();
    if (!autostarted) await windows.openStatus();
  }).catch((error: unknown) => {
    console.error('sekimori app failed to start', error);
    app.exit(1);
  });
}
