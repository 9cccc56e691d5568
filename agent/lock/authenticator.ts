import crypto from 'node:crypto';
import type winston from 'winston';
import { err, ok, type Result } from '../../shared/result.js';
import { Secret } from 'otpauth';
import type { UserCredentialBundle } from '../../shared/api.js';
import { checkNewPin, hashPin, totpEnrolmentView, verifyPin, verifyTotp, newTotpSecret, type TotpEnrolmentView, type PinRuleError, SCRYPT_DEFAULTS } from './factors.js';
import type { LockSecretsStore, UserFactors } from './secrets-store.js';
import { assessThrottle, clearThrottle, recordFailure, recordSuccess, type ThrottleState } from './throttle.js';

/**
 * The agent-side factor service: checks the throttle, verifies a factor, persists the outcome,
 * then answers. The lock state machine decides what a success means (`first-factor-ok`, …); this
 * class decides whether a factor is right and whether an attempt may be made at all.
 *
 * Contract for the caller (IPC handler / PAM helper):
 * - `verifyFirstFactor` only in `locked`, `verifySecondFactor` only in `second-factor` for the
 *   same user. A second-factor success is a complete unlock and resets the consecutive count.
 *   With a single-factor policy call `completeUnlock` after the first factor.
 * - On `ok: false` journal `auth.failed` (code, remaining); when `throttle.justLockedOut`, also
 *   `auth.lockedOut`. Never put the PIN or the code in the journal or a log.
 */

export type FactorErrorCode =
  | 'not-enrolled'
  | 'locked-out'
  | 'backoff'
  | 'wrong-pin'
  | 'wrong-code'
  | 'replayed'
  | 'malformed'
  | 'corrupt-secret';

/** What the lock screen shows about attempts. */
export interface ThrottleView {
  readonly remainingBeforeLockout: number;
  /** Epoch ms when the next attempt is allowed; null when it is allowed now. */
  readonly retryAtMs: number | null;
  readonly lockedOut: boolean;
  /** This very failure caused the lock-out (journal `auth.lockedOut` once). */
  readonly justLockedOut: boolean;
}

export type FactorOutcome =
  | { readonly ok: true; readonly throttle: ThrottleView }
  | { readonly ok: false; readonly error: { readonly code: FactorErrorCode; readonly message: string }; readonly throttle: ThrottleView };

export interface AuthenticatorOptions {
  readonly store: LockSecretsStore;
  /** Trusted time, epoch ms (`TrustedClock.nowMs`): never runs backwards. */
  readonly now: () => number;
  /** Policy `lock.maxFailures` (read on each attempt so a new policy applies at once). */
  readonly maxFailures: () => number;
  readonly logger: winston.Logger;
  /** Host name for the enrolment label `user@host`. */
  readonly hostName: string;
  /** scrypt parameters for new PINs (tests lower them). */
  readonly scrypt?: { N: number; r: number; p: number; keyLength: number };
}

/** Enrolment that is not confirmed within this time is discarded at the next attempt. */
export const ENROLMENT_TIMEOUT_MS = 10 * 60_000;

/** A short, stable, non-reversible reference to a user for operational logs (personal data stays out). */
export function userRef(user: string): string {
  return crypto.createHash('sha256').update(`sekimori-log:${user}`).digest('hex').slice(0, 10);
}

export class LockAuthenticator {
  private readonly log: winston.Logger;

  constructor(private readonly options: AuthenticatorOptions) {
    this.log = options.logger.child({ subsystem: 'lock-auth' });
  }

  private view(throttle: ThrottleState, justLockedOut = false): ThrottleView {
    const verdict = assessThrottle(throttle, this.options.now(), this.options.maxFailures());
    return {
      remainingBeforeLockout: verdict.remainingBeforeLockout,
      retryAtMs: verdict.allowed ? null : verdict.reason === 'backoff' ? verdict.retryAtMs : null,
      lockedOut: !verdict.allowed && verdict.reason === 'locked-out',
      justLockedOut,
    };
  }

  /** Enrolment and throttle status of a user, for the lock screen. */
  status(user: string): { enrolled: boolean; pendingEnrolment: boolean; throttle: ThrottleView } {
    const record = this.options.store.get(user);
    return { enrolled: record.pin !== null && record.totp !== null, pendingEnrolment: record.pending !== null, throttle: this.view(record.throttle) };
  }

  /** Refusal before any verification: not enrolled, locked out, or in back-off (not counted). */
  private gate(record: UserFactors): FactorOutcome | null {
    if (record.pin === null || record.totp === null) return { ok: false, error: { code: 'not-enrolled', message: 'no factors enrolled for this user' }, throttle: this.view(record.throttle) };
    const verdict = assessThrottle(record.throttle, this.options.now(), this.options.maxFailures());
    if (verdict.allowed) return null;
    if (verdict.reason === 'locked-out') return { ok: false, error: { code: 'locked-out', message: 'too many failures: an administrator must recover this terminal' }, throttle: this.view(record.throttle) };
    return { ok: false, error: { code: 'backoff', message: 'too many failures: wait before the next attempt' }, throttle: this.view(record.throttle) };
  }

  private async fail(user: string, code: FactorErrorCode, message: string): Promise<FactorOutcome> {
    const now = this.options.now();
    const max = this.options.maxFailures();
    let justLockedOut = false;
    const saved = await this.options.store.update(user, (r) => {
      const throttle = recordFailure(r.throttle, now, max);
      justLockedOut = throttle.lockedOut && !r.throttle.lockedOut;
      return { ...r, throttle };
    });
    const throttle = saved!.throttle;
    this.log.warn('factor rejected', { user: userRef(user), reason: code, consecutive: throttle.consecutive, lockedOut: throttle.lockedOut });
    return { ok: false, error: { code, message }, throttle: this.view(throttle, justLockedOut) };
  }

  /** First factor: the PIN/password. */
  async verifyFirstFactor(user: string, pin: string): Promise<FactorOutcome> {
    const record = this.options.store.get(user);
    const refused = this.gate(record);
    if (refused) return refused;
    if (!(await verifyPin(pin, record.pin!))) return this.fail(user, 'wrong-pin', 'wrong PIN');
    return { ok: true, throttle: this.view(record.throttle) };
  }

  /** Second factor: a TOTP code, once only. Success completes the unlock (consecutive count → 0). */
  async verifySecondFactor(user: string, code: string): Promise<FactorOutcome> {
    const record = this.options.store.get(user);
    const refused = this.gate(record);
    if (refused) return refused;
    const secret = this.options.store.open(user, 'totp', record.totp!);
    if (secret === null) {
      this.log.error('TOTP secret does not decrypt (machine key changed or file tampered)', { user: userRef(user) });
      return { ok: false, error: { code: 'corrupt-secret', message: 'the second factor cannot be checked: an administrator must reset it' }, throttle: this.view(record.throttle) };
    }
    const now = this.options.now();
    const result = verifyTotp(secret, code, now, record.totpLastStep);
    secret.fill(0);
    if (!result.ok) return this.fail(user, result.error.code, result.error.message);
    const saved = await this.acceptStep(user, result.value.step);
    if (saved === null) return this.fail(user, 'replayed', 'this code was already used');
    this.log.info('unlock factors accepted', { user: userRef(user) });
    return { ok: true, throttle: this.view(saved.throttle) };
  }

  /**
   * Both factors in one call (the PAM helper: PIN and code typed together). Both are checked
   * whatever the first result; one failure is counted when either is wrong, and the answer does
   * not say which one.
   */
  async verifyBoth(user: string, pin: string, code: string): Promise<FactorOutcome> {
    const record = this.options.store.get(user);
    const refused = this.gate(record);
    if (refused) return refused;
    const pinOk = await verifyPin(pin, record.pin!);
    const secret = this.options.store.open(user, 'totp', record.totp!);
    if (secret === null) return { ok: false, error: { code: 'corrupt-secret', message: 'the second factor cannot be checked' }, throttle: this.view(record.throttle) };
    const totp = verifyTotp(secret, code, this.options.now(), record.totpLastStep);
    secret.fill(0);
    if (!pinOk || !totp.ok) return this.fail(user, 'wrong-code', 'wrong PIN or code');
    const saved = await this.acceptStep(user, totp.value.step);
    if (saved === null) return this.fail(user, 'wrong-code', 'wrong PIN or code');
    return { ok: true, throttle: this.view(saved.throttle) };
  }

  /**
   * Stores `step` as the last accepted one and resets the consecutive count, inside the store's
   * serialised update, so two concurrent attempts with the same code cannot both pass. Returns
   * null when another attempt already used this step (or a later one).
   */
  private async acceptStep(user: string, step: number): Promise<UserFactors | null> {
    let replayed = false;
    const saved = await this.options.store.update(user, (r) => {
      if (r.totpLastStep !== null && step <= r.totpLastStep) {
        replayed = true;
        return r;
      }
      return { ...r, totpLastStep: step, throttle: recordSuccess(r.throttle) };
    });
    return replayed ? null : saved;
  }

  /** Single-factor policies: the first factor completed the unlock. */
  async completeUnlock(user: string): Promise<void> {
    await this.options.store.update(user, (r) => ({ ...r, throttle: recordSuccess(r.throttle) }));
  }

  /**
   * Starts enrolment: checks and hashes the PIN, creates a TOTP secret, keeps both as pending and
   * returns the QR for the user to scan. Nothing is active until `confirmEnrolment`.
   */
  async beginEnrolment(user: string, pin: string): Promise<Result<TotpEnrolmentView, PinRuleError>> {
    const checked = checkNewPin(pin);
    if (!checked.ok) return checked;
    const pinHash = await hashPin(checked.value, this.options.scrypt ?? SCRYPT_DEFAULTS);
    const secret = newTotpSecret();
    const view = await totpEnrolmentView(secret, user, this.options.hostName);
    const sealed = this.options.store.seal(user, 'pending-totp', secret);
    secret.fill(0);
    const now = this.options.now();
    await this.options.store.update(user, (r) => ({ ...r, pending: { pin: pinHash, totp: sealed, startedAtMs: now } }));
    this.log.info('enrolment started', { user: userRef(user) });
    return ok(view);
  }

  /**
   * Proves the pending enrolment with one valid code; then the PIN and secret become active, the
   * proving code's step is the last accepted (it cannot unlock), and the throttle is cleared.
   * The caller reports `agent.enrolled`-style status to the server (never the secrets).
   */
  async confirmEnrolment(user: string, code: string): Promise<Result<void, 'no-pending-enrolment' | 'enrolment-expired' | 'wrong-code' | 'malformed' | 'replayed'>> {
    const record = this.options.store.get(user);
    const pending = record.pending;
    if (pending === null) return err('no-pending-enrolment', 'no enrolment in progress');
    const now = this.options.now();
    if (now - pending.startedAtMs > ENROLMENT_TIMEOUT_MS || now < pending.startedAtMs) {
      await this.options.store.update(user, (r) => ({ ...r, pending: null }));
      return err('enrolment-expired', 'the enrolment expired: start again');
    }
    const secret = this.options.store.open(user, 'pending-totp', pending.totp);
    if (secret === null) return err('wrong-code', 'the enrolment cannot be checked: start again');
    const result = verifyTotp(secret, code, now, null);
    if (!result.ok) {
      secret.fill(0);
      return result.error.code === 'malformed' ? err('malformed', result.error.message) : err('wrong-code', 'the code does not match: check the phone clock and try again');
    }
    const active = this.options.store.seal(user, 'totp', secret);
    secret.fill(0);
    await this.options.store.update(user, (r) => ({
      ...r,
      pin: pending.pin,
      totp: active,
      totpLastStep: result.value.step,
      pending: null,
      enrolledAtMs: now,
      throttle: clearThrottle(),
      uploaded: false,
    }));
    this.log.info('enrolment confirmed', { user: userRef(user) });
    return ok(undefined);
  }

  /** Users whose enrolment the server does not hold yet (roaming upload pending). */
  usersToUpload(): string[] {
    return this.options.store.users().filter((user) => {
      const record = this.options.store.get(user);
      return record.pin !== null && record.totp !== null && record.uploaded === false;
    });
  }

  /** The enrolment as it travels to the server (only over the authenticated device channel); null when not enrolled or unreadable. */
  exportBundle(user: string): UserCredentialBundle | null {
    const record = this.options.store.get(user);
    if (record.pin === null || record.totp === null) return null;
    const secret = this.options.store.open(user, 'totp', record.totp);
    if (secret === null) return null;
    const totpSecret = new Secret({ buffer: Uint8Array.from(secret).buffer }).base32;
    secret.fill(0);
    return { user, pin: record.pin, totpSecret, enrolledAt: new Date(record.enrolledAtMs ?? this.options.now()).toISOString() };
  }

  async markUploaded(user: string): Promise<void> {
    await this.options.store.update(user, (r) => ({ ...r, uploaded: true }));
  }

  /**
   * Installs an enrolment made on another terminal (from the server). Keeps this terminal's own
   * throttle and last accepted step: a roaming copy never clears a lock-out or re-opens a used code.
   */
  async installBundle(bundle: UserCredentialBundle): Promise<void> {
    const secret = new Uint8Array(Secret.fromBase32(bundle.totpSecret).buffer);
    const sealed = this.options.store.seal(bundle.user, 'totp', secret);
    secret.fill(0);
    const enrolledAtMs = Date.parse(bundle.enrolledAt);
    await this.options.store.update(bundle.user, (r) => ({
      ...r,
      pin: bundle.pin,
      totp: sealed,
      pending: null,
      enrolledAtMs: Number.isFinite(enrolledAtMs) ? enrolledAtMs : this.options.now(),
      uploaded: true,
    }));
    this.log.info('enrolment installed from the server', { user: userRef(bundle.user) });
  }

  /** Administrator reset of a user's factors (server command): the user must enrol again. */
  async resetFactors(user: string): Promise<void> {
    await this.options.store.update(user, () => null);
    this.log.info('factors reset by administrator', { user: userRef(user) });
  }

  /** Administrator recovery: clears the lock-out and counts (journal `auth.recovered`). */
  async clearLockout(user: string): Promise<void> {
    await this.options.store.update(user, (r) => ({ ...r, throttle: clearThrottle() }));
    this.log.info('lock-out cleared by administrator recovery', { user: userRef(user) });
  }
}
