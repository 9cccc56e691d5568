import type { Logger } from 'winston';
import { NodeCommandRunner } from '../platform/command-runner.js';
import type { UsbDeviceSource, UsbEnforcer } from './usb-device.js';
import { LinuxUsbDeviceSource } from './usb-device-source.linux.js';
import { LinuxUsbEnforcer } from './usb-enforcer.linux.js';
import { NodeUsbEvents, type UsbEventSource } from './usb-events.js';

export interface UsbAdapters {
  readonly source: UsbDeviceSource;
  readonly enforcer: UsbEnforcer;
  readonly events: UsbEventSource;
}

/**
 * Picks the device source, enforcer and hotplug events for this platform (the composition root
 * passes `process.platform`). Null where this build cannot both see and control devices: the
 * agent then reports itself `unenforced` instead of pretending. Windows has an enforcer tested at
 * its command/registry boundary (`usb-enforcer.win32.ts`) but no device source yet, so it is null
 * there too until one lands.
 */
export function usbAdapters(
  platform: NodeJS.Platform,
  sysfsRoot: string,
  logger: Logger,
  onUnreadable: (key: string, reason: string) => void,
): UsbAdapters | null {
  switch (platform) {
    case 'linux': {
      const source = new LinuxUsbDeviceSource({
        sysfsRoot,
        onSkip: (skipped) => {
          logger.warn('unreadable USB device; blocking it', { skipped });
          onUnreadable(skipped.key, skipped.reason);
        },
      });
      return { source, enforcer: new LinuxUsbEnforcer({ sysfsRoot, commands: new NodeCommandRunner() }), events: new NodeUsbEvents(logger) };
    }
    default:
      return null;
  }
}
