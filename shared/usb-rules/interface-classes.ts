/**
 * USB interface patterns: USBGuard's `cc:ss:pp` codes with `*` wildcards, and Sekimori's
 * human-readable class names (DESIGN.md §4, "Device classes the profiles name").
 */

/** Sekimori class names usable as `with-interface` values. See README.md for the table. */
export type InterfaceClassName =
  | 'mass-storage'
  | 'still-image'
  | 'ptp'
  | 'mtp'
  | 'phone'
  | 'printer'
  | 'hid'
  | 'audio'
  | 'video'
  | 'smart-card'
  | 'hub'
  | 'wireless'
  | 'bluetooth'
  | 'rndis'
  | 'cdc-network'
  | 'network-adapter';

interface ClassMembers {
  readonly codes: readonly string[];
  /** Also matches an MTP interface (vendor class `ff` named "MTP"), which has no code of its own. */
  readonly mtp: boolean;
}

const RNDIS = ['e0:01:03', 'ef:04:01'];

const CLASS_MEMBERS: Readonly<Record<InterfaceClassName, ClassMembers>> = {
  'mass-storage': { codes: ['08:*:*'], mtp: false },
  'still-image': { codes: ['06:*:*'], mtp: false },
  ptp: { codes: ['06:*:*'], mtp: false },
  mtp: { codes: [], mtp: true },
  phone: { codes: ['06:*:*'], mtp: true },
  printer: { codes: ['07:*:*'], mtp: false },
  hid: { codes: ['03:*:*'], mtp: false },
  audio: { codes: ['01:*:*'], mtp: false },
  video: { codes: ['0e:*:*'], mtp: false },
  'smart-card': { codes: ['0b:*:*'], mtp: false },
  hub: { codes: ['09:*:*'], mtp: false },
  wireless: { codes: ['e0:*:*'], mtp: false },
  bluetooth: { codes: ['e0:01:01'], mtp: false },
  rndis: { codes: RNDIS, mtp: false },
  'cdc-network': { codes: ['02:*:*', '0a:*:*', ...RNDIS], mtp: false },
  'network-adapter': { codes: ['02:*:*', '0a:*:*', ...RNDIS], mtp: false },
};

/** All class names, for error messages and documentation. */
export const INTERFACE_CLASS_NAMES = Object.keys(CLASS_MEMBERS) as readonly InterfaceClassName[];

export function isInterfaceClassName(word: string): word is InterfaceClassName {
  return Object.prototype.hasOwnProperty.call(CLASS_MEMBERS, word);
}

/** The codes and MTP flag a class name stands for (for documentation and the dashboard). */
export function interfaceClassMembers(name: InterfaceClassName): { readonly codes: readonly string[]; readonly mtp: boolean } {
  return CLASS_MEMBERS[name];
}

/** A parsed `cc:ss:pp` pattern; `null` is `*`. */
interface CodePattern {
  readonly bClass: number;
  readonly subclass: number | null;
  readonly protocol: number | null;
}

const CODE_PATTERN = /^([0-9a-fA-F]{2}):([0-9a-fA-F]{2}|\*):([0-9a-fA-F]{2}|\*)$/;

/**
 * Validates and normalises (lower-cases) an interface code as USBGuard's `USBInterfaceType` accepts
 * it: the class is always given; `*` may replace the protocol, or the subclass and the protocol, but
 * never the subclass alone (`08:*:50` is an error). Returns `null` when invalid.
 */
export function normaliseInterfaceCode(text: string): string | null {
  const match = CODE_PATTERN.exec(text);
  if (match === null) return null;
  if (match[2] === '*' && match[3] !== '*') return null;
  return text.toLowerCase();
}

const compiledCodes = new Map<string, CodePattern>();

/** `code` must be valid (`normaliseInterfaceCode`); cached because rules are evaluated often. */
function compileCode(code: string): CodePattern {
  let compiled = compiledCodes.get(code);
  if (compiled === undefined) {
    const [c = '', s = '', p = ''] = code.split(':');
    compiled = {
      bClass: parseInt(c, 16),
      subclass: s === '*' ? null : parseInt(s, 16),
      protocol: p === '*' ? null : parseInt(p, 16),
    };
    // The set of valid codes is finite (256 * 257 * 257 at worst) but keep the cache small anyway.
    if (compiledCodes.size > 4096) compiledCodes.clear();
    compiledCodes.set(code, compiled);
  }
  return compiled;
}

/** One interface of a device, as the matcher sees it. */
export interface DeviceInterface {
  /** `cc:ss:pp`, lower-case hex. */
  readonly code: string;
  /** The iInterface string, `''` when unknown. */
  readonly name: string;
}

const DEVICE_CODE = /^[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/;

function codeCovers(pattern: string, code: string): boolean {
  // A malformed device code (the schema rejects them) is matched by nothing rather than guessed at.
  if (!DEVICE_CODE.test(code)) return false;
  const p = compileCode(pattern);
  const d = compileCode(code);
  return (
    p.bClass === d.bClass &&
    (p.subclass === null || p.subclass === d.subclass) &&
    (p.protocol === null || p.protocol === d.protocol)
  );
}

/**
 * Whether an interface is MTP: vendor-specific class `ff` whose iInterface string is "MTP" (what
 * libmtp and Windows look for), compared case-insensitively after trimming.
 */
export function isMtpInterface(device: DeviceInterface): boolean {
  return device.code.startsWith('ff:') && /^mtp\b/i.test(device.name.trim());
}

/**
 * Whether one rule value (a code pattern or a class name) matches one device interface. A class name
 * matches an interface when any of its codes does (or, for `mtp`/`phone`, when it is MTP): it is one
 * element of the rule's set, never several — see README.md, "Class names inside set operators".
 */
export function interfacePatternCovers(pattern: string, device: DeviceInterface): boolean {
  if (isInterfaceClassName(pattern)) {
    const members = CLASS_MEMBERS[pattern];
    return members.codes.some((code) => codeCovers(code, device.code)) || (members.mtp && isMtpInterface(device));
  }
  return codeCovers(pattern, device.code);
}
