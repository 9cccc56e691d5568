import type * as UsbNamespace from 'usb';
import type { Logger } from 'winston';

type UsbModule = typeof UsbNamespace;

/**
 * Where hotplug events come from. Events only make the agent faster: correctness comes from
 * default-deny at the OS plus the periodic reconcile (a missed event never leaves a device usable).
 */
export interface UsbEventSource {
  /** Starts delivering attach/detach of device keys (see ObservedUsbDevice.key). */
  start(listener: (event: { kind: 'attach' | 'detach'; key: string }) => void): Promise<void>;
  dispose(): void;
}

/** No events at all: the reconcile pass alone (unsupported platforms, tests of the reconcile). */
export class NoUsbEvents implements UsbEventSource {
  start(): Promise<void> {
    return Promise.resolve();
  }
  dispose(): void {}
}

/**
 * Hotplug through node-usb (libusb). Loaded lazily: a machine without libusb or a USB bus still
 * runs the agent, on the reconcile pass alone, and says so in the log.
 */
export class NodeUsbEvents implements UsbEventSource {
  private detachAll: (() => void) | null = null;

  constructor(private readonly logger: Logger) {}

  async start(listener: (event: { kind: 'attach' | 'detach'; key: string }) => void): Promise<void> {
    let usb: UsbModule['usb'];
    try {
      usb = ((await import('usb'))).usb;
    } catch (error) {
      this.logger.warn('node-usb unavailable; relying on the reconcile pass alone', { error: error instanceof Error ? error.message : String(error) });
      return;
    }
    // Linux sysfs names a device `<bus>-<port>.<port>…`; libusb gives the same numbers.
    const keyOf = (device: { busNumber: number; portNumbers?: number[] }): string | null =>
      device.portNumbers && device.portNumbers.length > 0 ? `${device.busNumber}-${device.portNumbers.join('.')}` : null;
    const onAttach = (device: { busNumber: number; portNumbers?: number[] }): void => {
      const key = keyOf(device);
      if (key) listener({ kind: 'attach', key });
    };
    const onDetach = (device: { busNumber: number; portNumbers?: number[] }): void => {
      const key = keyOf(device);
      if (key) listener({ kind: 'detach', key });
    };
    try {
      usb.on('attach', onAttach);
      usb.on('detach', onDetach);
    } catch (error) {
      this.logger.warn('USB hotplug events unavailable; relying on the reconcile pass alone', { error: error instanceof Error ? error.message : String(error) });
      return;
    }
    this.detachAll = () => {
      usb.off('attach', onAttach);
      usb.off('detach', onDetach);
    };
  }

  dispose(): void {
    this.detachAll?.();
    this.detachAll = null;
  }
}
