import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import { err, ok, type Result } from '../../shared/result.js';

/**
 * The two factors (DESIGN.md §6): a PIN/password (scrypt) and a TOTP code (RFC 6238 via `otpauth`).
 * Pure functions over records; persistence and throttling are the caller's (`authenticator.ts`).
 */

// ------------------------------------------------------------------------------------------ PIN

/**
 * scrypt N=2^15, r=8, p=1, 32-byte key, 16-byte per-user salt: 32 MiB of memory and about 170 ms
 * per hash on the 2-core build machine (measured; see README). Parameters are stored with each
 * hash, so they can be raised later and old hashes still verify.
 */
export const SCRYPT_DEFAULTS = { N: 2 ** 15, r: 8, p: 1, keyLength: 32 } as const;

/** The stored form lives in the shared API (it roams through the server). */
export { PinHashSchema, type PinHash } from '../../shared/api.js';
import type { PinHash } from '../../shared/api.js';

export const PIN_MIN_LENGTH = 6;
export const PIN_MAX_LENGTH = 128;

const scryptAsync = promisify(crypto.scrypt) as (password: crypto.BinaryLike, salt: crypto.BinaryLike, keylen: number, options: crypto.ScryptOptions) => Promise<Buffer>;

/** NFKC: a PIN typed with full-width digits (Japanese IME) equals the same PIN in ASCII. */
export function normalizePin(pin: string): string {
  return pin.normalize('NFKC');
}

export type PinRuleError = 'pin-too-short' | 'pin-too-long';

/** Checks a new PIN against the length rules (after normalisation). */
export function checkNewPin(pin: string): Result<string, PinRuleError> {
  const normalized = normalizePin(pin);
  const length = [...normalized].length;
  if (length < PIN_MIN_LENGTH) return err('pin-too-short', `the PIN needs at least ${PIN_MIN_LENGTH} characters`);
  if (length > PIN_MAX_LENGTH) return err('pin-too-long', `the PIN may have at most ${PIN_MAX_LENGTH} characters`);
  return ok(normalized);
}

function scryptOf(pin: string, salt: Buffer, params: { N: number; r: number; p: number; keyLength: number }): Promise<Buffer> {
  // maxmem: 128·N·r bytes plus headroom; Node's default (32 MiB) is exactly too small for N=2^15, r=8.
  return scryptAsync(normalizePin(pin), salt, params.keyLength, { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r });
}

/** Hashes a PIN with a fresh random salt. */
export async function hashPin(pin: string, params: { N: number; r: number; p: number; keyLength: number } = SCRYPT_DEFAULTS): Promise<PinHash> {
  const salt = crypto.randomBytes(16);
  const hash = await scryptOf(pin, salt, params);
  return { algorithm: 'scrypt', N: params.N, r: params.r, p: params.p, keyLength: params.keyLength, salt: salt.toString('base64'), hash: hash.toString('base64') };
}

/** Whether `pin` matches; compares in constant time. Input longer than the maximum is hashed anyway (no length oracle) but fails. */
export async function verifyPin(pin: string, record: PinHash): Promise<boolean> {
  const expected = Buffer.from(record.hash, 'base64');
  const candidate = await scryptOf(pin.slice(0, PIN_MAX_LENGTH * 4), Buffer.from(record.salt, 'base64'), record);
  return candidate.length === expected.length && crypto.timingSafeEqual(candidate, expected) && pin.length <= PIN_MAX_LENGTH * 4;
}

// ----------------------------------------------------------------------------------------- TOTP

/** RFC 6238 as the design fixes it: SHA-1, 6 digits, 30 s, ±1 step, 160-bit secret. */
export const TOTP_PARAMS = { algorithm: 'SHA1', digits: 6, period: 30, window: 1, secretBytes: 20 } as const;
export const TOTP_ISSUER = '関守 Sekimori';

/** The time step (counter) of an instant, epoch ms. */
export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PARAMS.period);
}

export type TotpErrorCode = 'malformed' | 'wrong-code' | 'replayed';

/**
 * Verifies a 6-digit code against the secret at `nowMs`, within ±1 step, and refuses a step at or
 * before `lastAcceptedStep` (a code is accepted once only; also any earlier code, so one seen over
 * a shoulder cannot be used after a later one). Returns the step to store as the new last accepted.
 * Full-width digits and spaces are accepted on input.
 */
export function verifyTotp(secret: Uint8Array, code: string, nowMs: number, lastAcceptedStep: number | null): Result<{ step: number }, TotpErrorCode> {
  const token = code.normalize('NFKC').replace(/\s+/g, '');
  if (!/^\d{6}$/.test(token)) return err('malformed', 'a code has 6 digits');
  const delta = TOTP.validate({
    token,
    secret: new Secret({ buffer: Uint8Array.from(secret).buffer }),
    algorithm: TOTP_PARAMS.algorithm,
    digits: TOTP_PARAMS.digits,
    period: TOTP_PARAMS.period,
    timestamp: nowMs,
    window: TOTP_PARAMS.window,
  });
  if (delta === null) return err('wrong-code', 'the code is not valid now');
  const step = totpStep(nowMs) + delta;
  if (lastAcceptedStep !== null && step <= lastAcceptedStep) return err('replayed', 'this code was already used');
  return ok({ step });
}

/** The code for a secret at an instant (tests and the enrolment self-check). */
export function totpCode(secret: Uint8Array, nowMs: number, digits: number = TOTP_PARAMS.digits, algorithm: string = TOTP_PARAMS.algorithm): string {
  return TOTP.generate({ secret: new Secret({ buffer: Uint8Array.from(secret).buffer }), algorithm, digits, period: TOTP_PARAMS.period, timestamp: nowMs });
}

/** A fresh 160-bit TOTP secret. */
export function newTotpSecret(): Uint8Array {
  return new Uint8Array(crypto.randomBytes(TOTP_PARAMS.secretBytes));
}

export interface TotpEnrolmentView {
  /** `otpauth://totp/…` — contains the secret: show it to the enrolling user only, never log it. */
  readonly uri: string;
  /** The URI as an SVG QR code (text; render it as an image, not as HTML from an untrusted source). */
  readonly qrSvg: string;
  /** The secret in base32 for manual entry. */
  readonly secretBase32: string;
}

/** The enrolment QR: issuer `関守 Sekimori`, label `user@host`. */
export async function totpEnrolmentView(secret: Uint8Array, user: string, host: string): Promise<TotpEnrolmentView> {
  const totp = new TOTP({
    issuer: TOTP_ISSUER,
    label: `${user}@${host}`,
    secret: new Secret({ buffer: Uint8Array.from(secret).buffer }),
    algorithm: TOTP_PARAMS.algorithm,
    digits: TOTP_PARAMS.digits,
    period: TOTP_PARAMS.period,
  });
  const uri = totp.toString();
  const qrSvg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return { uri, qrSvg, secretBase32: totp.secret.base32 };
}
