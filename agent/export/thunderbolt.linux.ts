// Thunderbolt / USB4 devices as the kernel's thunderbolt bus shows them
// (`/sys/bus/thunderbolt/devices`): a device (`0-1`, `0-301`) tunnels PCIe only once `authorized`
// is written, when the domain's `security` level asks for approval (`user`, `secure`). Levels
// `none` authorise everything in firmware; `dponly`, `usbonly`, `nopcie` never tunnel PCIe.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface ThunderboltDevice {
  /** `0-1`, `0-301`. */
  readonly name: string;
  readonly domain: string;
  /** `authorized`: 0 no PCIe tunnel, 1 or 2 authorised; null when the attribute is unreadable. */
  readonly authorized: string | null;
  readonly vendorName: string;
  readonly deviceName: string;
  readonly uniqueId: string;
  /** The domain's `security` level (`none`, `user`, `secure`, `dponly`, `usbonly`, `nopcie`). */
  readonly security: string;
  /** The domain supports writing 0 to `authorized` (`deauthorization` = 1). */
  readonly canDeauthorize: boolean;
}

const DEVICE = /^(\d+)-[0-9a-f]+$/;

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Devices on the thunderbolt bus under `sysfsRoot`, host routers (`N-0`) excluded (synchronous reads: sysfs). */
export function listThunderboltDevices(sysfsRoot: string): ThunderboltDevice[] {
  const busDir = path.join(sysfsRoot, 'bus', 'thunderbolt', 'devices');
  let names: string[];
  try {
    names = readdirSync(busDir);
  } catch {
    return [];
  }
  const devices: ThunderboltDevice[] = [];
  for (const name of names.sort()) {
    const match = DEVICE.exec(name);
    if (!match || name.endsWith('-0')) continue;
    const domain = `domain${match[1] ?? '0'}`;
    const dir = path.join(busDir, name);
    devices.push({
      name,
      domain,
      authorized: readText(path.join(dir, 'authorized')),
      vendorName: (readText(path.join(dir, 'vendor_name'))) ?? '',
      deviceName: (readText(path.join(dir, 'device_name'))) ?? '',
      uniqueId: (readText(path.join(dir, 'unique_id'))) ?? '',
      security: (readText(path.join(busDir, domain, 'security'))) ?? 'unknown',
      canDeauthorize: (readText(path.join(busDir, domain, 'deauthorization'))) === '1',
    });
  }
  return devices;
}
