/**
 * The agent's idle footprint (issue 7's benchmark): RSS and CPU of a running `sekimori-agent run`
 * with every watcher on (journal, reporter retrying, IPC, network watcher; device control where a
 * USB bus exists), sampled over SECONDS of idle time, next to a bare `node` process as the floor.
 * Target: RSS ≤ 1.5 × floor + 30 MB, idle CPU < 1% of one core. Prints; asserts nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const SECONDS = Number(process.env.SEKIMORI_IDLE_SECONDS ?? 60);
const TICKS = 100; // USER_HZ on Linux

async function sample(pid: number): Promise<{ rssMb: number; cpuTicks: number }> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = (await fs.readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return { rssMb: rssKb / 1024, cpuTicks: Number(stat[11]) + Number(stat[12]) };
}

async function measure(name: string, child: ChildProcess, warmupMs: number): Promise<{ name: string; rssMb: number; cpuPercent: number }> {
  await new Promise((resolve) => setTimeout(resolve, warmupMs));
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
  return { name, rssMb: peak, cpuPercent: ((end.cpuTicks - start.cpuTicks) / TICKS / seconds) * 100 };
}

const state = await fs.mkdtemp(path.join(os.tmpdir(), 'sekimori-idle-'));
await fs.writeFile(path.join(state, 'config.json'), JSON.stringify({ tier: 'mynumber' }));
const root = path.resolve(import.meta.dirname, '../..');
const floor = await measure('bare node (floor)', spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }), 1000);
// A server URL nobody answers: the reporter keeps retrying with back-off, as on an offline terminal.
const agent = await measure(
  'sekimori-agent run (idle)',
  spawn(process.execPath, [path.join(root, 'dist/agent/cli.js'), 'run', '--state', state, '--server', 'http://127.0.0.1:9'], { stdio: 'ignore' }),
  5000,
);
await fs.rm(state, { recursive: true, force: true });
const rssTarget = floor.rssMb * 1.5 + 30;
console.log(`\n| measure (${SECONDS} s idle) | peak RSS | CPU of one core | target |\n|---|---|---|---|`);
console.log(`| ${floor.name} | ${floor.rssMb.toFixed(1)} MB | ${floor.cpuPercent.toFixed(2)}% | |`);
console.log(`| ${agent.name} | ${agent.rssMb.toFixed(1)} MB | ${agent.cpuPercent.toFixed(2)}% | RSS ≤ ${rssTarget.toFixed(1)} MB, CPU < 1% |`);
