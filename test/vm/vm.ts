import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Qmp, connectWithRetry } from './qmp.js';

const run = promisify(execFile);
export const ROOT = path.resolve(import.meta.dirname, '../..');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The first directory on PATH holding an executable `name`, or null. */
export function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Builds (or finds in the cache) the guest image; resolves with the directory holding vmlinux and initrd.cpio. */
export async function buildImage(): Promise<string> {
  const { stdout } = await run('bash', [path.join(ROOT, 'build/vm/build-image.sh')], { cwd: ROOT, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });
  const dir = stdout.trim().split('\n').pop() ?? '';
  if (!fs.existsSync(path.join(dir, 'vmlinux'))) throw new Error(`build-image.sh printed no image directory: ${stdout}`);
  return dir;
}

export interface CommandResult {
  readonly code: number;
  readonly output: string;
}

/**
 * The guest's command channel (second serial port, see build/vm/guest-init.sh): one `sh -c`
 * command at a time, answered with its output and exit code.
 */
export class GuestShell {
  private buffer = '';
  private nextId = 1;
  private waiter: { id: string; resolve: (result: CommandResult) => void } | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.parse();
    });
    socket.on('error', () => undefined);
  }

  static connect(socketPath: string, timeoutMs = 10_000): Promise<GuestShell> {
    return connectWithRetry(socketPath, timeoutMs, 'the guest channel', (socket) => Promise.resolve(new GuestShell(socket)));
  }

  private parse(): void {
    if (!this.waiter) {
      // Answers to commands that timed out: drop everything up to the last complete answer.
      const end = this.buffer.lastIndexOf('\n@@END ');
      if (end >= 0) this.buffer = this.buffer.slice(this.buffer.indexOf('\n', end + 1) + 1);
      return;
    }
    const { id, resolve } = this.waiter;
    const begin = this.buffer.indexOf(`@@BEGIN ${id}\n`);
    if (begin < 0) return;
    const match = new RegExp(`@@END ${id} (\\d+)\\n`).exec(this.buffer.slice(begin));
    if (!match) return;
    const bodyStart = begin + `@@BEGIN ${id}\n`.length;
    const endAt = begin + match.index;
    const output = this.buffer.slice(bodyStart, endAt);
    this.buffer = this.buffer.slice(endAt + match[0].length);
    this.waiter = null;
    resolve({ code: Number(match[1]), output });
  }

  /** Runs `command` with `sh -c` in the guest (serialised). Rejects after `timeoutMs`. */
  run(command: string, timeoutMs = 20_000): Promise<CommandResult> {
    const next = this.queue.then(() => this.runNow(command, timeoutMs));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private runNow(command: string, timeoutMs: number): Promise<CommandResult> {
    const id = `q${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`guest command timed out after ${timeoutMs} ms: ${command}`));
      }, timeoutMs);
      this.waiter = {
        id,
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
      };
      // The leading newline ends any partial line the guest may have read before its loop started.
      this.socket.write(`\n${id} ${Buffer.from(command, 'utf8').toString('base64')}\n`);
      this.parse();
    });
  }

  /** Like run(), but throws when the command exits non-zero. */
  async check(command: string, timeoutMs?: number): Promise<string> {
    const result = await this.run(command, timeoutMs);
    if (result.code !== 0) throw new Error(`guest command failed (exit ${result.code}): ${command}\n${result.output}`);
    return result.output;
  }

  /** Retries a trivial command until the guest's loop answers (boot done). */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const result = await this.run('echo ready', 1000);
        if (result.output.trim() === 'ready') return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface VmOptions {
  readonly image: string;
  readonly workDir: string;
  /** Extra kernel command-line words (module parameters are forwarded to insmod by /init). */
  readonly append?: readonly string[];
  readonly memoryMb?: number;
}

/** One QEMU guest (TCG, no KVM): serial console captured, QMP and the command channel connected. */
export class Vm {
  console = '';
  private constructor(
    readonly process: ChildProcess,
    readonly qmp: Qmp,
    readonly shell: GuestShell,
    readonly bootMs: number,
  ) {}

  static async start(options: VmOptions): Promise<Vm> {
    const qmpSocket = path.join(options.workDir, 'qmp.sock');
    const shellSocket = path.join(options.workDir, 'shell.sock');
    const started = Date.now();
    const args = [
      '-accel', 'tcg', '-cpu', process.env.SEKIMORI_VM_CPU ?? 'max', '-smp', '1', '-m', String(options.memoryMb ?? 1024),
      '-nodefaults', '-display', 'none', '-no-reboot',
      '-kernel', path.join(options.image, 'vmlinux'),
      '-initrd', path.join(options.image, 'initrd.cpio'),
      '-append', ['console=ttyS0', 'quiet', 'panic=-1', ...(options.append ?? [])].join(' '),
      '-serial', 'stdio',
      '-serial', `unix:${shellSocket},server=on,wait=off`,
      '-qmp', `unix:${qmpSocket},server=on,wait=off`,
      // 8 USB 2 and 8 USB 3 ports: every scenario's device stays plugged in.
      '-device', 'qemu-xhci,id=xhci,p2=8,p3=8',
    ];
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let consoleText = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (consoleText += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (consoleText += chunk));
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) => reject(new Error(`qemu exited (${code ?? signal}) during boot:\n${consoleText}`))),
    );
    exited.catch(() => undefined);
    try {
      const qmp = await Promise.race([Qmp.connect(qmpSocket), exited]);
      const shell = await Promise.race([GuestShell.connect(shellSocket), exited]);
      await Promise.race([shell.waitReady(90_000), exited]);
      const vm = new Vm(child, qmp, shell, Date.now() - started);
      vm.console = consoleText;
      child.stdout.on('data', (chunk: string) => (vm.console += chunk));
      return vm;
    } catch (error) {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
      throw error;
    }
  }

  /** Stops QEMU: `quit` over QMP, then SIGKILL by pid if it is still there. */
  async stop(): Promise<void> {
    this.shell.close();
    const gone = new Promise<void>((resolve) => {
      if (this.process.exitCode !== null || this.process.signalCode !== null) resolve();
      else this.process.once('exit', () => resolve());
    });
    await Promise.race([this.qmp.execute('quit').catch(() => undefined), sleep(2000)]);
    this.qmp.close();
    await Promise.race([gone, sleep(3000)]);
    if (this.process.pid !== undefined && this.process.exitCode === null && this.process.signalCode === null) {
      process.kill(this.process.pid, 'SIGKILL');
      await gone;
    }
  }
}
