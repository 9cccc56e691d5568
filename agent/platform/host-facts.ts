import fs from 'node:fs/promises';
import os from 'node:os';
import type { HostFacts } from '../../shared/api.js';

/** Reads this machine's identity for enrolment. Clones share the hardware id; the server still gives each enrolment its own device id. */
export async function readHostFacts(platform: NodeJS.Platform, agentVersion: string): Promise<HostFacts> {
  return {
    hostname: os.hostname().slice(0, 255) || 'unknown',
    os: `${platform} ${os.release()}`.slice(0, 100),
    arch: os.arch(),
    hardwareId: (await machineId(platform)).slice(0, 200),
    agentVersion,
  };
}

async function machineId(platform: NodeJS.Platform): Promise<string> {
  if (platform === 'linux') {
    for (const file of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
      try {
        const id = (await fs.readFile(file, 'utf8')).trim();
        if (id) return id;
      } catch {
        // try the next source
      }
    }
  }
  // Windows' MachineGuid and macOS' IOPlatformUUID come with their platform adapters (issue 6/3).
  return `host:${os.hostname()}`;
}
