import { BrowserWindow, screen } from 'electron';
import type { Prefs } from './prefs.js';
import { HARDENED_WEB_PREFERENCES } from './web-preferences.js';

/**
 * The status window and the request form: one of each at most (opening again focuses it), each
 * with the same hardened web preferences as the lock windows, content protection (the status
 * lists device names and requests), and the status window where the staff member left it.
 */


export interface AppWindowsOptions {
  readonly preload: string;
  readonly pages: { readonly status: string; readonly request: string };
  readonly prefs: Prefs;
  readonly title: () => string;
  readonly log: (message: string) => void;
}

export class AppWindows {
  private status: BrowserWindow | null = null;
  private request: BrowserWindow | null = null;

  constructor(private readonly options: AppWindowsOptions) {}

  async openStatus(): Promise<void> {
    if (this.status && !this.status.isDestroyed()) {
      this.status.show();
      this.status.focus();
      return;
    }
    const areas = screen.getAllDisplays().map((display) => display.workArea);
    const bounds = this.options.prefs.statusWindowBounds(areas);
    const window = new BrowserWindow({
      width: bounds?.width ?? 560,
      height: bounds?.height ?? 640,
      ...(bounds ? { x: bounds.x, y: bounds.y } : {}),
      title: this.options.title(),
      show: false,
      webPreferences: { ...HARDENED_WEB_PREFERENCES, preload: this.options.preload },
    });
    window.setContentProtection(true);
    window.setMenuBarVisibility(false);
    const save = (): void => {
      if (!window.isDestroyed() && !window.isMinimized()) this.options.prefs.saveStatusWindowBounds(window.getBounds());
    };
    window.on('moved', save);
    window.on('resized', save);
    window.on('close', save);
    window.on('closed', () => {
      if (this.status === window) this.status = null;
    });
    window.once('ready-to-show', () => window.show());
    this.status = window;
    await window.loadFile(this.options.pages.status);
  }

  /** Opens the request form; `deviceKey` preselects a device (passed in the URL fragment, which the IPC sender check ignores). */
  async openRequest(deviceKey: string | null): Promise<void> {
    const hash = deviceKey === null ? '' : `device=${encodeURIComponent(deviceKey)}`;
    if (this.request && !this.request.isDestroyed()) {
      await this.request.loadFile(this.options.pages.request, { hash });
      this.request.show();
      this.request.focus();
      return;
    }
    const window = new BrowserWindow({
      width: 600,
      height: 720,
      title: this.options.title(),
      show: false,
      webPreferences: { ...HARDENED_WEB_PREFERENCES, preload: this.options.preload },
    });
    window.setContentProtection(true);
    window.setMenuBarVisibility(false);
    window.on('closed', () => {
      if (this.request === window) this.request = null;
    });
    window.once('ready-to-show', () => window.show());
    this.request = window;
    await window.loadFile(this.options.pages.request, { hash });
  }

  /** Sends an event to every open app window (not the lock windows: they have their own broadcast). */
  broadcast(channel: string, payload: unknown): void {
    for (const window of [this.status, this.request]) {
      if (window && !window.isDestroyed()) window.webContents.send(channel, payload);
    }
  }

  dispose(): void {
    for (const window of [this.status, this.request]) if (window && !window.isDestroyed()) window.destroy();
    this.status = null;
    this.request = null;
  }
}
