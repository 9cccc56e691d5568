import { z } from 'zod';
import { readJsonFile, writeJsonFileAtomic } from '../state.js';
import type { ObservedUsbDevice } from './usb-device.js';

const AdoptedSchema = z.strictObject({
  adoptedAt: z.string(),
  devices: z.array(z.strictObject({ hash: z.string().min(1), id: z.string(), name: z.string() })).max(64),
});

/** Only pure input devices qualify: every interface HID (03). A stick that is also a keyboard never does. */
function isPureInputDevice(device: ObservedUsbDevice): boolean {
  const { interfaces, hash } = device.identity;
  return hash !== '' && interfaces.length > 0 && interfaces.every((code) => code.startsWith('03:'));
}

/**
 * "Adopt present input devices" (DESIGN.md §4): on the agent's first run, the keyboards and mice
 * already plugged in are remembered (by USBGuard device hash) and stay usable even under a policy
 * that forgets to allow HID — enforcing default-deny must never lock staff out of their own PC.
 * Later devices get no such grace; an adopted device is still refused by a `reject` rule.
 */
export class InputAdoption {
  private constructor(
    private readonly file: string,
    private hashes: Set<string> | null,
  ) {}

  static async load(file: string): Promise<InputAdoption> {
    const stored = await readJsonFile(file, AdoptedSchema);
    return new InputAdoption(file, stored ? new Set(stored.devices.map((device) => device.hash)) : null);
  }

  /** True until the first run has adopted (the file does not exist yet). */
  get firstRun(): boolean {
    return this.hashes === null;
  }

  /** On the first run, adopts the pure input devices in `present` and returns them; later a no-op. */
  async adoptFirstRun(present: readonly ObservedUsbDevice[]): Promise<ObservedUsbDevice[]> {
    if (this.hashes !== null) return [];
    const adopted = present.filter(isPureInputDevice).slice(0, 64);
    await writeJsonFileAtomic(this.file, {
      adoptedAt: new Date().toISOString(),
      devices: adopted.map((device) => ({ hash: device.identity.hash, id: `${device.identity.vendorId}:${device.identity.productId}`, name: device.identity.name })),
    });
    this.hashes = new Set(adopted.map((device) => device.identity.hash));
    return adopted;
  }

  isAdopted(device: ObservedUsbDevice): boolean {
    return this.hashes !== null && isPureInputDevice(device) && this.hashes.has(device.identity.hash);
  }
}
