/**
 * The agent's idle footprint (issue 7's benchmark): RSS and CPU of a running `sekimori-agent run`
 * with every watcher on, sampled over SECONDS of idle time, next to a bare `node` process as the
 * floor. Target: RSS ≤ 1.5 × floor + 30 MB, idle CPU < 1% of one core. Prints; asserts nothing.
 *
 * Watchers on during the measurement: journal + reporter (retrying against a server nobody
 * answers, as on an offline terminal), local IPC, the lock (a fixed console user), USB device
 * control with its 3-s reconcile on a kernel-shaped fake sysfs (two buses, a keyboard and a hub,
 * default-deny set; run as root), the non-USB export channels pass, the network watcher (3-s
 * checks) with the canary probe (a signed policy naming a closed loopback port), the print watcher
 * (15-s polls), and the self-inspection timer after its start run. Where the agent cannot enforce
 * (not root) device control is off and the table says so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { builtInPolicyDocument } from '../../agent/policy/profiles.js';
import { FakeSysfs } from '../fakes/fake-sysfs.js';
import * as devices from '../fixtures/usb-devices/devices.js';
import { policySigningKey } from '../helpers/policy-signing.js';

const SECONDS = Number(process.env.SEKIMORI_IDLE_SECONDS ?? 60);
const TICKS = 100; // USER_HZ on Linux

async function sample(pid: number): Promise<{ rssMb: number; cpuTicks: number }> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = (await fs.readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return { rssMb: rssKb / 1024, cpuTicks: Number(stat[11]) + Number(stat[12]) };
}

async function measure(name: string, child: ChildProcess, ready: () => Promise<void>): Promise<{ name: string; rssMb: number; cpuPercent: number }> {
  await ready();
  const start = await sample(child.pid!);
  const began = performance.now();
  let peak = start.rssMb;
  while (performance.now() - began < SECONDS * 1000) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    peak = Math.max(peak, (await sample(child.pid!)).rssMb);
  }
  const end = await sample(child.pid!);
  const seconds = (performance.now() - began) / 1000;
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  return { name, rssMb: peak, cpuPercent: ((end.cpuTicks - start.cpuTicks) / TICKS / seconds) * 100 };
}

async function journalTypes(state: string): Promise<Map<string, number>> {
  const text = await fs.readFile(path.join(state, 'journal.jsonl'), 'utf8').catch(() => '');
  const counts = new Map<string, number>();
  for (const line of text.split('\n').filter(Boolean)) {
    const type = (JSON.parse(line) as { type: string }).type;
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return counts;
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** A loopback port nothing listens on: the canary target that must stay unreachable. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const root = path.resolve(import.meta.dirname, '../..');
const asRoot = process.getuid?.() === 0;
const state = await fs.mkdtemp(path.join(os.tmpdir(), 'sekimori-idle-'));
const sysfs = await FakeSysfs.create([{ bus: 1 }, { bus: 2, superSpeed: true }]);
await sysfs.plug(devices.keyboard, '1-1');
await sysfs.plug(devices.hub, '1-2');
const kernel = sysfs.runKernel(20);
const signer = policySigningKey();
await fs.writeFile(
  path.join(state, 'config.json'),
  JSON.stringify({ tier: 'mynumber', policyPublicKey: signer.publicKey, lock: { consoleUser: 'bench' }, selfcheck: { startDelaySeconds: 0 } }),
  { mode: 0o600 },
);
const policy = {
  ...builtInPolicyDocument('mynumber'),
  version: 2,
  issuedAt: '2026-11-25T09:00:00+09:00',
  network: { allowedCidrs: ['10.20.0.0/16'], onViolation: 'alert' as const, canary: { targets: [`127.0.0.2:${await closedPort()}`], intervalSeconds: 10 } },
};
await fs.writeFile(path.join(state, 'policy.json'), JSON.stringify(signer.sign(policy)), { mode: 0o600 });

const floor = await measure('bare node (floor)', spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }), () => new Promise((resolve) => setTimeout(resolve, 1000)));
// A server URL nobody answers: the reporter keeps retrying with back-off, as on an offline terminal.
const child = spawn(process.execPath, [path.join(root, 'dist/agent/cli.js'), 'run', '--state', state, '--server', 'http://127.0.0.1:9', '--sysfs-root', sysfs.root], { stdio: 'ignore' });
const agent = await measure('sekimori-agent run (idle, all watchers)', child, async () => {
  await waitUntil('the start self-inspection and the network baseline', async () => {
    const types = await journalTypes(state);
    return types.has('selfcheck.result') && types.has('network.baseline') && types.has('policy.applied');
  });
  if (asRoot) await waitUntil('default-deny on the fake sysfs', async () => (await sysfs.attribute('usb2', 'authorized_default')).trim() === '0');
  // Let the first reconcile, canary and print passes settle before sampling.
  await new Promise((resolve) => setTimeout(resolve, 5000));
});
const types = await journalTypes(state);
await kernel.stop();
await sysfs.dispose();
await fs.rm(state, { recursive: true, force: true });

const rssTarget = floor.rssMb * 1.5 + 30;
const on = [
  'journal',
  'reporter (retrying)',
  'IPC',
  'lock',
  asRoot && types.has('device.allowed') ? 'USB device control (fake sysfs) + export channels' : 'USB device control OFF (not root)',
  'network watcher + canary',
  'print watcher',
  types.has('selfcheck.result') ? 'self-inspection timer' : 'self-inspection NOT started',
];
console.log(`\nWatchers: ${on.join(', ')}. Journal during the run: ${[...types].map(([type, count]) => `${type}×${count}`).join(', ')}`);
console.log(`\n| measure (${SECONDS} s idle) | peak RSS | CPU of one core | target |\n|---|---|---|---|`);
console.log(`| ${floor.name} | ${floor.rssMb.toFixed(1)} MB | ${floor.cpuPercent.toFixed(2)}% | |`);
console.log(
  `| ${agent.name} | ${agent.rssMb.toFixed(1)} MB | ${agent.cpuPercent.toFixed(2)}% | RSS ≤ ${rssTarget.toFixed(1)} MB (${agent.rssMb <= rssTarget ? 'met' : 'NOT met'}), CPU < 1% (${agent.cpuPercent < 1 ? 'met' : 'NOT met'}) |`,
);
