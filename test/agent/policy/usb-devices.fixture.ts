import type { UsbDeviceIdentity } from '../../../shared/usb-rules/index.js';

/** A device identity with harmless defaults; tests override what they need. */
export function usbDevice(overrides: Partial<UsbDeviceIdentity> = {}): UsbDeviceIdentity {
  return {
    vendorId: '1234',
    productId: '5678',
    serial: 'SN0001',
    name: 'Test device',
    hash: '',
    parentHash: '',
    viaPort: '1-2',
    connectType: 'hotplug',
    interfaces: [],
    ...overrides,
  };
}

/** The devices the tier profiles are judged on (interface lists as real devices report them). */
export const PROFILE_DEVICES = {
  stick: usbDevice({ vendorId: '0930', productId: '6545', name: 'TransMemory', interfaces: ['08:06:50'] }),
  'Android phone (MTP)': usbDevice({ vendorId: '18d1', productId: '4ee1', name: 'Pixel 7', interfaces: ['ff:ff:00', 'ff:42:01'], interfaceNames: ['MTP', 'ADB Interface'] }),
  'iPhone (PTP)': usbDevice({ vendorId: '05ac', productId: '12a8', name: 'iPhone', interfaces: ['06:01:01', 'ff:fe:02', 'ff:fd:01'] }),
  'USB Ethernet (CDC ECM)': usbDevice({ vendorId: '0b95', productId: '1790', interfaces: ['02:06:00', '0a:00:00', '0a:00:00'] }),
  'RNDIS tethering': usbDevice({ vendorId: '04e8', productId: '6863', interfaces: ['e0:01:03', '0a:00:00'] }),
  'Bluetooth dongle': usbDevice({ vendorId: '0a12', productId: '0001', serial: '', interfaces: ['e0:01:01', 'e0:01:01', 'e0:01:01'] }),
  keyboard: usbDevice({ vendorId: '046d', productId: 'c31c', serial: '', interfaces: ['03:01:01', '03:00:00'] }),
  mouse: usbDevice({ vendorId: '046d', productId: 'c077', serial: '', interfaces: ['03:01:02'] }),
  'BadUSB (storage + keyboard)': usbDevice({ vendorId: '0930', productId: '6545', interfaces: ['08:06:50', '03:01:01'] }),
  printer: usbDevice({ vendorId: '04a9', productId: '1827', interfaces: ['07:01:02'] }),
  hub: usbDevice({ vendorId: '05e3', productId: '0610', serial: '', interfaces: ['09:00:01', '09:00:02'] }),
  'IC card reader': usbDevice({ vendorId: '054c', productId: '06c3', interfaces: ['0b:00:00'] }),
  webcam: usbDevice({ vendorId: '046d', productId: '085e', interfaces: ['0e:01:00', '0e:02:00', '0e:02:00', '01:01:00', '01:02:00'] }),
  'device with no interfaces': usbDevice({ vendorId: 'dead', productId: 'beef', interfaces: [] }),
} as const;
