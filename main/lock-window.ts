import { BrowserWindow } from 'electron';
import type { DisplayLike, LockWindowFactory, LockWindowHandle, Rect } from './lock-windows.js';
import { HARDENED_WEB_PREFERENCES } from './web-preferences.js';

/**
 * The Electron side of a lock window, kept thin (the bookkeeping is in `lock-windows.ts`): a
 * frameless window covering one display at the `screen-saver` level, content protection on, that
 * refuses to close (only `destroy` ends it) and reports when its page dies.
 */
export class ElectronLockWindowFactory implements LockWindowFactory {
  constructor(private readonly options: { readonly page: string; readonly preload: string; readonly log: (message: string) => void }) {}

  create(display: DisplayLike, onGone: () => void): LockWindowHandle {
    const window = new BrowserWindow({
      ...display.bounds,
      show: false,
      frame: false,
      resizable: false,
      movable: false,
      minimizable: false,
      maximizable: false,
      closable: false,
      fullscreenable: false,
      skipTaskbar: true,
      alwaysOnTop: true,
      focusable: true,
      backgroundColor: '#102a43',
      webPreferences: { ...HARDENED_WEB_PREFERENCES, preload: this.options.preload },
    });
    window.setContentProtection(true);
    window.setAlwaysOnTop(true, 'screen-saver');
    window.setVisibleOnAllWorkspaces(true, { visibleOnFullScreen: true });
    // While the lock shows, nothing closes it but the controller (which uses destroy()).
    window.on('close', (event) => event.preventDefault());
    window.on('closed', onGone);
    window.webContents.on('render-process-gone', (_event, details) => {
      this.options.log(`[lock-window] page gone (${details.reason}); replacing it`);
      if (!window.isDestroyed()) window.destroy();
    });
    window.loadFile(this.options.page).catch((error: unknown) => {
      this.options.log(`[lock-window] could not load the lock page: ${error instanceof Error ? error.message : String(error)}`);
    });

    return {
      reassert(bounds: Rect) {
        if (window.isDestroyed()) return;
        window.setBounds(bounds);
        window.setAlwaysOnTop(true, 'screen-saver');
        if (!window.isVisible()) window.showInactive();
        window.moveTop();
      },
      focus() {
        if (!window.isDestroyed()) window.focus();
      },
      send(channel, payload) {
        if (!window.isDestroyed()) window.webContents.send(channel, payload);
      },
      destroy() {
        window.removeListener('closed', onGone);
        if (!window.isDestroyed()) window.destroy();
      },
      isDestroyed: () => window.isDestroyed(),
    };
  }
}
