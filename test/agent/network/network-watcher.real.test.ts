import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import { parseNetworkSettings, type NetworkSettingsInput } from '../../../agent/network/network-settings.js';
import { NetworkWatcher } from '../../../agent/network/network-watcher.js';
import { ProcNetReader } from '../../../agent/network/proc-net.js';
import { NodeCommandRunner } from '../../../agent/platform/command-runner.js';
import { useTempDirs } from '../../helpers/temp-dir.js';
import type { Journal } from '../../../agent/journal/journal.js';
import { useJournals } from '../../helpers/journals.js';

/** Against the REAL /proc/net and /sys/class/net of this machine (Linux only). */
const tempDir = useTempDirs();
const openJournal = useJournals();
const silent = winston.createLogger({ silent: true });
const linux = process.platform === 'linux';
const INTERVAL_MS = 200;

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function realWatcher(input: NetworkSettingsInput): Promise<{ watcher: NetworkWatcher; journal: Journal }> {
  const parsed = parseNetworkSettings(input);
  if (!parsed.ok) throw new Error(parsed.error.message);
  const { journal } = await openJournal(path.join(await tempDir(), 'journal.jsonl'));
  const watcher = new NetworkWatcher({
    reader: new ProcNetReader(),
    journal,
    logger: silent,
    settings: () => parsed.value,
    commands: new NodeCommandRunner(),
    lock: () => undefined,
    intervalMs: INTERVAL_MS,
  });
  cleanups.push(() => watcher.dispose());
  return { watcher, journal };
}

/** Waits for the timer's checks (not a direct call) until `predicate` holds; fails after `ms`. */
async function untilJournaled(watcher: NetworkWatcher, journal: Journal, predicate: (data: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = (await journal.read(1, 10_000)).find((entry) => entry.type === 'network.violation' && predicate(entry.data as Record<string, unknown>));
    if (found) return found.data;
    if (Date.now() > deadline) throw new Error(`no matching violation within ${ms} ms`);
    await watcher.nextCheck();
  }
}

/** The first virtual interface type this kernel lets us create, or null. */
function makeTestInterface(name: string): string | null {
  const attempts: [string, string[]][] = [
    ['dummy', ['link', 'add', name, 'type', 'dummy']],
    ['veth', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]],
  ];
  for (const [type, args] of attempts) {
    try {
      execFileSync('ip', args, { stdio: 'ignore' });
      return type;
    } catch {
      // try the next type
    }
  }
  return null;
}

const canCreateInterface = ((): string | null => {
  if (!linux) return null;
  const probe = 'sekimori-probe';
  const type = makeTestInterface(probe);
  if (type !== null) execFileSync('ip', ['link', 'del', probe], { stdio: 'ignore' });
  return type;
})();

describe.runIf(linux)('NetworkWatcher on the real /proc', () => {
  it('journals a TCP connection from this process to 127.0.0.2 within the check interval when only 127.0.0.1/32 is allowed', async () => {
    const server = net.createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const serverPort = (server.address() as net.AddressInfo).port;

    const { watcher, journal } = await realWatcher({ allowedCidrs: ['127.0.0.1/32'], allowLoopback: false, onViolation: 'alert' });
    await watcher.start();
    const client = net.connect({ host: '127.0.0.2', port: serverPort });
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    cleanups.push(() => void client.destroy());
    const opened = Date.now();
    const data = await untilJournaled(watcher, journal, (d) => (d.remote as { port?: number } | undefined)?.port === serverPort, INTERVAL_MS * 5);
    const latency = Date.now() - opened;
    expect(latency).toBeLessThanOrEqual(INTERVAL_MS * 3);
    expect(data).toMatchObject({
      kind: 'connection-outside-tier',
      protocol: 'tcp',
      state: 'ESTABLISHED',
      remote: { address: '127.0.0.2', port: serverPort },
      local: { port: client.localPort },
      process: { pid: process.pid },
      interface: 'lo',
    });
  });

  it.runIf(canCreateInterface !== null)(`detects a new ${canCreateInterface ?? 'virtual'} interface created after start, via the real /sys/class/net`, async () => {
    const name = `sek${process.pid % 100_000}`;
    const { watcher, journal } = await realWatcher({ allowedCidrs: [], onViolation: 'alert' });
    await watcher.start();
    expect(makeTestInterface(name)).not.toBeNull();
    cleanups.push(() => {
      if (fs.existsSync(`/sys/class/net/${name}`)) execFileSync('ip', ['link', 'del', name], { stdio: 'ignore' });
    });
    const data = await untilJournaled(watcher, journal, (d) => d.kind === 'new-interface' && d.interface === name, INTERVAL_MS * 5);
    expect(data.virtual).toBe(true);
  });

  it.skipIf(canCreateInterface !== null)('detects a new interface — skipped: this kernel refuses `ip link add` for dummy and veth', () => {
    expect(canCreateInterface).toBeNull();
  });
});
