import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { Secret, TOTP } from 'otpauth';
import { PinHashSchema, type AdminRole, type PinHash } from '../shared/api.js';
import { err, ok, type Result } from '../shared/result.js';
import { parseUntrustedJson } from '../shared/safe-json.js';
import type { Clock } from './clock.js';
import { sha256Hex } from './crypto.js';
import { adminTotpAad, type DataKey } from './data-key.js';
import type { AdminSessionRecord, LoginThrottleRecord, Store, StoredAdminAccount } from './store.js';

/**
 * Administrator accounts (DESIGN.md §8): password (scrypt) + TOTP (RFC 6238), roles `admin` and
 * `auditor`, server-side sessions and login throttling.
 *
 * - Passwords: scrypt N=2^15, r=8, p=1, 32-byte key, 16-byte per-account salt, parameters stored
 *   with the hash (the same record as a staff PIN, `PinHashSchema`); NFKC-normalised first (a
 *   password typed with full-width characters equals its ASCII form); compared in constant time.
 *   An unknown account costs a verification against a dummy hash, so timing does not tell.
 * - TOTP: SHA-1, 6 digits, 30 s, ±1 step, 160-bit secret, stored sealed under the data key
 *   (AAD: the account's name). A code is accepted once: a login must use a later step than the
 *   account's last accepted one (compare-and-set in the store, so two racing logins cannot both use it).
 * - Sessions: 32 random bytes (base64url) in an HttpOnly cookie; the store keeps only their SHA-256.
 *   Idle timeout 30 min, absolute 12 h. The CSRF token is HMAC-SHA256(session id, label): the
 *   server recomputes it from the cookie, so it is bound to the session and never stored.
 * - Throttling, persisted per account name and per client address: from the 5th failure in a row
 *   (20th per address) each further attempt must wait 30 s × 2^(n−5) (× 2^(n−20)), at most 1 h;
 *   failures are forgotten 24 h after the last one, or (per account) at a successful login. While
 *   blocked, nothing is checked: the answer is 429 with Retry-After.
 */

export const PASSWORD_SCRYPT = { N: 2 ** 15, r: 8, p: 1, keyLength: 32 } as const;
export type ScryptParams = { readonly N: number; readonly r: number; readonly p: number; readonly keyLength: number };

export const NEW_PASSWORD_MIN_LENGTH = 12;
export const NEW_PASSWORD_MAX_LENGTH = 256;

export const SESSION_IDLE_MS = 30 * 60_000;
export const SESSION_ABSOLUTE_MS = 12 * 3_600_000;
/** A session's last activity is written at most this often (one write per request would cost an fsync each). */
export const SESSION_TOUCH_MS = 30_000;

export const ACCOUNT_FREE_FAILURES = 5;
export const ADDRESS_FREE_FAILURES = 20;
export const THROTTLE_BASE_MS = 30_000;
export const THROTTLE_MAX_MS = 3_600_000;
export const THROTTLE_MEMORY_MS = 24 * 3_600_000;

export const TOTP_PARAMS = { algorithm: 'SHA1', digits: 6, period: 30, window: 1, secretBytes: 20 } as const;
export const ADMIN_TOTP_ISSUER = '関守 Sekimori 管理者';

const scryptAsync = promisify(crypto.scrypt) as (password: crypto.BinaryLike, salt: crypto.BinaryLike, keylen: number, options: crypto.ScryptOptions) => Promise<Buffer>;

function scryptOf(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  return scryptAsync(password.normalize('NFKC'), salt, params.keyLength, { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r });
}

export async function hashPassword(password: string, params: ScryptParams = PASSWORD_SCRYPT): Promise<PinHash> {
  const salt = crypto.randomBytes(16);
  const hash = await scryptOf(password, salt, params);
  return { algorithm: 'scrypt', N: params.N, r: params.r, p: params.p, keyLength: params.keyLength, salt: salt.toString('base64'), hash: hash.toString('base64') };
}

export async function verifyPassword(password: string, record: PinHash): Promise<boolean> {
  const expected = Buffer.from(record.hash, 'base64');
  // Anything longer than the longest allowed password is hashed cut short (no length oracle) and fails.
  const candidate = await scryptOf(password.slice(0, NEW_PASSWORD_MAX_LENGTH * 4), Buffer.from(record.salt, 'base64'), record);
  return candidate.length === expected.length && crypto.timingSafeEqual(candidate, expected) && password.length <= NEW_PASSWORD_MAX_LENGTH * 4;
}

export type PasswordRuleError = 'password-too-short' | 'password-too-long';

/** A new password: 12 to 256 characters after NFKC. */
export function checkNewPassword(password: string): Result<string, PasswordRuleError> {
  const length = [...password.normalize('NFKC')].length;
  if (length < NEW_PASSWORD_MIN_LENGTH) return err('password-too-short', `a password needs at least ${NEW_PASSWORD_MIN_LENGTH} characters`);
  if (length > NEW_PASSWORD_MAX_LENGTH) return err('password-too-long', `a password may have at most ${NEW_PASSWORD_MAX_LENGTH} characters`);
  return ok(password);
}

/** Lower-case letters and digits without look-alikes (no 0/o, 1/l/i). */
const PASSWORD_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/** An initial password: 4 groups of 5 characters (about 99 bits), easy to read out and type. */
export function newInitialPassword(): string {
  const groups: string[] = [];
  for (let group = 0; group < 4; group += 1) {
    let text = '';
    for (let i = 0; i < 5; i += 1) text += PASSWORD_ALPHABET[crypto.randomInt(PASSWORD_ALPHABET.length)];
    groups.push(text);
  }
  return groups.join('-');
}

function totpOf(secret: Uint8Array, label: string): TOTP {
  return new TOTP({
    issuer: ADMIN_TOTP_ISSUER,
    label,
    secret: new Secret({ buffer: Uint8Array.from(secret).buffer }),
    algorithm: TOTP_PARAMS.algorithm,
    digits: TOTP_PARAMS.digits,
    period: TOTP_PARAMS.period,
  });
}

/** The TOTP step (counter) of an instant, epoch ms. */
export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PARAMS.period);
}

/** The step `code` is valid for at `nowMs` (±1 step), or null. Full-width digits and spaces are accepted. */
export function totpCodeStep(secret: Uint8Array, code: string, nowMs: number): number | null {
  const token = code.normalize('NFKC').replace(/\s+/g, '');
  if (!/^\d{6}$/.test(token)) return null;
  const delta = totpOf(secret, 'check').validate({ token, timestamp: nowMs, window: TOTP_PARAMS.window });
  return delta === null ? null : totpStep(nowMs) + delta;
}

/** The code of `secret` at `nowMs` (tests). */
export function adminTotpCode(secret: Uint8Array, nowMs: number): string {
  return totpOf(secret, 'code').generate({ timestamp: nowMs });
}

export interface CreatedAdmin {
  readonly user: string;
  readonly role: AdminRole;
  /** Shown once; the account must change it at its first login. */
  readonly initialPassword: string;
  /** The TOTP secret in base32 and as an `otpauth://` URI: shown once, for the authenticator app. */
  readonly totpSecret: string;
  readonly totpUri: string;
}

/**
 * Creates an account with a random initial password (to be changed at the first login) and a
 * fresh TOTP secret. Returns both once: the store holds only the password's hash and the sealed
 * secret. Fails with `exists` when the name is taken (case-insensitively).
 */
export async function createAdminAccount(
  deps: { readonly store: Store; readonly dataKey: DataKey },
  request: { readonly user: string; readonly role: AdminRole; readonly now: Date; readonly scrypt?: ScryptParams },
): Promise<Result<CreatedAdmin, 'exists'>> {
  const initialPassword = newInitialPassword();
  const secret = new Uint8Array(crypto.randomBytes(TOTP_PARAMS.secretBytes));
  const password = await hashPassword(initialPassword, request.scrypt);
  const added = await deps.store.addAdminAccount({
    name: request.user,
    role: request.role,
    passwordJson: JSON.stringify(password),
    mustChangePassword: true,
    sealedTotp: deps.dataKey.seal(secret, adminTotpAad(request.user)),
    createdAt: request.now.toISOString(),
  });
  if (!added) return err('exists', `an account named ${JSON.stringify(request.user)} exists already`);
  const totp = totpOf(secret, request.user);
  return ok({ user: request.user, role: request.role, initialPassword, totpSecret: totp.secret.base32, totpUri: totp.toString() });
}

function passwordOf(account: StoredAdminAccount): PinHash {
  const parsed = parseUntrustedJson(account.passwordJson);
  const record = parsed.ok ? PinHashSchema.safeParse(parsed.value) : null;
  if (!record?.success) throw new Error(`account ${account.id}: stored password hash is malformed`);
  return record.data;
}

/** Who is acting: a dashboard session, or the admin token of automation (`api-token`, role admin). */
export interface AdminActor {
  readonly user: string;
  readonly role: AdminRole;
  readonly via: 'session' | 'token';
  /** The session (null for the token). */
  readonly session: (AdminSessionRecord & { readonly id: string }) | null;
}

/** The actor name the admin token acts as in the trail and in `createdBy`. */
export const API_TOKEN_ACTOR = 'api-token';

export type LoginFailure =
  | { readonly code: 'throttled'; readonly retryAfterSeconds: number }
  | { readonly code: 'bad-credentials'; readonly knownAccount: boolean; readonly blocked: boolean };

export type LoginOutcome = { readonly ok: true; readonly value: LoginSuccess } | { readonly ok: false; readonly failure: LoginFailure };

export interface LoginSuccess {
  readonly sessionId: string;
  readonly session: AdminSessionRecord;
}

/** The CSRF token of a session: HMAC-SHA256 keyed by its id (never stored; recomputed from the cookie). */
export function csrfTokenOf(sessionId: string): string {
  return crypto.createHmac('sha256', sessionId).update('sekimori-admin-csrf-v1').digest('base64url');
}

/** Whether `presented` is the CSRF token of `sessionId` (constant time). */
export function csrfTokenMatches(sessionId: string, presented: string | undefined): boolean {
  if (presented === undefined || presented.length > 200) return false;
  const expected = Buffer.from(csrfTokenOf(sessionId));
  const actual = Buffer.from(presented);
  return expected.length === actual.length && crypto.timingSafeEqual(expected, actual);
}

const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function accountSubject(user: string): string {
  return `account:${user.toLowerCase()}`;
}

export function addressSubject(ip: string): string {
  return `ip:${ip}`;
}

/**
 * Logins, sessions and password changes over a `Store`. Every method takes "now" from `clock`.
 */
export class AdminAuthService {
  private dummyHash: Promise<PinHash> | undefined;

  constructor(
    private readonly store: Store,
    private readonly dataKey: DataKey,
    private readonly clock: Clock,
  ) {}

  /** Checks name, password and TOTP code together (one answer for any wrong part), with throttling. */
  async login(request: { readonly user: string; readonly password: string; readonly code: string }, ip: string): Promise<LoginOutcome> {
    const now = this.clock();
    const subjects = [accountSubject(request.user), addressSubject(ip)];
    const blockedUntil = blockEnd(await this.store.loginThrottle(subjects), now);
    if (blockedUntil !== null) {
      return { ok: false, failure: { code: 'throttled', retryAfterSeconds: Math.max(1, Math.ceil((blockedUntil - now.getTime()) / 1000)) } };
    }

    const account = await this.store.adminAccount(request.user);
    const passwordOk = await verifyPassword(request.password, account === null ? await this.dummy() : passwordOf(account));
    let step: number | null = null;
    if (account !== null && passwordOk) {
      const secret = this.dataKey.open(account.sealedTotp, adminTotpAad(account.name));
      step = totpCodeStep(new Uint8Array(secret), request.code, now.getTime());
      if (step !== null && account.totpLastStep !== null && step <= account.totpLastStep) step = null;
    }
    if (account === null || step === null || !(await this.store.acceptAdminLogin(account.id, step, now.toISOString()))) {
      const rows = await this.recordFailure(subjects, now);
      return { ok: false, failure: { code: 'bad-credentials', knownAccount: account !== null, blocked: blockEnd(rows, now) !== null } };
    }

    await this.store.clearLoginThrottle(accountSubject(account.name));
    await this.store.pruneAdminSessions(new Date(now.getTime() - SESSION_IDLE_MS).toISOString(), new Date(now.getTime() - SESSION_ABSOLUTE_MS).toISOString());
    const sessionId = crypto.randomBytes(32).toString('base64url');
    const record = { idHash: sha256Hex(sessionId), accountId: account.id, createdAt: now.toISOString(), lastSeenAt: now.toISOString(), ip };
    await this.store.addAdminSession(record);
    return { ok: true, value: { sessionId, session: { ...record, user: account.name, role: account.role, mustChangePassword: account.mustChangePassword } } };
  }

  /**
   * The actor of a session cookie's value, or why not: `none` (no such session, malformed) or
   * `expired` (idle or absolute timeout; the session is deleted).
   */
  async authenticate(sessionId: string): Promise<Result<AdminActor, 'none' | 'expired'>> {
    if (!SESSION_ID_PATTERN.test(sessionId)) return err('none', 'not logged in');
    const idHash = sha256Hex(sessionId);
    const session = await this.store.adminSession(idHash);
    if (session === null) return err('none', 'not logged in');
    const now = this.clock().getTime();
    const expiry = sessionExpiry(session);
    if (now >= expiry.idle || now >= expiry.absolute) {
      await this.store.deleteAdminSession(idHash);
      return err('expired', 'the session expired: log in again');
    }
    let current = session;
    if (now - Date.parse(session.lastSeenAt) >= SESSION_TOUCH_MS) {
      const at = new Date(now).toISOString();
      await this.store.touchAdminSession(idHash, at);
      current = { ...session, lastSeenAt: at };
    }
    return ok({ user: session.user, role: session.role, via: 'session', session: { ...current, id: sessionId } });
  }

  async logout(sessionId: string): Promise<void> {
    await this.store.deleteAdminSession(sha256Hex(sessionId));
  }

  /**
   * Changes the session's account password after checking the current one (a wrong one counts as
   * a failed login for the throttle). Clears "must change", ends the account's other sessions.
   */
  async changePassword(actor: AdminActor, request: { readonly currentPassword: string; readonly newPassword: string }, ip: string): Promise<Result<void, 'throttled' | 'wrong-password' | PasswordRuleError | 'same-password' | 'no-session'>> {
    const session = actor.session;
    if (session === null) return err('no-session', 'the admin token has no password');
    const now = this.clock();
    const subjects = [accountSubject(actor.user), addressSubject(ip)];
    if (blockEnd(await this.store.loginThrottle(subjects), now) !== null) return err('throttled', 'too many failed attempts: wait and try again');
    const account = await this.store.adminAccount(actor.user);
    if (account === null) return err('no-session', 'the account no longer exists');
    if (!(await verifyPassword(request.currentPassword, passwordOf(account)))) {
      await this.recordFailure(subjects, now);
      return err('wrong-password', 'the current password is wrong');
    }
    const checked = checkNewPassword(request.newPassword);
    if (!checked.ok) return checked;
    if (request.newPassword.normalize('NFKC') === request.currentPassword.normalize('NFKC')) return err('same-password', 'the new password must differ from the current one');
    const hash = await hashPassword(request.newPassword);
    await this.store.setAdminPassword(account.id, JSON.stringify(hash), false);
    await this.store.deleteAdminSessionsOf(account.id, session.idHash);
    return ok(undefined);
  }

  private recordFailure(subjects: readonly string[], now: Date): Promise<LoginThrottleRecord[]> {
    return this.store.recordLoginFailure(subjects, now.toISOString(), new Date(now.getTime() - THROTTLE_MEMORY_MS).toISOString(), (subject, failures) => {
      const delay = throttleDelayMs(failures, subject.startsWith('ip:') ? ADDRESS_FREE_FAILURES : ACCOUNT_FREE_FAILURES);
      return delay === 0 ? null : new Date(now.getTime() + delay).toISOString();
    });
  }

  private dummy(): Promise<PinHash> {
    this.dummyHash ??= hashPassword(crypto.randomBytes(16).toString('hex'));
    return this.dummyHash;
  }
}

/** When the session ends: idle and absolute deadlines, epoch ms. */
export function sessionExpiry(session: Pick<AdminSessionRecord, 'createdAt' | 'lastSeenAt'>): { idle: number; absolute: number } {
  return { idle: Date.parse(session.lastSeenAt) + SESSION_IDLE_MS, absolute: Date.parse(session.createdAt) + SESSION_ABSOLUTE_MS };
}

/** The latest running block among `rows` (epoch ms), or null. */
function blockEnd(rows: readonly LoginThrottleRecord[], now: Date): number | null {
  let end: number | null = null;
  for (const row of rows) {
    const until = row.blockedUntil === null ? null : Date.parse(row.blockedUntil);
    if (until !== null && until > now.getTime() && (end === null || until > end)) end = until;
  }
  return end;
}

/** How long a subject with `failures` failures in a row is blocked, ms (0: not blocked). */
export function throttleDelayMs(failures: number, freeFailures: number): number {
  if (failures < freeFailures) return 0;
  return Math.min(THROTTLE_BASE_MS * 2 ** Math.min(failures - freeFailures, 30), THROTTLE_MAX_MS);
}
