import { EventEmitter } from 'node:events';
import winston from 'winston';
import { describe, expect, it, vi } from 'vitest';

// node-usb (libusb) is the OS boundary here: no USB bus exists on the build machines, so its
// hotplug emitter is replaced by a plain EventEmitter that emits what libusb's would.
const fakeUsb = new EventEmitter();
vi.mock('usb', () => ({ usb: fakeUsb }));

const { NodeUsbEvents } = await import('../../../agent/usb/usb-events.js');
const silent = winston.createLogger({ silent: true });

describe('NodeUsbEvents (node-usb hotplug)', () => {
  it('names attached and detached devices the way sysfs does: bus-port.port', async () => {
    const events = new NodeUsbEvents(silent);
    const seen: { kind: string; key: string }[] = [];
    await events.start((event) => seen.push(event));
    fakeUsb.emit('attach', { busNumber: 1, portNumbers: [2] });
    fakeUsb.emit('attach', { busNumber: 3, portNumbers: [1, 4, 2] });
    fakeUsb.emit('detach', { busNumber: 1, portNumbers: [2] });
    // A root hub has no port numbers: not a device that policy decides.
    fakeUsb.emit('attach', { busNumber: 2, portNumbers: [] });
    expect(seen).toEqual([
      { kind: 'attach', key: '1-2' },
      { kind: 'attach', key: '3-1.4.2' },
      { kind: 'detach', key: '1-2' },
    ]);
    events.dispose();
    fakeUsb.emit('attach', { busNumber: 1, portNumbers: [5] });
    expect(seen).toHaveLength(3);
    expect(fakeUsb.listenerCount('attach')).toBe(0);
  });
});
