import fs from 'node:fs/promises';
import path from 'node:path';
import type { Enforcement } from '../../shared/api.js';

export interface EnforcementProbeInput {
  readonly platform: NodeJS.Platform;
  /** Effective uid on POSIX, null on Windows. */
  readonly uid: number | null;
  /** Root of the sysfs tree (`/sys`; a fake tree in tests). */
  readonly sysfsRoot: string;
  /** Whether this build carries a device enforcer for the platform. */
  readonly enforcerAvailable: boolean;
}

/**
 * Says honestly whether this agent can control devices here. Anything short of "privileged, on a
 * platform with an enforcer, with a USB bus to control" is `unenforced`, with the reason: the
 * server and the admins must never believe a terminal is protected when it is not.
 */
export async function probeEnforcement(input: EnforcementProbeInput): Promise<Enforcement> {
  if (input.platform !== 'linux' && input.platform !== 'win32') return { state: 'unenforced', reason: 'unsupported-platform' };
  if (input.platform === 'linux' && input.uid !== 0) return { state: 'unenforced', reason: 'not-root' };
  if (input.platform === 'linux' && !(await hasUsbBus(input.sysfsRoot))) return { state: 'unenforced', reason: 'no-usb-bus' };
  if (!input.enforcerAvailable) return { state: 'unenforced', reason: 'no-enforcer' };
  return { state: 'enforced' };
}

async function hasUsbBus(sysfsRoot: string): Promise<boolean> {
  try {
    const names = await fs.readdir(path.join(sysfsRoot, 'bus', 'usb', 'devices'));
    return names.some((name) => /^usb\d+$/.test(name));
  } catch {
    return false;
  }
}

/** One line for a person starting the agent, saying what the state means. */
export function describeEnforcement(enforcement: Enforcement): string {
  if (enforcement.state === 'enforced') {
    return enforcement.verifiedOnRealOs === false ? 'device control: enforced (this platform\'s enforcer is not yet verified on a real OS)' : 'device control: enforced';
  }
  const reasons: Record<string, string> = {
    'not-root': 'running as an ordinary user, so it cannot control devices',
    'no-usb-bus': 'this machine has no USB bus to control',
    'unsupported-platform': 'this platform has no device enforcer',
    'no-enforcer': 'this build has no device enforcer yet',
  };
  const why = reasons[enforcement.reason ?? ''] ?? enforcement.reason ?? 'unknown reason';
  return `device control: NOT enforced — ${why}; journaling and reporting continue, and the server is told "unenforced".`;
}
