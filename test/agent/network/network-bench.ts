/**
 * Times one full network check (read /proc/net + /sys + evaluate + dedup), no journal writes in
 * the timed loop. Run: `npx tsx test/agent/network/network-bench.ts`.
 * 1) a fake /proc with ~1,000 TCP connections (half inside the tier, half outside: the worst case
 *    for evaluation, every outside one already journaled, as in steady state);
 * 2) the real /proc of this machine.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import winston from 'winston';
import { parseNetworkSettings } from '../../../agent/network/network-settings.js';
import { NetworkWatcher } from '../../../agent/network/network-watcher.js';
import { ProcNetReader } from '../../../agent/network/proc-net.js';
import { FakeCommandRunner } from '../../fakes/fake-command-runner.js';
import { FakeProc, ROUTE_HEADER, TCP6_HEADER, TCP_HEADER, port, tcpLine, v4hex, v6hex } from './fake-proc.js';

const silent = winston.createLogger({ silent: true });
const settings = parseNetworkSettings({ allowedCidrs: ['10.20.0.0/16', '10.30.0.0/16', '2001:db8:20::/48'], onViolation: 'alert' });
if (!settings.ok) throw new Error(settings.error.message);
const inForce = settings.value;
const nullJournal = { append: () => Promise.resolve({} as never) };

async function bench(label: string, reader: ProcNetReader, rounds: number): Promise<void> {
  const watcher = new NetworkWatcher({ reader, journal: nullJournal, logger: silent, settings: () => inForce, commands: new FakeCommandRunner(), lock: () => undefined, ownerLookup: false, maxEventsPerCheck: 10_000 });
  await watcher.start();
  const first = await watcher.check();
  const times: number[] = [];
  const reads: number[] = [];
  for (let i = 0; i < rounds; i += 1) {
    const report = await watcher.check();
    times.push(report.durationMs);
    reads.push(report.readMs);
  }
  await watcher.dispose();
  times.sort((a, b) => a - b);
  reads.sort((a, b) => a - b);
  const pct = (list: number[], p: number): string => (list[Math.min(list.length - 1, Math.floor(list.length * p))] ?? 0).toFixed(2);
  console.log(`${label}: sockets=${first.sockets} interfaces=${first.interfaces} | full check median ${pct(times, 0.5)} ms, p95 ${pct(times, 0.95)} ms | read median ${pct(reads, 0.5)} ms`);
}

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sekimori-netbench-'));
try {
  const fake = await FakeProc.create(root);
  await fake.addInterface({ name: 'eth0' });
  await fake.setTable('route', ROUTE_HEADER, ['eth0\t00000000\t0100140A\t0003\t0\t0\t0\t00000000\t0\t0\t0', 'eth0\t0000140A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0']);
  const v4: string[] = [];
  for (let i = 0; i < 800; i += 1) {
    const remote = i % 2 === 0 ? `10.20.${(i >> 8) & 255}.${i & 255}` : `203.0.${(i >> 8) & 255}.${i & 255}`;
    v4.push(tcpLine(i, `${v4hex('10.20.0.5')}:${port(30000 + i)}`, `${v4hex(remote)}:${port(443)}`, i % 10 === 0 ? '06' : '01', 100_000 + i));
  }
  const v6: string[] = [];
  for (let i = 0; i < 200; i += 1) {
    const remote = i % 2 === 0 ? [0x2001, 0xdb8, 0x20, 0, 0, 0, 0, i] : [0x2001, 0xdb8, 0x99, 0, 0, 0, 0, i];
    v6.push(tcpLine(i, `${v6hex([0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 5])}:${port(40000 + i)}`, `${v6hex(remote)}:${port(443)}`, '01', 200_000 + i));
  }
  await fake.setTable('tcp', TCP_HEADER, v4);
  await fake.setTable('tcp6', TCP6_HEADER, v6);
  await bench('fake /proc, 1,000 TCP connections (500 outside the tier)', new ProcNetReader({ procRoot: fake.procRoot, sysRoot: fake.sysRoot }), 200);
  await bench('real /proc of this machine', new ProcNetReader(), 200);
} finally {
  await fs.rm(root, { recursive: true, force: true });
}
