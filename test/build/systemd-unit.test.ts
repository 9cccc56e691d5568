import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';
import { hasSystemdAnalyze, parseUnit, verifyUnit } from './systemd-helpers.js';

const tempDir = useTempDirs();
const UNIT = path.join(ROOT, 'build/linux/sekimori-agent.service');

async function stubRuntime(scratch: string): Promise<void> {
  await fs.mkdir(path.join(scratch, 'usr/lib/sekimori/dist/agent'), { recursive: true });
  await fs.writeFile(path.join(scratch, 'usr/lib/sekimori/node'), '#!/bin/sh\n', { mode: 0o755 });
  await fs.writeFile(path.join(scratch, 'usr/lib/sekimori/dist/agent/cli.js'), '');
}

describe('systemd unit (build/linux/sekimori-agent.service)', () => {
  it('runs the shipped Node runtime on the installed agent with the root-only state directory', async () => {
    const service = parseUnit(await fs.readFile(UNIT, 'utf8')).get('Service')!;
    expect(service.filter(([key]) => key === 'ExecStart').map(([, value]) => value)).toEqual([
      '/usr/lib/sekimori/node /usr/lib/sekimori/dist/agent/cli.js run --state /var/lib/sekimori',
    ]);
  });

  it('has the hardening of the issue (USBGuard-like) and the directories the agent needs', async () => {
    const unit = parseUnit(await fs.readFile(UNIT, 'utf8'));
    const service = Object.fromEntries(unit.get('Service')!.map(([key, value]) => [key, value]));
    expect(service).toMatchObject({
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      NoNewPrivileges: 'yes',
      UMask: '0077',
      Restart: 'on-failure',
      OOMScoreAdjust: '-1000',
      ReadWritePaths: '/var/lib/sekimori',
      StateDirectory: 'sekimori',
      StateDirectoryMode: '0700',
      RuntimeDirectory: 'sekimori',
      RuntimeDirectoryMode: '0755',
      PrivateTmp: 'yes',
      ProtectKernelModules: 'yes',
      ProtectControlGroups: 'yes',
    });
    expect(service.RestrictAddressFamilies!.split(/\s+/).sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
    expect(Object.fromEntries(unit.get('Install')!.map(([key, value]) => [key, value]))).toEqual({ WantedBy: 'multi-user.target' });
  });

  it('does not block what the agent must do: write /sys, open block devices, read /proc, run V8', async () => {
    const keys = parseUnit(await fs.readFile(UNIT, 'utf8')).get('Service')!.map(([key]) => key);
    for (const forbidden of ['ProtectKernelTunables', 'PrivateDevices', 'ProtectClock', 'DeviceAllow', 'DevicePolicy', 'ProtectProc', 'MemoryDenyWriteExecute', 'PrivateNetwork', 'User', 'DynamicUser', 'CapabilityBoundingSet', 'SystemCallFilter']) {
      expect(keys, forbidden).not.toContain(forbidden);
    }
  });

  it('explains every directive in a comment', async () => {
    const unexplained = [...parseUnit(await fs.readFile(UNIT, 'utf8')).values()].flat().filter(([key, , explained]) => !explained && key !== 'Description' && key !== 'Documentation' && key !== 'Type' && key !== 'WantedBy');
    expect(unexplained.map(([key]) => key)).toEqual([]);
  });

  it.skipIf(!hasSystemdAnalyze)('passes systemd-analyze verify (skipped without apt systemd)', async () => {
    const scratch = await tempDir();
    await stubRuntime(scratch);
    expect(await verifyUnit(scratch, UNIT)).toBe('');
  });

  it.skipIf(!hasSystemdAnalyze)('systemd-analyze verify reports a misspelt directive and a missing runtime (the check can fail; skipped without apt systemd)', async () => {
    const scratch = await tempDir();
    const broken = path.join(scratch, 'broken.service');
    await fs.writeFile(broken, (await fs.readFile(UNIT, 'utf8')).replace('ProtectSystem=strict', 'ProtectSytem=strict'));
    const output = await verifyUnit(scratch, broken);
    expect(output).toMatch(/Unknown key .*ProtectSytem/);
    expect(output).toMatch(/\/usr\/lib\/sekimori\/node is not executable/);
  });
});
