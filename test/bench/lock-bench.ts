/**
 * Lock numbers (issue 4), each beside its floor, measured in one run. Part of `npm run bench`.
 * Needs root (a client runs as `nobody`, as the lock screen does, so the kernel peer lookup runs).
 *
 *   new IPC connection + lock.get as another uid   vs a raw Unix-socket connect + one-line echo (the floor)
 *   PIN check through the agent (lock.submit)        vs scrypt alone with the same parameters (the floor)
 */
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { promisify } from 'node:util';
import { Secret, TOTP } from 'otpauth';
import { callAgent } from '../../dist/agent/ipc/ipc-client.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const fmt = (n: number, digits = 1): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('lock bench: needs root (a client must run under another uid); skipped');
    return;
  }
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'sekimori-lock-bench-'));
  await fs.chmod(base, 0o755);
  const state = path.join(base, 'state');
  const socket = path.join(base, 'run', 'agent.sock');
  await fs.mkdir(state, { mode: 0o700 });
  await fs.writeFile(path.join(state, 'config.json'), JSON.stringify({ lock: { consoleUser: 'nobody' }, ipc: { socketPath: socket } }));
  const agent = spawn(process.execPath, [path.join(ROOT, 'dist/agent/cli.js'), 'run', '--state', state], { stdio: 'ignore' });
  try {
    for (let i = 0; ; i++) {
      try {
        await callAgent(socket, { id: 1, method: 'lock.get' });
        break;
      } catch {
        if (i > 100) throw new Error('agent did not start');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const N = 100;
    // As another uid: each connection costs one kernel peer lookup (ss -xpn).
    const script = `const {callAgent} = await import(${JSON.stringify(path.join(ROOT, 'dist/agent/ipc/ipc-client.js'))});
      const times = []; for (let i = 0; i < ${N}; i++) { const t = performance.now(); const a = await callAgent(${JSON.stringify(socket)}, { id: i, method: 'lock.get' }); if (!a.ok) throw new Error('refused'); times.push(performance.now() - t); }
      console.log(JSON.stringify(times));`;
    const other = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' })) as number[];
    // Floor: connect to a Unix socket and get one line back, nothing else.
    const echoPath = path.join(base, 'echo.sock');
    const echo = net.createServer((conn) => conn.on('data', (chunk) => conn.end(chunk)));
    await new Promise<void>((resolve) => echo.listen(echoPath, resolve));
    const raw: number[] = [];
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      await new Promise<void>((resolve, reject) => {
        const conn = net.createConnection(echoPath, () => conn.write('{"id":1}\n'));
        conn.once('data', () => {
          conn.destroy();
          resolve();
        });
        conn.once('error', reject);
      });
      raw.push(performance.now() - t);
    }
    echo.close();
    other.sort((a, b) => a - b);
    raw.sort((a, b) => a - b);

    // PIN check through the agent vs scrypt alone (N=2^15, r=8, p=1 as the agent uses).
    const offer = await callAgent(socket, { id: 1, method: 'lock.enrolBegin', params: { pin: '739184' } });
    const secret = ((offer.ok ? offer.result : null) as { offer?: { secret: string } } | null)?.offer?.secret;
    if (!secret) throw new Error('enrolment did not start');
    const code = new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate();
    await callAgent(socket, { id: 2, method: 'lock.enrolConfirm', params: { code } });
    const submit: number[] = [];
    for (let i = 0; i < 4; i++) {
      // Wrong PINs (4 stay below the 5-failure back-off): the full path — peer, throttle, scrypt, persist, journal.
      const t = performance.now();
      await callAgent(socket, { id: 10 + i, method: 'lock.submit', params: { factor: 'pin', secret: `00000${i}` } });
      submit.push(performance.now() - t);
    }
    submit.sort((a, b) => a - b);
    const scrypt = promisify(crypto.scrypt) as (password: string, salt: Buffer, keylen: number, options: crypto.ScryptOptions) => Promise<Buffer>;
    const floor: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      await scrypt('739184', crypto.randomBytes(16), 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
      floor.push(performance.now() - t);
    }
    floor.sort((a, b) => a - b);
    console.log('lock (issue 4)                              median       p95     floor (same run)');
    console.log(`new connection + lock.get as nobody    ${fmt(quantile(other, 0.5)).padStart(8)} ms ${fmt(quantile(other, 0.95)).padStart(8)} ms   raw socket connect + echo: ${fmt(quantile(raw, 0.5), 2)} ms median`);
    console.log(`PIN check via lock.submit (4 wrong)    ${fmt(quantile(submit, 0.5)).padStart(8)} ms ${fmt(quantile(submit, 0.95)).padStart(8)} ms   scrypt alone: ${fmt(quantile(floor, 0.5))} ms median, ${fmt(quantile(floor, 0.95))} ms p95`);
  } finally {
    agent.kill('SIGTERM');
    await new Promise((resolve) => agent.once('exit', resolve));
    await fs.rm(base, { recursive: true, force: true });
  }
}

await main();
