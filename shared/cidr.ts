import { err, ok, type Result } from './result.js';

/**
 * IPv4 / IPv6 addresses and CIDR ranges for the network-isolation checks (issue 7). Pure: no
 * `node:*`, so the server can validate a policy's ranges with the same code the agent matches with.
 *
 * Parsing is strict on purpose — a policy range is a security boundary, and a lenient parser that
 * reads `010.0.0.1` as octal or `10.1/8` as `10.0.0.1` would silently widen or move it:
 * - IPv4: exactly four decimal octets 0–255, no leading zeros, no hex, no shorthand.
 * - IPv6: RFC 4291 text (groups of 1–4 hex digits, at most one `::`, an optional trailing dotted
 *   IPv4), no zone id (`%eth0`), no brackets.
 * - CIDR: `address/prefix`, prefix decimal without leading zeros, 0–32 or 0–128, and no host bits
 *   set (`10.0.0.1/8` is refused with a hint naming `10.0.0.0/8`).
 *
 * IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack socket reports for an IPv4 peer)
 * match IPv4 ranges, and IPv4 addresses match IPv6 ranges that cover their mapped form.
 */

export type IpFamily = 4 | 6;

/** An address as a number: 32 bits for IPv4, 128 bits for IPv6. */
export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

/** A range: `network` has every host bit zero. */
export interface Cidr {
  readonly family: IpFamily;
  readonly network: bigint;
  readonly prefix: number;
}

export type AddressErrorCode = 'invalid-address';
export type CidrErrorCode = 'invalid-cidr';

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };
const MAPPED_PREFIX = 0xffffn << 32n;
const V4_MASK = 0xffff_ffffn;
const V6_MASK = (1n << 128n) - 1n;
const MAX_TEXT = 100;

/** An IPv4 address from its 32-bit number (host order as written: 127.0.0.1 is 0x7f000001). */
export function ipv4(value: number): IpAddress {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`not a 32-bit IPv4 value: ${value}`);
  return { family: 4, value: BigInt(value) };
}

/** An IPv6 address from its 128-bit number. */
export function ipv6(value: bigint): IpAddress {
  if (value < 0n || value > V6_MASK) throw new RangeError('not a 128-bit IPv6 value');
  return { family: 6, value };
}

/** Parses an IPv4 or IPv6 address (see the module doc for what is accepted). Never throws. */
export function parseAddress(text: string): Result<IpAddress, AddressErrorCode> {
  if (typeof text !== 'string') return err('invalid-address', 'address must be a string');
  if (text.length === 0) return err('invalid-address', 'address is empty');
  if (text.length > MAX_TEXT) return err('invalid-address', `address is longer than ${MAX_TEXT} characters`);
  const problem = text.includes(':') ? parseV6(text) : parseV4(text);
  if (typeof problem === 'string') return err('invalid-address', `"${printable(text)}" is not an IP address: ${problem}`);
  return ok(problem);
}

/** Parses `address/prefix` strictly (see the module doc). Never throws. */
export function parseCidr(text: string): Result<Cidr, CidrErrorCode> {
  if (typeof text !== 'string') return err('invalid-cidr', 'CIDR must be a string');
  if (text.length > MAX_TEXT) return err('invalid-cidr', `CIDR is longer than ${MAX_TEXT} characters`);
  const shown = printable(text);
  const slash = text.indexOf('/');
  if (slash < 0) return err('invalid-cidr', `"${shown}" has no /prefix (write 10.20.0.0/16, or 10.20.0.1/32 for one address)`);
  const address = parseAddress(text.slice(0, slash));
  if (!address.ok) return err('invalid-cidr', `"${shown}": ${address.error.message}`);
  const prefixText = text.slice(slash + 1);
  const { family, value } = address.value;
  const bits = BITS[family];
  if (!/^(?:0|[1-9]\d{0,2})$/.test(prefixText)) return err('invalid-cidr', `"${shown}": prefix must be a decimal number 0–${bits} without leading zeros`);
  const prefix = Number(prefixText);
  if (prefix > bits) return err('invalid-cidr', `"${shown}": prefix ${prefix} is longer than ${bits} bits for IPv${family}`);
  const network = value & prefixMask(family, prefix);
  if (network !== value) {
    return err('invalid-cidr', `"${shown}" has host bits set after /${prefix}; did you mean ${formatCidr({ family, network, prefix })}?`);
  }
  return ok({ family, network, prefix });
}

/** Both parses, or throws `TypeError` with the parse message: for constants in code and tests. */
export function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new TypeError(parsed.error.message);
  return parsed.value;
}

export function address(text: string): IpAddress {
  const parsed = parseAddress(text);
  if (!parsed.ok) throw new TypeError(parsed.error.message);
  return parsed.value;
}

/**
 * Whether `range` contains `addr`. An IPv4-mapped IPv6 address is compared as its IPv4 address
 * against an IPv4 range; an IPv4 address is compared as `::ffff:a.b.c.d` against an IPv6 range.
 * An IPv6 address that is not mapped is never in an IPv4 range, and vice versa.
 */
export function contains(range: Cidr, addr: IpAddress): boolean {
  let value: bigint;
  if (range.family === 4) {
    const v4 = unmapped(addr);
    if (v4.family !== 4) return false;
    value = v4.value;
  } else {
    value = addr.family === 6 ? addr.value : MAPPED_PREFIX | addr.value;
  }
  return (value & prefixMask(range.family, range.prefix)) === range.network;
}

/** `::ffff:a.b.c.d` as the IPv4 address `a.b.c.d`; any other address unchanged. */
export function unmapped(addr: IpAddress): IpAddress {
  if (addr.family === 6 && addr.value >> 32n === 0xffffn) return { family: 4, value: addr.value & V4_MASK };
  return addr;
}

/** 127.0.0.0/8 and ::1/128 (and mapped 127/8): what "loopback is always allowed" means. */
export const LOOPBACK_CIDRS: readonly Cidr[] = [
  { family: 4, network: 0x7f00_0000n, prefix: 8 },
  { family: 6, network: 1n, prefix: 128 },
];

export function isLoopback(addr: IpAddress): boolean {
  return LOOPBACK_CIDRS.some((range) => contains(range, addr));
}

/** 0.0.0.0 or :: (an unconnected socket's remote end). */
export function isUnspecified(addr: IpAddress): boolean {
  return addr.value === 0n;
}

/** Dotted quad for IPv4; RFC 5952 text for IPv6 (lower case, longest zero run as `::`, mapped as `::ffff:a.b.c.d`). */
export function formatAddress(addr: IpAddress): string {
  if (addr.family === 4) return formatV4(addr.value);
  if (addr.value >> 32n === 0xffffn) return `::ffff:${formatV4(addr.value & V4_MASK)}`;
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((addr.value >> shift) & 0xffffn));
  // Longest run of two or more zero groups, first one on a tie (RFC 5952 §4.2).
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; ) {
    if (groups[start] !== 0) {
      start += 1;
      continue;
    }
    let end = start;
    while (end < 8 && groups[end] === 0) end += 1;
    if (end - start > bestLength) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export function formatCidr(range: Cidr): string {
  return `${formatAddress({ family: range.family, value: range.network })}/${range.prefix}`;
}

/** First and last address of a range (for tests, reports). */
export function rangeBounds(range: Cidr): { readonly first: IpAddress; readonly last: IpAddress } {
  const hostBits = BigInt(BITS[range.family] - range.prefix);
  return {
    first: { family: range.family, value: range.network },
    last: { family: range.family, value: range.network | ((1n << hostBits) - 1n) },
  };
}

const maskCache: Record<IpFamily, bigint[]> = { 4: [], 6: [] };

function prefixMask(family: IpFamily, prefix: number): bigint {
  const cached = maskCache[family][prefix];
  if (cached !== undefined) return cached;
  const bits = BigInt(BITS[family]);
  const all = family === 4 ? V4_MASK : V6_MASK;
  const mask = (all >> (bits - BigInt(prefix))) << (bits - BigInt(prefix));
  maskCache[family][prefix] = mask & all;
  return mask & all;
}

function formatV4(value: bigint): string {
  const n = Number(value);
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** An IPv4 address, or a reason it is not one. */
function parseV4(text: string): IpAddress | string {
  const parts = text.split('.');
  if (parts.length !== 4) return `IPv4 needs four dot-separated numbers, found ${parts.length}`;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return `"${printable(part)}" is not a decimal number 0–255`;
    if (part.length > 1 && part.startsWith('0')) return `"${part}" has a leading zero (ambiguous: some parsers read it as octal)`;
    const octet = Number(part);
    if (octet > 255) return `${octet} is larger than 255`;
    value = value * 256 + octet;
  }
  return { family: 4, value: BigInt(value) };
}

/** An IPv6 address, or a reason it is not one. */
function parseV6(text: string): IpAddress | string {
  if (text.includes('%')) return 'zone ids (%…) are not allowed';
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return 'IPv6 may contain only hex digits, ":" and a trailing dotted IPv4';
  const halves = text.split('::');
  if (halves.length > 2) return '"::" may appear only once';
  const groupsOf = (half: string): string[] => (half === '' ? [] : half.split(':'));
  const head = groupsOf(halves[0] ?? '');
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? '') : [];
  const words: number[] = [];
  const all = [...head, ...tail];
  for (const [index, group] of all.entries()) {
    const last = index === all.length - 1;
    if (group.includes('.')) {
      if (!last || (halves.length === 2 && index < head.length && tail.length > 0)) return 'a dotted IPv4 part may only end the address';
      if (halves.length === 2 && tail.length === 0) return 'a dotted IPv4 part may only end the address';
      const v4 = parseV4(group);
      if (typeof v4 === 'string') return `embedded IPv4: ${v4}`;
      const n = Number(v4.value);
      words.push(n >>> 16, n & 0xffff);
      continue;
    }
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return group === '' ? 'empty group (a single ":" where "::" or a number belongs)' : `group "${printable(group)}" is not 1–4 hex digits`;
    words.push(parseInt(group, 16));
  }
  const headWords = words.length - countWords(tail);
  if (halves.length === 2) {
    if (words.length > 7) return '"::" must stand for at least one zero group';
  } else if (words.length !== 8) {
    return `IPv6 needs eight groups (or "::"), found ${words.length}`;
  }
  const zeros = 8 - words.length;
  const full = [...words.slice(0, headWords), ...new Array<number>(zeros).fill(0), ...words.slice(headWords)];
  let value = 0n;
  for (const word of full) value = (value << 16n) | BigInt(word);
  return { family: 6, value };
}

function countWords(groups: readonly string[]): number {
  return groups.reduce((sum, group) => sum + (group.includes('.') ? 2 : 1), 0);
}

/** Text safe to echo inside an error message: control characters escaped, bounded. */
function printable(text: string): string {
  return JSON.stringify(text.slice(0, MAX_TEXT)).slice(1, -1);
}
