import { z } from 'zod';
import { err, ok, type Result } from './result.js';

/**
 * The lock (DESIGN.md §6): its states, what moves it, and the administrator recovery codes.
 * Pure: no `node:*`. The agent owns the state machine (`agent/lock/lock-state.ts`); the lock screen
 * and the server only read these shapes. Hash and HMAC functions are injected (as in `journal.ts`):
 * the agent and the server pass Node's.
 */

export const LOCK_STATES = ['locked', 'second-factor', 'unlocked'] as const;
export type LockState = (typeof LOCK_STATES)[number];
export const LockStateSchema = z.enum(LOCK_STATES);

/** What moved the lock. Lock triggers go to `locked`; factor triggers advance it. */
export const LOCK_TRIGGERS = [
  'session-start',
  'idle',
  'resume',
  'os-session-lock',
  'remote-lock',
  'manual-lock',
  /** A policy violation whose policy says lock (e.g. network `alert-lock`). */
  'policy-violation',
  'ui-gone',
  'ui-heartbeat-missed',
  /** The agent's clock ran backwards: fail closed. */
  'clock-jump',
  /** The first factor passed but no second factor came in time. */
  'second-factor-timeout',
  'first-factor',
  'second-factor',
  /** An administrator's recovery response with the `unlock` action. */
  'recovery',
] as const;
export type LockTrigger = (typeof LOCK_TRIGGERS)[number];
export const LockTriggerSchema = z.enum(LOCK_TRIGGERS);

/** One transition, ready to journal (`lock.locked` when `to` is `locked`, else `lock.unlocked` for `unlocked`). */
export const LockTransitionSchema = z.strictObject({
  from: LockStateSchema,
  to: LockStateSchema,
  trigger: LockTriggerSchema,
  /** Epoch ms of the agent's clock when it happened. */
  at: z.number().int().nonnegative(),
});
export type LockTransition = z.infer<typeof LockTransitionSchema>;

// ---------------------------------------------------------------------------------------------
// Administrator recovery: challenge and response codes, dictated over the phone.
//
// Only decimal digits (read aloud in Japanese without ambiguity, typed on any keypad), in groups
// of 4 digits + 1 Damm check digit. Damm catches every single-digit error and every adjacent
// transposition within a group, so the decoder can name the group that was misheard.
// Full-width digits (０-９, from a Japanese IME), spaces and hyphens are accepted on input.
// ---------------------------------------------------------------------------------------------

/** Recovery actions. `unlock`: one unlock without factors (clears the lockout). `reset-lockout`: clears the lockout only. */
export const RECOVERY_ACTIONS = ['unlock', 'reset-lockout'] as const;
export type RecoveryAction = (typeof RECOVERY_ACTIONS)[number];
export const RecoveryActionSchema = z.enum(RECOVERY_ACTIONS);

const DAMM_TABLE: readonly (readonly number[])[] = [
  [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
  [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
  [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
  [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
  [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
  [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
  [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
  [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
  [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
  [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/** Damm check digit of a string of decimal digits (`''` → 0). */
export function dammCheckDigit(digits: string): number {
  let interim = 0;
  for (const ch of digits) {
    const d = ch.charCodeAt(0) - 48;
    if (d < 0 || d > 9) throw new RangeError('dammCheckDigit: decimal digits only');
    interim = DAMM_TABLE[interim]![d]!;
  }
  return interim;
}

const GROUP_DATA = 4;
const GROUP_SIZE = GROUP_DATA + 1;

/** Splits digits into groups of 4, each followed by its Damm digit, joined by `-`. Length must be a multiple of 4. */
export function groupWithCheckDigits(digits: string): string {
  if (!/^\d*$/.test(digits) || digits.length % GROUP_DATA !== 0) throw new RangeError('groupWithCheckDigits: a multiple of 4 decimal digits');
  const groups: string[] = [];
  for (let i = 0; i < digits.length; i += GROUP_DATA) {
    const data = digits.slice(i, i + GROUP_DATA);
    groups.push(data + String(dammCheckDigit(data)));
  }
  return groups.join('-');
}

export type CodeErrorCode = 'empty' | 'bad-character' | 'bad-length' | 'check-digit' | 'bad-field';
export interface CodeError {
  readonly code: CodeErrorCode;
  readonly message: string;
  /** 1-based groups whose check digit failed (for `check-digit`). */
  readonly groups?: readonly number[];
}

/** Most characters accepted on input before any parsing (bounds work on hostile input). */
export const MAX_CODE_INPUT = 200;

/**
 * Normalises typed input and checks every group. Returns the data digits (check digits removed).
 * Never throws, whatever the input.
 */
export function parseGroupedDigits(input: unknown, groupCount: number): Result<string, CodeErrorCode> & { groups?: readonly number[] } {
  if (typeof input !== 'string' || input.trim() === '') return err('empty', 'no code entered');
  if (input.length > MAX_CODE_INPUT) return err('bad-length', `the code is too long (expected ${groupCount} groups of ${GROUP_SIZE} digits)`);
  let digits = '';
  for (const ch of input) {
    const code = ch.charCodeAt(0);
    if (code >= 48 && code <= 57) digits += ch;
    else if (code >= 0xff10 && code <= 0xff19) digits += String.fromCharCode(code - 0xff10 + 48); // full-width ０-９
    else if (ch === ' ' || ch === '-' || ch === '\u3000' || ch === '\u2010' || ch === '\u2212' || ch === '\uff0d' || ch === '\t') continue;
    else return err('bad-character', 'only digits, spaces and hyphens are allowed');
  }
  if (digits.length !== groupCount * GROUP_SIZE) {
    return err('bad-length', `expected ${groupCount * GROUP_SIZE} digits (${groupCount} groups of ${GROUP_SIZE}), got ${digits.length}`);
  }
  const bad: number[] = [];
  let data = '';
  for (let g = 0; g < groupCount; g++) {
    const group = digits.slice(g * GROUP_SIZE, (g + 1) * GROUP_SIZE);
    // A group is valid when the Damm digit of all 5 digits is 0.
    if (dammCheckDigit(group) !== 0) bad.push(g + 1);
    data += group.slice(0, GROUP_DATA);
  }
  if (bad.length > 0) {
    return { ...err('check-digit', `group ${bad.join(', ')} was mistyped or misheard`), groups: bad };
  }
  return ok(data);
}

/**
 * The recovery challenge (24 data digits, 6 groups of 4+1 = 30 digits on screen):
 *
 * | digits | field |
 * |---|---|
 * | 1 | action (index in `RECOVERY_ACTIONS`) |
 * | 1 | key epoch mod 10 (which rotation of the device key the agent holds) |
 * | 4 | issued minute: minutes since the Unix epoch mod 10 000 (≈ 6.9 days; the server resolves it to the latest past minute) |
 * | 6 | device tag: first 6 decimal digits of SHA-256(deviceId) |
 * | 4 | user tag: first 4 decimal digits of SHA-256(user) |
 * | 8 | nonce: random |
 *
 * Device and user are tags, not the names: a UUID and a login name do not fit a code read over the
 * phone. The dashboard looks the tags up among its devices and that device's users and shows
 * what they match (more than one match is shown as such).
 */
export const CHALLENGE_GROUPS = 6;
export const RESPONSE_GROUPS = 3;
export const RECOVERY_VALIDITY_MS = 15 * 60_000;

export const RecoveryChallengeSchema = z.strictObject({
  action: RecoveryActionSchema,
  keyEpoch: z.int().min(0).max(9),
  issuedMinute: z.int().min(0).max(9_999),
  deviceTag: z.string().regex(/^\d{6}$/),
  userTag: z.string().regex(/^\d{4}$/),
  nonce: z.string().regex(/^\d{8}$/),
});
export type RecoveryChallenge = z.infer<typeof RecoveryChallengeSchema>;

/** Decimal digits of a lower-case SHA-256 hex digest, taken from its leading 48 bits. */
function hexToDigits(hex: string, count: number): string {
  const value = BigInt(`0x${hex.slice(0, 12)}`) % 10n ** BigInt(count);
  return value.toString().padStart(count, '0');
}

/** The tags the challenge carries; `sha256Hex` is injected (UTF-8 text → lower-case hex). */
export function recoveryTags(deviceId: string, user: string, sha256Hex: (text: string) => string): { deviceTag: string; userTag: string } {
  return { deviceTag: hexToDigits(sha256Hex(`sekimori-device:${deviceId}`), 6), userTag: hexToDigits(sha256Hex(`sekimori-user:${user}`), 4) };
}

/** Minutes since the epoch mod 10 000. */
export function issuedMinuteOf(epochMs: number): number {
  return Math.floor(epochMs / 60_000) % 10_000;
}

/** The 24 data digits of a challenge (what the response's HMAC covers). */
export function challengeDigits(challenge: RecoveryChallenge): string {
  const parsed = RecoveryChallengeSchema.parse(challenge);
  return (
    String(RECOVERY_ACTIONS.indexOf(parsed.action)) +
    String(parsed.keyEpoch) +
    String(parsed.issuedMinute).padStart(4, '0') +
    parsed.deviceTag +
    parsed.userTag +
    parsed.nonce
  );
}

/** The challenge as shown on the lock screen: `NNNNC-NNNNC-…` (6 groups). */
export function encodeChallenge(challenge: RecoveryChallenge): string {
  return groupWithCheckDigits(challengeDigits(challenge));
}

/** Decodes a typed challenge; never throws. A wrong check digit names the group(s). */
export function decodeChallenge(input: unknown): Result<RecoveryChallenge, CodeErrorCode> & { groups?: readonly number[] } {
  const parsed = parseGroupedDigits(input, CHALLENGE_GROUPS);
  if (!parsed.ok) return parsed;
  const d = parsed.value;
  const action = RECOVERY_ACTIONS[Number(d[0])];
  if (action === undefined) return err('bad-field', 'unknown action in the challenge');
  return ok({
    action,
    keyEpoch: Number(d[1]),
    issuedMinute: Number(d.slice(2, 6)),
    deviceTag: d.slice(6, 12),
    userTag: d.slice(12, 16),
    nonce: d.slice(16, 24),
  });
}

/**
 * The response's 12 data digits: HMAC-SHA256(deviceKey, "sekimori-recovery-v1:" + challenge digits),
 * leading 64 bits mod 10^12. `hmacSha256` is injected (key is the caller's; message UTF-8).
 */
export function responseDigits(challenge: RecoveryChallenge, hmacSha256: (message: string) => Uint8Array): string {
  const mac = hmacSha256(`sekimori-recovery-v1:${challengeDigits(challenge)}`);
  let value = 0n;
  for (let i = 0; i < 8; i++) value = (value << 8n) | BigInt(mac[i] ?? 0);
  return (value % 10n ** 12n).toString().padStart(12, '0');
}

/** The response as read to the user: `NNNNC-NNNNC-NNNNC`. */
export function encodeResponse(challenge: RecoveryChallenge, hmacSha256: (message: string) => Uint8Array): string {
  return groupWithCheckDigits(responseDigits(challenge, hmacSha256));
}

/** Checks a typed response's form and check digits; returns its 12 data digits. Never throws. */
export function decodeResponse(input: unknown): Result<string, CodeErrorCode> & { groups?: readonly number[] } {
  return parseGroupedDigits(input, RESPONSE_GROUPS);
}
