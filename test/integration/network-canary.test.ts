import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { builtInPolicyDocument } from '../../agent/policy/profiles.js';
import { AGENT_CLI, killAll, startProcess, waitFor } from '../helpers/processes.js';
import { policySigningKey } from '../helpers/policy-signing.js';
import { readJournal } from '../helpers/agent-state.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
// A namespace the test creates: the "outside" network is only ever this namespace, never a real address.
const NS = 'skm-canary';
const HOST_IF = 'skm-cn0';
const NS_IF = 'skm-cn1';
const HOST_ADDRESS = '10.199.77.1';
const OUTSIDE = '10.199.77.2';

function ip(...args: string[]): boolean {
  try {
    execFileSync('ip', args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function teardown(): void {
  ip('link', 'del', HOST_IF);
  ip('netns', 'del', NS);
}

function setUp(): boolean {
  teardown();
  return (
    ip('netns', 'add', NS) &&
    ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF) &&
    ip('link', 'set', NS_IF, 'netns', NS) &&
    ip('addr', 'add', `${HOST_ADDRESS}/30`, 'dev', HOST_IF) &&
    ip('link', 'set', HOST_IF, 'up') &&
    ip('-n', NS, 'addr', 'add', `${OUTSIDE}/30`, 'dev', NS_IF) &&
    ip('-n', NS, 'link', 'set', NS_IF, 'up') &&
    ip('-n', NS, 'link', 'set', 'lo', 'up')
  );
}

// Needs root and network namespaces; elsewhere the test says why it skips.
const canCreate = process.platform === 'linux' && setUp();
teardown();

const listeners: ChildProcess[] = [];
afterEach(async () => {
  await killAll();
  for (const child of listeners.splice(0)) child.kill('SIGKILL');
  teardown();
});

describe('canary probe in the running agent', { timeout: 120_000 }, () => {
  it.skipIf(!canCreate)(`journals a reachable outside address as network.violation kind canary (namespace ${NS}${canCreate ? '' : ' — skipped: cannot create namespaces here'})`, async () => {
    expect(setUp()).toBe(true);
    // A listener inside the namespace, on the "outside" address; port 8081 has none.
    const listener = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', `require('net').createServer((s) => s.on('error', () => {})).listen(8080, '${OUTSIDE}', () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    listeners.push(listener);
    await new Promise<void>((resolve, reject) => {
      listener.stdout?.once('data', () => resolve());
      listener.once('exit', (code) => reject(new Error(`listener exited ${String(code)}`)));
    });

    const stateDir = await tempDir();
    await fs.chmod(stateDir, 0o700);
    const signer = policySigningKey();
    await fs.writeFile(path.join(stateDir, 'config.json'), JSON.stringify({ tier: 'mynumber', policyPublicKey: signer.publicKey, selfcheck: { startDelaySeconds: 3600 } }), { mode: 0o600 });
    const policy = {
      ...builtInPolicyDocument('mynumber'),
      version: 2,
      issuedAt: '2026-11-25T09:00:00+09:00',
      network: {
        allowedCidrs: ['10.20.0.0/16'],
        onViolation: 'alert' as const,
        allowedInterfaces: ['veth*', 'skm-*'],
        canary: { targets: [`${OUTSIDE}:8080`, `${OUTSIDE}:8081`], intervalSeconds: 10 },
      },
    };
    await fs.writeFile(path.join(stateDir, 'policy.json'), JSON.stringify(signer.sign(policy)), { mode: 0o600 });
    const agent = startProcess(AGENT_CLI, ['run', '--state', stateDir]);
    await agent.waitForOutput(/running; state in/);
    const violation = await waitFor(
      async () => (await readJournal(stateDir)).find((entry) => entry.type === 'network.violation' && entry.data.kind === 'canary') ?? null,
      60_000,
      'the canary violation',
    );
    expect(violation.data).toMatchObject({
      target: `${OUTSIDE}:8080`,
      remote: { address: OUTSIDE, port: 8080 },
      local: { address: HOST_ADDRESS },
      interface: HOST_IF,
      action: { type: 'alert', ok: true },
    });
    // One more network check and canary pass: nothing else about the outside address appears.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const journal = await readJournal(stateDir);
    expect(journal.some((entry) => entry.type === 'policy.applied' && entry.data.version === 2)).toBe(true);
    // The closed port is not a violation, and the probe's own connection is not reported a second time.
    const aboutOutside = journal.filter((entry) => entry.type === 'network.violation' && JSON.stringify(entry.data.remote ?? null).includes(`"${OUTSIDE}"`));
    expect(aboutOutside.map((entry) => entry.data.kind)).toEqual(['canary']);
    await agent.kill('SIGTERM');
  });
});
