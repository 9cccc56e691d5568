import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * A fake /proc + /sys tree in a temp dir, with lines in the kernel's exact format (addresses in
 * little-endian hex, as an x86/ARM kernel prints them), for `ProcNetReader({ procRoot, sysRoot })`.
 */
export const TCP_HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     ';
export const TCP6_HEADER =
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
export const UDP_HEADER = '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            ';
export const ROUTE_HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       ';

/** `10.1.2.3` → `0302010A` (the __be32 as a little-endian host prints it with %08X). */
export function v4hex(address: string): string {
  return address
    .split('.')
    .reverse()
    .map((octet) => Number(octet).toString(16).padStart(2, '0').toUpperCase())
    .join('');
}

/** Fully written IPv6 (8 groups) → /proc/net/tcp6 form: four 32-bit words, each byte-reversed. */
export function v6hex(groups: readonly number[]): string {
  const bytes = groups.flatMap((group) => [group >> 8, group & 0xff]);
  let out = '';
  for (let word = 0; word < 4; word += 1) {
    for (let i = 3; i >= 0; i -= 1) out += (bytes[word * 4 + i] ?? 0).toString(16).padStart(2, '0').toUpperCase();
  }
  return out;
}

export function port(n: number): string {
  return n.toString(16).padStart(4, '0').toUpperCase();
}

/** One /proc/net/tcp line. `state` is the two-digit hex state (01 ESTABLISHED, 02 SYN_SENT, 0A LISTEN, 06 TIME_WAIT). */
export function tcpLine(slot: number, local: string, remote: string, state: string, inode: number, uid = 1000): string {
  return `${String(slot).padStart(4)}: ${local} ${remote} ${state} 00000000:00000000 00:00000000 00000000 ${String(uid).padStart(5)}        0 ${inode} 1 0000000098be3352 100 0 0 10 0`;
}

export function udpLine(slot: number, local: string, remote: string, state: string, inode: number): string {
  return `${String(slot).padStart(5)}: ${local} ${remote} ${state} 00000000:00000000 00:00000000 00000000  1000        0 ${inode} 2 00000000a1b2c3d4 0`;
}

export interface FakeInterface {
  readonly name: string;
  readonly operstate?: string;
  readonly mac?: string;
}

export class FakeProc {
  private constructor(readonly root: string) {}

  get procRoot(): string {
    return path.join(this.root, 'proc');
  }

  get sysRoot(): string {
    return path.join(this.root, 'sys');
  }

  static async create(root: string): Promise<FakeProc> {
    const fake = new FakeProc(root);
    await fs.mkdir(path.join(fake.procRoot, 'net'), { recursive: true });
    await fs.mkdir(path.join(fake.sysRoot, 'class', 'net'), { recursive: true });
    await fake.setTable('tcp', TCP_HEADER, []);
    await fake.setTable('tcp6', TCP6_HEADER, []);
    await fake.setTable('udp', UDP_HEADER, []);
    await fake.setTable('udp6', UDP_HEADER, []);
    await fake.setTable('route', ROUTE_HEADER, []);
    await fs.writeFile(path.join(fake.procRoot, 'net', 'ipv6_route'), '');
    await fake.addInterface({ name: 'lo', operstate: 'unknown', mac: '00:00:00:00:00:00' });
    return fake;
  }

  setTable(name: 'tcp' | 'tcp6' | 'udp' | 'udp6' | 'route', header: string, lines: readonly string[]): Promise<void> {
    return fs.writeFile(path.join(this.procRoot, 'net', name), [header, ...lines].join('\n') + '\n');
  }

  writeRaw(relative: string, text: string): Promise<void> {
    return fs.writeFile(path.join(this.procRoot, relative), text);
  }

  async addInterface(entry: FakeInterface): Promise<void> {
    const dir = path.join(this.sysRoot, 'class', 'net', entry.name);
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'operstate'), `${entry.operstate ?? 'up'}\n`);
    await fs.writeFile(path.join(dir, 'address'), `${entry.mac ?? '52:54:00:12:34:56'}\n`);
  }

  removeInterface(name: string): Promise<void> {
    return fs.rm(path.join(this.sysRoot, 'class', 'net', name), { recursive: true, force: true });
  }

  /** A process `pid` (with `comm`) holding socket `inode` as fd 3. */
  async addProcess(pid: number, command: string, inodes: readonly number[]): Promise<void> {
    const fdDir = path.join(this.procRoot, String(pid), 'fd');
    await fs.mkdir(fdDir, { recursive: true });
    await fs.writeFile(path.join(this.procRoot, String(pid), 'comm'), `${command}\n`);
    for (const [index, inode] of inodes.entries()) await fs.symlink(`socket:[${inode}]`, path.join(fdDir, String(index + 3)));
  }
}
