import { validatePolicy, type Policy, type Tier, type ValidatedPolicy } from '../../shared/policy.js';

/**
 * The built-in policies, one per tier (DESIGN.md §1), written in the same USBGuard rule language
 * as a server policy so they are read, journaled and tested the same way. They name no registered
 * device: a server policy adds those (rules before these, or exceptions). With no valid policy at
 * all the agent applies `mynumber` (fail closed; `FAIL_CLOSED_TIER`).
 *
 * Ordering matters (first match wins):
 * 1. BadUSB is rejected first — a device with a storage or network interface *and* a HID interface
 *    has no legitimate use and must never reach `allow … hid` below. Rejected on every tier (the
 *    design asks it of the strict tier; on the others `allow hid` would otherwise let it through).
 * 2. Export channels are blocked (per tier).
 * 3. What remains is allowed by class with `one-of`, never `match-all`: `match-all` is true for a
 *    device with no interfaces at all, which must fall through to the implicit `block`.
 * HID is allowed on every tier so the keyboard and mouse are never locked out; so are hubs, because
 * a blocked hub (a dock, a monitor) hides the keyboard behind it, and IC card readers, because they
 * are an authentication factor (多要素認証), not an export channel.
 */

const BADUSB = [
  'reject with-interface all-of { mass-storage hid } label "BadUSB: storage + keyboard"',
  'reject with-interface all-of { network-adapter hid } label "BadUSB: network + keyboard"',
];

const ALWAYS_ALLOWED = [
  'allow with-interface one-of { hid } label "keyboard / mouse"',
  'allow with-interface one-of { hub } label "hub"',
  'allow with-interface one-of { smart-card } label "IC card reader"',
];

const PROFILE_USB: Readonly<Record<Tier, Policy['usb']>> = {
  mynumber: {
    rules: [
      ...BADUSB,
      'block with-interface one-of { mass-storage } label "removable storage"',
      'block with-interface one-of { phone } label "phone / camera (MTP, PTP)"',
      'block with-interface one-of { network-adapter } label "USB network adapter"',
      'block with-interface one-of { wireless } label "Bluetooth / wireless adapter"',
      'block with-interface one-of { printer } label "printer"',
      ...ALWAYS_ALLOWED,
    ],
    readOnly: [],
    implicit: 'block',
  },
  lgwan: {
    // Storage is allowed and made read-only by the `readOnly` list; a server policy grants a
    // registered device write access with a read-write exception. Phones are blocked: MTP has no
    // block device, so read-only cannot be enforced on it.
    rules: [
      ...BADUSB,
      'block with-interface one-of { network-adapter } label "USB network adapter"',
      'block with-interface one-of { wireless } label "Bluetooth / wireless adapter"',
      'block with-interface one-of { phone } label "phone / camera (MTP, PTP)"',
      'allow with-interface one-of { mass-storage } label "removable storage (read-only)"',
      ...ALWAYS_ALLOWED,
      'allow with-interface one-of { printer } label "printer"',
    ],
    readOnly: ['with-interface one-of { mass-storage }'],
    implicit: 'block',
  },
  internet: {
    // Storage only for registered devices: the built-in profile knows none, so all is blocked here
    // until a server policy allows a device before these rules. Meeting devices (audio, video) are
    // normal on this tier. Network adapters would bridge tiers, so they stay blocked.
    rules: [
      ...BADUSB,
      'block with-interface one-of { mass-storage } label "unregistered removable storage"',
      'block with-interface one-of { phone } label "phone / camera (MTP, PTP)"',
      'block with-interface one-of { network-adapter } label "USB network adapter"',
      'block with-interface one-of { wireless } label "Bluetooth / wireless adapter"',
      ...ALWAYS_ALLOWED,
      'allow with-interface one-of { printer } label "printer"',
      'allow with-interface one-of { audio video } label "headset / camera"',
    ],
    readOnly: [],
    implicit: 'block',
  },
};

/**
 * Two different factors (知識 + 所持: PIN + TOTP) on the My Number tier as the seed demands, and on
 * LGWAN too (it handles personal data as well). The schema also names `smartcard` and `fido2` for
 * later; until they are built the agent serves any possession factor with TOTP (never with less).
 */
const PROFILE_LOCK: Readonly<Record<Tier, Policy['lock']>> = {
  mynumber: { idleSeconds: 300, onResume: true, onSessionStart: true, factors: ['pin', 'totp'], maxFailures: 5, offlineDays: 14 },
  lgwan: { idleSeconds: 600, onResume: true, onSessionStart: true, factors: ['pin', 'totp'], maxFailures: 5, offlineDays: 14 },
  internet: { idleSeconds: 900, onResume: false, onSessionStart: true, factors: ['password'], maxFailures: 10, offlineDays: 30 },
};

/**
 * Software no tier may run (seed §3(2) 無許可ソフトウェア): file-sharing (P2P) programs — Winny and Share
 * leaked municipal data in Japan — and remote-control tools that bypass the tier's paths. Globs,
 * case-insensitive, matched against Debian package names and Windows program names by the
 * self-inspection's `software-inventory` check. A server policy replaces the list (and may add an
 * allow-list, which the built-in profiles cannot know).
 */
const DENIED_SOFTWARE = [
  'winny*',
  'share ex*',
  'perfect dark*',
  'cabos*',
  'limewire*',
  'bittorrent*',
  'utorrent*',
  'transmission*',
  'qbittorrent*',
  'deluge*',
  'ktorrent*',
  'amule*',
  'emule*',
  'anydesk*',
  'teamviewer*',
];

/** The tier applied when the agent has no valid policy at all (DESIGN.md §5: fail closed). */
export const FAIL_CLOSED_TIER: Tier = 'mynumber';

/**
 * The built-in policy document of a tier. `version` 1 and an `issuedAt` at the epoch: a built-in
 * policy is never the "last good" server policy, so it takes no part in the rollback check.
 */
export function builtInPolicyDocument(tier: Tier): Policy {
  return {
    version: 1,
    issuedAt: '1970-01-01T00:00:00Z',
    tier,
    mode: 'enforce',
    // Copies: callers may adjust the document (e.g. audit mode) without touching the constants.
    usb: structuredClone(PROFILE_USB[tier]),
    lock: structuredClone(PROFILE_LOCK[tier]),
    network: { allowedCidrs: [], onViolation: 'alert' },
    report: { heartbeatSeconds: 60 },
    exceptions: [],
    software: { denyList: [...DENIED_SOFTWARE] },
  };
}

const cache = new Map<Tier, ValidatedPolicy>();

/**
 * The built-in policy of a tier, validated and compiled (cached: the same object every call).
 * Throws only if a built-in rule does not parse — a bug the tests catch.
 */
export function builtInPolicy(tier: Tier = FAIL_CLOSED_TIER): ValidatedPolicy {
  const cached = cache.get(tier);
  if (cached !== undefined) return cached;
  const result = validatePolicy(builtInPolicyDocument(tier));
  if (!result.ok) throw new Error(`built-in ${tier} policy is invalid: ${result.error.message}`);
  cache.set(tier, result.value);
  return result.value;
}
