import path from 'node:path';
import { Menu, Tray, nativeImage } from 'electron';
import { trayIconFile, type TrayAction, type TrayModel } from './tray-model.js';

/**
 * The thin Electron part of the tray: it shows a `TrayModel` (decided in tray-model.ts, where it
 * is tested) and forwards menu clicks. It rebuilds the menu only when the model changed.
 */
export class AppTray {
  private readonly tray: Tray;
  private shown = '';

  constructor(
    private readonly options: { iconDir: string; platform: NodeJS.Platform; onAction: (action: TrayAction) => void; log: (message: string) => void },
    initial: TrayModel,
  ) {
    this.tray = new Tray(this.icon(initial));
    // A left click opens the status window (Windows, most Linux trays); the menu is on the right click.
    this.tray.on('click', () => options.onAction('open-status'));
    this.show(initial);
  }

  show(model: TrayModel): void {
    const key = JSON.stringify(model);
    if (key === this.shown) return;
    this.shown = key;
    this.tray.setImage(this.icon(model));
    this.tray.setToolTip(model.tooltip);
    this.tray.setContextMenu(
      Menu.buildFromTemplate(
        model.menu.flatMap((item) => [
          ...(item.action === 'about' ? [{ type: 'separator' as const }] : []),
          { label: item.label, enabled: item.enabled, click: () => this.options.onAction(item.action) },
        ]),
      ),
    );
  }

  dispose(): void {
    this.tray.destroy();
  }

  private icon(model: TrayModel): Electron.NativeImage {
    const file = path.join(this.options.iconDir, trayIconFile(model.state, this.options.platform));
    const image = nativeImage.createFromPath(file);
    if (image.isEmpty()) this.options.log(`[tray] icon missing: ${file}`);
    return image;
  }
}
