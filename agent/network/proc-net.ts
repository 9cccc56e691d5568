import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { contains, ipv4, ipv6, isLoopback, type Cidr, type IpAddress } from '../../shared/cidr.js';

/**
 * Linux network state read straight from procfs and sysfs (no `ss`/`netstat` child process, no
 * systeminformation: one `readFile` per table is ~100× cheaper than spawning a program every few
 * seconds). Every parser here is defensive: a line that does not have the kernel's shape is
 * skipped and counted, nothing throws, and numbers are range-checked before use.
 */

export type SocketProtocol = 'tcp' | 'tcp6' | 'udp' | 'udp6';
export const SOCKET_PROTOCOLS: readonly SocketProtocol[] = ['tcp', 'tcp6', 'udp', 'udp6'];

/** TCP states as `include/net/tcp_states.h` numbers them (hex in /proc/net/tcp). UDP reuses 01 for "connected" and 07 for "not connected". */
export const TCP_STATES = [
  'UNKNOWN',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
  'NEW_SYN_RECV',
] as const;
export type SocketState = (typeof TCP_STATES)[number];

/** One row of /proc/net/{tcp,tcp6,udp,udp6}. */
export interface SocketEntry {
  readonly protocol: SocketProtocol;
  readonly local: IpAddress;
  readonly localPort: number;
  readonly remote: IpAddress;
  readonly remotePort: number;
  readonly state: SocketState;
  readonly uid: number;
  /** Socket inode (0 for TIME_WAIT rows, which no process owns any more). */
  readonly inode: number;
}

/** One entry of /sys/class/net. */
export interface InterfaceEntry {
  readonly name: string;
  /** `up`, `down`, `dormant`, `unknown`, … as the kernel reports it; `unknown` when unreadable. */
  readonly operstate: string;
  /** Hardware address, '' when none or unreadable. */
  readonly mac: string;
  /** Whether the kernel lists it under `/sys/devices/virtual` (bridges, veth, dummy); null when not known. */
  readonly virtual: boolean | null;
}

/** One usable route of the main table. */
export interface RouteEntry {
  readonly family: 4 | 6;
  readonly destination: Cidr;
  /** Null for an on-link route. */
  readonly gateway: IpAddress | null;
  readonly interface: string;
  readonly metric: number;
}

/** One reading of everything the watcher checks. `skipped` counts malformed lines/entries (for the log, never a violation on its own). */
export interface NetworkSnapshot {
  readonly sockets: readonly SocketEntry[];
  readonly interfaces: readonly InterfaceEntry[];
  readonly routes: readonly RouteEntry[];
  readonly skipped: number;
  /** Tables that could not be read at all (e.g. no IPv6 in the kernel), with the reason. */
  readonly unreadable: readonly string[];
}

/** The process owning a socket, where it could be found. */
export interface SocketOwner {
  readonly pid: number;
  readonly command: string;
}

/**
 * Where the watcher gets network state from: the OS adapter. Contract: `read` never rejects for
 * anything the OS does (missing table, permission) — it reports it in `unreadable`.
 */
export interface NetworkReader {
  read(): Promise<NetworkSnapshot>;
  /** Optional, and only called for sockets that are violations: maps inode → owning process. */
  socketOwners?(inodes: readonly number[]): Promise<ReadonlyMap<number, SocketOwner>>;
}

const RTF_UP = 0x1;
const RTF_REJECT = 0x200;
/** A table larger than this is cut (a real /proc/net/tcp line is ~150 bytes: 64 MiB ≈ 400k sockets). */
const MAX_TABLE_BYTES = 64 * 1024 * 1024;
const INTERFACE_NAME = /^[^\s/:]{1,15}$/;

export interface ProcNetReaderOptions {
  /** Default `/proc`; tests point it at a fake tree. */
  readonly procRoot?: string;
  /** Default `/sys`. */
  readonly sysRoot?: string;
  /** Byte order the kernel printed addresses in; default this machine's. */
  readonly littleEndian?: boolean;
  /** Bound on /proc/PID/fd entries scanned per owner lookup (default 200 000). */
  readonly maxOwnerScan?: number;
}

/** `NetworkReader` over /proc/net and /sys/class/net (Linux). */
export class ProcNetReader implements NetworkReader {
  private readonly procRoot: string;
  private readonly sysRoot: string;
  private readonly littleEndian: boolean;
  private readonly maxOwnerScan: number;

  constructor(options: ProcNetReaderOptions = {}) {
    this.procRoot = options.procRoot ?? '/proc';
    this.sysRoot = options.sysRoot ?? '/sys';
    this.littleEndian = options.littleEndian ?? os.endianness() === 'LE';
    this.maxOwnerScan = options.maxOwnerScan ?? 200_000;
  }

  /**
   * One snapshot. Reads are synchronous on purpose (as the USB source's): /proc and /sys are kernel
   * memory, and a dozen async opens every few seconds cost more in thread-pool hops than the reads
   * themselves (measured: most of the idle agent's CPU was `openFileHandle`).
   */
  read(): Promise<NetworkSnapshot> {
    const unreadable: string[] = [];
    let skipped = 0;
    const readTable = (name: string): string | null => {
      const file = path.join(this.procRoot, 'net', name);
      try {
        const text = readFileSync(file, 'latin1');
        return text.length > MAX_TABLE_BYTES ? text.slice(0, MAX_TABLE_BYTES) : text;
      } catch (error) {
        unreadable.push(`${file}: ${codeOf(error)}`);
        return null;
      }
    };
    const tables = SOCKET_PROTOCOLS.map(readTable);
    const route4 = readTable('route');
    const route6 = readTable('ipv6_route');
    const interfaces = this.readInterfaces(unreadable);
    const sockets: SocketEntry[] = [];
    for (const [index, text] of tables.entries()) {
      const protocol = SOCKET_PROTOCOLS[index];
      if (text === null || protocol === undefined) continue;
      const parsed = parseSocketTable(text, protocol, this.littleEndian);
      skipped += parsed.skipped;
      for (const entry of parsed.entries) sockets.push(entry);
    }
    const routes: RouteEntry[] = [];
    for (const parsed of [route4 === null ? null : parseRouteTable(route4, this.littleEndian), route6 === null ? null : parseIpv6RouteTable(route6)]) {
      if (parsed === null) continue;
      skipped += parsed.skipped;
      routes.push(...parsed.entries);
    }
    skipped += interfaces.skipped;
    return Promise.resolve({ sockets, interfaces: interfaces.entries, routes, skipped, unreadable });
  }

  /**
   * Finds which processes hold the given socket inodes by scanning /proc/PID/fd links
   * (`socket:[inode]`). Costs one readlink per open fd on the machine, so the watcher calls it only
   * for new violations. Processes that vanish or deny access are skipped; never rejects.
   */
  async socketOwners(inodes: readonly number[]): Promise<ReadonlyMap<number, SocketOwner>> {
    const wanted = new Set(inodes.filter((inode) => inode > 0));
    const found = new Map<number, SocketOwner>();
    if (wanted.size === 0) return found;
    let pids: string[];
    try {
      pids = (await fs.readdir(this.procRoot)).filter((name) => /^[1-9]\d{0,9}$/.test(name));
    } catch {
      return found;
    }
    let budget = this.maxOwnerScan;
    for (const pid of pids) {
      if (found.size === wanted.size || budget <= 0) break;
      const fdDir = path.join(this.procRoot, pid, 'fd');
      let fds: string[];
      try {
        fds = await fs.readdir(fdDir);
      } catch {
        continue;
      }
      for (const fd of fds) {
        if (budget-- <= 0) break;
        let target: string;
        try {
          target = await fs.readlink(path.join(fdDir, fd));
        } catch {
          continue;
        }
        const match = /^socket:\[(\d{1,12})\]$/.exec(target);
        const inode = match?.[1] === undefined ? NaN : Number(match[1]);
        if (!wanted.has(inode) || found.has(inode)) continue;
        found.set(inode, { pid: Number(pid), command: await this.command(pid) });
      }
    }
    return found;
  }

  private async command(pid: string): Promise<string> {
    try {
      return (await fs.readFile(path.join(this.procRoot, pid, 'comm'), 'utf8')).trim().slice(0, 64);
    } catch {
      return '';
    }
  }

  private readInterfaces(unreadable: string[]): { entries: InterfaceEntry[]; skipped: number } {
    const dir = path.join(this.sysRoot, 'class', 'net');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (error) {
      unreadable.push(`${dir}: ${codeOf(error)}`);
      return { entries: [], skipped: 0 };
    }
    let skipped = 0;
    const entries: InterfaceEntry[] = [];
    for (const name of names) {
      if (!INTERFACE_NAME.test(name)) {
        skipped += 1;
        continue;
      }
      const base = path.join(dir, name);
      const operstate = readSmall(path.join(base, 'operstate'));
      const mac = readSmall(path.join(base, 'address'));
      let link: string | null;
      try {
        link = readlinkSync(base);
      } catch {
        link = null;
      }
      entries.push({
        name,
        operstate: operstate && /^[a-z]{1,20}$/.test(operstate) ? operstate : 'unknown',
        mac: mac && /^[0-9a-f:]{1,100}$/.test(mac) ? mac : '',
        virtual: link === null ? null : link.includes('/devices/virtual/'),
      });
    }
    return { entries: entries.sort((a, b) => (a.name < b.name ? -1 : 1)), skipped };
  }
}

function readSmall(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').slice(0, 200).trim();
  } catch {
    return null;
  }
}

function codeOf(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : String(error);
}

const HEX8 = /^[0-9A-Fa-f]{8}$/;
const HEX32 = /^[0-9A-Fa-f]{32}$/;
const HEX4 = /^[0-9A-Fa-f]{4}$/;
const DECIMAL = /^\d{1,10}$/;

/**
 * Parses one /proc/net/{tcp,tcp6,udp,udp6} table. The header line and every line that does not
 * have the kernel's shape (wrong field count, non-hex address, out-of-range number) are skipped;
 * `skipped` counts the latter. Never throws.
 */
export function parseSocketTable(text: string, protocol: SocketProtocol, littleEndian = true): { entries: SocketEntry[]; skipped: number } {
  const v6 = protocol === 'tcp6' || protocol === 'udp6';
  const entries: SocketEntry[] = [];
  let skipped = 0;
  let start = 0;
  let first = true;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (first) {
      first = false;
      if (/^\s*sl\s/.test(line)) continue;
    }
    if (line.trim() === '') continue;
    const entry = parseSocketLine(line, protocol, v6, littleEndian);
    if (entry === null) skipped += 1;
    else entries.push(entry);
  }
  return { entries, skipped };
}

function parseSocketLine(line: string, protocol: SocketProtocol, v6: boolean, littleEndian: boolean): SocketEntry | null {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 10 || !/^\d{1,10}:$/.test(fields[0] ?? '')) return null;
  const local = parseEndpoint(fields[1] ?? '', v6, littleEndian);
  const remote = parseEndpoint(fields[2] ?? '', v6, littleEndian);
  const stateHex = fields[3] ?? '';
  if (local === null || remote === null || !/^[0-9A-Fa-f]{2}$/.test(stateHex)) return null;
  const state = TCP_STATES[parseInt(stateHex, 16)];
  const uidText = fields[7] ?? '';
  const inodeText = fields[9] ?? '';
  if (state === undefined || !DECIMAL.test(uidText) || !DECIMAL.test(inodeText)) return null;
  const uid = Number(uidText);
  const inode = Number(inodeText);
  if (uid > 0xffff_ffff) return null;
  return { protocol, local: local.address, localPort: local.port, remote: remote.address, remotePort: remote.port, state, uid, inode };
}

/** `0100007F:0050` (IPv4) or 32 hex digits `:port` (IPv6); the address words are in the kernel's byte order. */
function parseEndpoint(text: string, v6: boolean, littleEndian: boolean): { address: IpAddress; port: number } | null {
  const colon = text.indexOf(':');
  if (colon < 0) return null;
  const hex = text.slice(0, colon);
  const portHex = text.slice(colon + 1);
  if (!HEX4.test(portHex)) return null;
  const address = v6 ? ipv6FromProcHex(hex, littleEndian) : ipv4FromProcHex(hex, littleEndian);
  if (address === null) return null;
  return { address, port: parseInt(portHex, 16) };
}

/** The 8-hex-digit form of an IPv4 `__be32` as the kernel prints it with `%08X`. */
export function ipv4FromProcHex(hex: string, littleEndian = true): IpAddress | null {
  if (!HEX8.test(hex)) return null;
  const word = parseInt(hex, 16);
  return ipv4(littleEndian ? swap32(word) : word);
}

/** The 32-hex-digit form of an IPv6 address in /proc/net/tcp6: four `%08X` words, each in host byte order. */
export function ipv6FromProcHex(hex: string, littleEndian = true): IpAddress | null {
  if (!HEX32.test(hex)) return null;
  let value = 0n;
  for (let i = 0; i < 32; i += 8) {
    const word = parseInt(hex.slice(i, i + 8), 16);
    value = (value << 32n) | BigInt(littleEndian ? swap32(word) : word);
  }
  return ipv6(value);
}

function swap32(word: number): number {
  return (((word & 0xff) << 24) | ((word & 0xff00) << 8) | ((word >>> 8) & 0xff00) | (word >>> 24)) >>> 0;
}

/**
 * Parses /proc/net/route (IPv4 main table). Keeps routes that are up and not reject routes.
 * Destination, gateway and mask are `__be32` in the kernel's byte order. A mask that is not a
 * prefix is skipped. Never throws.
 */
export function parseRouteTable(text: string, littleEndian = true): { entries: RouteEntry[]; skipped: number } {
  const entries: RouteEntry[] = [];
  let skipped = 0;
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '' || (index === 0 && /^Iface\s/.test(line))) continue;
    const fields = line.trim().split(/\s+/);
    const [name, destHex, gatewayHex, flagsHex, , , metricText, maskHex] = fields;
    const destination = ipv4FromProcHex(destHex ?? '', littleEndian);
    const gateway = ipv4FromProcHex(gatewayHex ?? '', littleEndian);
    const mask = ipv4FromProcHex(maskHex ?? '', littleEndian);
    if (
      fields.length < 8 ||
      name === undefined ||
      !INTERFACE_NAME.test(name) ||
      destination === null ||
      gateway === null ||
      mask === null ||
      !/^[0-9A-Fa-f]{1,8}$/.test(flagsHex ?? '') ||
      !DECIMAL.test(metricText ?? '')
    ) {
      skipped += 1;
      continue;
    }
    const prefix = prefixOfMask(Number(mask.value));
    if (prefix === null || (destination.value & ~mask.value & 0xffff_ffffn) !== 0n) {
      skipped += 1;
      continue;
    }
    const flags = parseInt(flagsHex ?? '0', 16);
    if ((flags & RTF_UP) === 0 || (flags & RTF_REJECT) !== 0) continue;
    entries.push({
      family: 4,
      destination: { family: 4, network: destination.value, prefix },
      gateway: gateway.value === 0n ? null : gateway,
      interface: name,
      metric: Number(metricText),
    });
  }
  return { entries, skipped };
}

/**
 * Parses /proc/net/ipv6_route: `dest plen src plen nexthop metric refcnt use flags iface`, addresses
 * as 32 hex digits in network order. Keeps up, non-reject routes. Never throws.
 */
export function parseIpv6RouteTable(text: string): { entries: RouteEntry[]; skipped: number } {
  const entries: RouteEntry[] = [];
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.trim().split(/\s+/);
    const [destHex, plenHex, , , nextHopHex, metricHex, , , flagsHex, name] = fields;
    const destination = ipv6FromProcHex(destHex ?? '', false);
    const nextHop = ipv6FromProcHex(nextHopHex ?? '', false);
    if (
      fields.length !== 10 ||
      name === undefined ||
      !INTERFACE_NAME.test(name) ||
      destination === null ||
      nextHop === null ||
      !/^[0-9A-Fa-f]{2}$/.test(plenHex ?? '') ||
      !HEX8.test(metricHex ?? '') ||
      !HEX8.test(flagsHex ?? '')
    ) {
      skipped += 1;
      continue;
    }
    const prefix = parseInt(plenHex ?? '', 16);
    const hostBits = BigInt(128 - prefix);
    if (prefix > 128 || (destination.value & ((1n << hostBits) - 1n)) !== 0n) {
      skipped += 1;
      continue;
    }
    const flags = parseInt(flagsHex ?? '', 16);
    if ((flags & RTF_UP) === 0 || (flags & RTF_REJECT) !== 0) continue;
    entries.push({
      family: 6,
      destination: { family: 6, network: destination.value, prefix },
      gateway: nextHop.value === 0n ? null : nextHop,
      interface: name,
      metric: parseInt(metricHex ?? '', 16),
    });
  }
  return { entries, skipped };
}

/** Routes for "anywhere" (`0.0.0.0/0`, `::/0`). */
export function defaultRoutes(routes: readonly RouteEntry[]): RouteEntry[] {
  return routes.filter((route) => route.destination.prefix === 0);
}

/**
 * The interface the main table sends `address` out of (longest prefix, then lowest metric), or null.
 * Loopback is answered as `lo` first: 127/8 and ::1 are routed by the kernel's `local` table, which
 * /proc/net/route does not show, so the main table alone would name the default route's NIC (and
 * `alert-disable` would take the real NIC down for a loopback connection).
 */
export function routeInterface(routes: readonly RouteEntry[], address: IpAddress): string | null {
  if (isLoopback(address)) return 'lo';
  let best: RouteEntry | null = null;
  for (const route of routes) {
    if (!contains(route.destination, address)) continue;
    if (
      best === null ||
      route.destination.prefix > best.destination.prefix ||
      (route.destination.prefix === best.destination.prefix && route.metric < best.metric)
    ) {
      best = route;
    }
  }
  return best?.interface ?? null;
}

/** Prefix length of a contiguous netmask (as a host-order 32-bit number), or null. */
function prefixOfMask(mask: number): number | null {
  const inverted = ~mask >>> 0;
  if ((inverted & (inverted + 1)) !== 0) return null;
  return Math.clz32(inverted);
}
