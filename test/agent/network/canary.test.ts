import net from 'node:net';
import path from 'node:path';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCanaryTarget, parseNetworkSettings, settingsFromPolicy, type NetworkSettings } from '../../../agent/network/network-settings.js';
import { NetworkWatcher, tcpProbe } from '../../../agent/network/network-watcher.js';
import { ProcNetReader } from '../../../agent/network/proc-net.js';
import { NetworkPolicySchema } from '../../../shared/policy.js';
import { FakeCommandRunner } from '../../fakes/fake-command-runner.js';
import { useJournals } from '../../helpers/journals.js';
import { useTempDirs } from '../../helpers/temp-dir.js';
import { FakeProc, ROUTE_HEADER } from './fake-proc.js';

const tempDir = useTempDirs();
const openJournal = useJournals();
const silent = winston.createLogger({ silent: true });
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- journal data is free-form JSON
type LooseEntry = { type: string; data: Record<string, any> };

/** A listener on a loopback address the test treats as outside the tier (127.0.0.2); port 0 = any free one. */
async function listenOn(host: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((socket) => socket.on('error', () => undefined));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  cleanup.push(close);
  return { port: (server.address() as net.AddressInfo).port, close };
}

/** A port on 127.0.0.2 that nothing listens on (a listener opened and closed at once). */
async function closedPort(): Promise<number> {
  const listener = await listenOn('127.0.0.2');
  await listener.close();
  return listener.port;
}

function settings(targets: string[], onViolation: 'alert' | 'alert-lock' | 'alert-disable' = 'alert'): NetworkSettings {
  const parsed = parseNetworkSettings({ allowedCidrs: ['10.20.0.0/16'], onViolation, canary: { targets, intervalSeconds: 60 } });
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}

async function rig(initial: NetworkSettings) {
  const dir = await tempDir();
  const fake = await FakeProc.create(path.join(dir, 'root'));
  await fake.addInterface({ name: 'eth0' });
  await fake.setTable('route', ROUTE_HEADER, ['eth0\t0000140A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0']);
  const { journal } = await openJournal(path.join(dir, 'journal.jsonl'));
  const locks: string[] = [];
  let current = initial;
  const watcher = new NetworkWatcher({
    reader: new ProcNetReader({ procRoot: fake.procRoot, sysRoot: fake.sysRoot, littleEndian: true }),
    journal,
    logger: silent,
    settings: () => current,
    commands: new FakeCommandRunner(),
    lock: (reason) => {
      locks.push(reason);
    },
    intervalMs: 60_000,
    canaryTimeoutMs: 2_000,
  });
  cleanup.push(() => watcher.dispose());
  const violations = async () => ((await journal.read(1, 1000)) as LooseEntry[]).filter((entry) => entry.type === 'network.violation');
  return { watcher, locks, violations, setSettings: (next: NetworkSettings) => (current = next) };
}

describe('canary probe (loopback addresses the test treats as outside the tier)', () => {
  it('is quiet while every canary target is unreachable', async () => {
    const { watcher, violations } = await rig(settings([`127.0.0.2:${await closedPort()}`]));
    expect(await watcher.probeCanaries()).toEqual({ probed: 1, reachable: 0, violations: 0 });
    expect(await violations()).toEqual([]);
  });

  it('journals a reachable canary as a network.violation of kind canary, once while it stays reachable, again after a gap', async () => {
    const listener = await listenOn('127.0.0.2');
    const target = `127.0.0.2:${listener.port}`;
    const { watcher, violations, setSettings } = await rig(settings([target, `127.0.0.2:${await closedPort()}`]));
    expect(await watcher.probeCanaries()).toEqual({ probed: 2, reachable: 1, violations: 1 });
    const [first] = await violations();
    expect(first?.data).toMatchObject({
      kind: 'canary',
      target,
      remote: { address: '127.0.0.2', port: listener.port },
      local: { address: '127.0.0.1' },
      interface: 'lo',
      policy: { onViolation: 'alert', audit: false },
      action: { type: 'alert', ok: true },
    });
    expect(await watcher.probeCanaries()).toMatchObject({ reachable: 1, violations: 0 });
    await listener.close();
    expect(await watcher.probeCanaries()).toMatchObject({ reachable: 0, violations: 0 });
    const again = await listenOn('127.0.0.2');
    setSettings(settings([`127.0.0.2:${again.port}`]));
    expect(await watcher.probeCanaries()).toMatchObject({ reachable: 1, violations: 1 });
    expect((await violations()).length).toBe(2);
  });

  it('runs the policy action: alert-lock locks the terminal', async () => {
    const listener = await listenOn('127.0.0.2');
    const { watcher, locks, violations } = await rig(settings([`127.0.0.2:${listener.port}`], 'alert-lock'));
    await watcher.probeCanaries();
    expect(locks).toEqual(['network.violation: canary']);
    expect((await violations())[0]?.data.action).toEqual({ type: 'lock', ok: true });
  });

  it('probes nothing without a canary section', async () => {
    const plain = parseNetworkSettings({ allowedCidrs: [], onViolation: 'alert' });
    if (!plain.ok) throw new Error(plain.error.message);
    const { watcher } = await rig(plain.value);
    expect(await watcher.probeCanaries()).toEqual({ probed: 0, reachable: 0, violations: 0 });
  });

  it('tcpProbe reports refusals and timeouts as unreachable and leaves no socket open', async () => {
    const refused = await tcpProbe('127.0.0.2', await closedPort(), 2000);
    expect(refused).toEqual({ connected: false, error: 'ECONNREFUSED' });
    const listener = await listenOn('127.0.0.2');
    expect(await tcpProbe('127.0.0.2', listener.port, 2000)).toMatchObject({ connected: true, remoteAddress: '127.0.0.2', remotePort: listener.port });
  });
});

describe('canary settings', () => {
  it('reads host:port targets, IPv6 in brackets, and refuses anything else', () => {
    expect(parseCanaryTarget('203.0.113.10:443')).toEqual({ text: '203.0.113.10:443', host: '203.0.113.10', port: 443 });
    expect(parseCanaryTarget('[2001:db8::1]:80')).toEqual({ text: '[2001:db8::1]:80', host: '2001:db8::1', port: 80 });
    expect(parseCanaryTarget('www.example.jp:443')).toMatchObject({ host: 'www.example.jp', port: 443 });
    for (const bad of ['203.0.113.10', '203.0.113.10:0', '203.0.113.10:65536', 'host:443; rm -rf /', '2001:db8::1:80']) expect(parseCanaryTarget(bad)).toBeNull();
  });

  it('is an optional, strict part of the policy network section', () => {
    const base = { allowedCidrs: ['10.20.0.0/16'], onViolation: 'alert' };
    expect(NetworkPolicySchema.safeParse({ ...base, canary: { targets: ['203.0.113.10:443'], intervalSeconds: 300 } }).success).toBe(true);
    expect(NetworkPolicySchema.safeParse({ ...base, canary: { targets: [], intervalSeconds: 300 } }).success).toBe(false);
    expect(NetworkPolicySchema.safeParse({ ...base, canary: { targets: ['203.0.113.10:443'], intervalSeconds: 1 } }).success).toBe(false);
    expect(NetworkPolicySchema.safeParse({ ...base, canary: { targets: ['203.0.113.10:443'], intervalSeconds: 300, extra: true } }).success).toBe(false);
    const settings = settingsFromPolicy({ ...base, onViolation: 'alert', canary: { targets: ['203.0.113.10:443'], intervalSeconds: 300 } }, 'enforce');
    expect(settings.ok && settings.value.canary).toEqual({ targets: [{ text: '203.0.113.10:443', host: '203.0.113.10', port: 443 }], intervalMs: 300_000 });
  });
});
