import fs from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { builtInPolicyDocument } from '../../agent/policy/profiles.js';
import type { FakeSysfs } from '../fakes/fake-sysfs.js';
import { AGENT_CLI, adminApi, agentStatus, enrollmentToken, startProcess, startServer, waitFor, writeFastAgentConfig, type Proc } from './processes.js';

/**
 * A managed My Number terminal for end-to-end tests: a real server with the tier's policy
 * published, and a real agent process enforcing on a kernel-shaped sysfs tree, enrolled, with its
 * lock covering `consoleUser` and its socket where session users can reach it.
 */
export interface ManagedTerminal {
  readonly server: { readonly proc: Proc; readonly url: string };
  readonly dataDir: string;
  readonly stateDir: string;
  readonly socketPath: string;
  readonly agent: Proc;
  readonly deviceId: string;
  /** The admin API as an administrator (session + CSRF handled by `adminApi`). */
  readonly admin: (method: string, route: string, body?: unknown) => Promise<{ status: number; json: Record<string, unknown> }>;
}

export async function startManagedTerminal(options: { sysfs: FakeSysfs; dataDir: string; base: string; consoleUser?: string }): Promise<ManagedTerminal> {
  const { sysfs, dataDir, base } = options;
  // Session users (the outsider in some tests) must reach the socket below `base`.
  await fs.chmod(base, 0o755);
  const stateDir = path.join(base, 'state');
  const socketPath = path.join(base, 'run', 'agent.sock');
  const server = await startServer(dataDir);
  const admin = (method: string, route: string, body?: unknown) => adminApi(dataDir, server.url, method, route, body);
  // The tier's policy must exist on the server before an approval can become an exception.
  expect((await admin('PUT', '/api/v1/admin/policies/mynumber', builtInPolicyDocument('mynumber'))).status).toBeLessThan(300);
  await writeFastAgentConfig(stateDir, {
    serverUrl: server.url,
    enrollToken: await enrollmentToken(dataDir),
    tier: 'mynumber',
    usb: { reconcileMs: 200 },
    lock: { consoleUser: options.consoleUser ?? 'tanaka' },
    ipc: { socketPath },
  });
  const agent = startProcess(AGENT_CLI, ['run', '--state', stateDir, '--sysfs-root', sysfs.root]);
  await agent.waitForOutput(/device control: enforced/);
  const deviceId = await waitFor(async () => (await agentStatus(stateDir).catch(() => null))?.deviceId ?? null, 20_000, 'enrolment');
  return { server, dataDir, stateDir, socketPath, agent, deviceId, admin };
}
