import QRCode from 'qrcode';
import type { EnrolmentOffer, LockAttemptResult, LockView } from '../../shared/ipc.js';
import { groupWithCheckDigits, parseGroupedDigits } from '../../shared/lock.js';
import { NOW_MS, ScriptedBackend, ok, type Answer } from './scripted-backend.js';

/**
 * A deterministic stand-in for main + agent behind the lock page's preload channels: plain rules,
 * no clock of its own (times come from `nowMs`). Answers exactly the shapes `main/ipc-handlers.ts`
 * answers (`BridgeResult` of the contract's types) and records every call.
 */
export const RIGHT_PIN = '246810';
export const RIGHT_CODE = '135790';
/** 24 data digits → 6 groups of 4 + a Damm check digit. */
export const CHALLENGE = groupWithCheckDigits('314159265358979323846264');
/** 12 data digits → 3 groups. */
export const RESPONSE = groupWithCheckDigits('271828182845');
export const ENROL_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

export function baseView(overrides: Partial<LockView> = {}): LockView {
  return {
    state: 'locked',
    user: 'tanaka.hanako',
    hostname: 'SHIYAKUSHO-PC-0123',
    factors: ['pin', 'totp'],
    enrolled: true,
    pendingEnrolment: false,
    remainingAttempts: 10,
    retryAt: null,
    lockedOut: false,
    offlineDaysLeft: null,
    challenge: null,
    now: new Date(NOW_MS).toISOString(),
    ...overrides,
  };
}

export class ScriptedLockAgent extends ScriptedBackend {
  qrSvg = '';

  constructor(public view: LockView = baseView()) {
    super();
  }

  /** Prepares the enrolment QR (a real one, from the `qrcode` package). */
  async withQr(svg?: string): Promise<this> {
    this.qrSvg = svg ?? (await QRCode.toString(this.uri(), { type: 'svg', margin: 1 }));
    return this;
  }

  uri(): string {
    return `otpauth://totp/${encodeURIComponent('関守 Sekimori')}:${encodeURIComponent(`${this.view.user ?? ''}@${this.view.hostname}`)}?secret=${ENROL_SECRET}&issuer=${encodeURIComponent('関守 Sekimori')}`;
  }

  protected answer(channel: string, args: unknown[]): Answer | null {
    switch (channel) {
      case 'sekimori:lock.get':
        return ok(this.view);
      case 'sekimori:lock.activity':
      case 'sekimori:lock.heartbeat':
        return ok(null);
      case 'sekimori:lock.submit':
        return ok(this.submit(String(args[0]), String(args[1])));
      case 'sekimori:lock.enrolBegin':
        return ok(this.enrolBegin(String(args[0])));
      case 'sekimori:lock.enrolConfirm':
        return ok(this.enrolConfirm(String(args[0])));
      case 'sekimori:lock.recoveryChallenge':
        this.view = { ...this.view, challenge: { code: CHALLENGE, action: 'unlock', expiresAt: new Date(Date.parse(this.view.now) + 15 * 60_000).toISOString() } };
        return ok({ ok: true, view: this.view } satisfies LockAttemptResult);
      case 'sekimori:lock.recoveryRespond':
        return ok(this.recoveryRespond(String(args[0])));
      default:
        return null;
    }
  }

  private fail(code: NonNullable<LockAttemptResult['error']>['code'], counts = true): LockAttemptResult {
    if (counts) {
      const remainingAttempts = Math.max(0, this.view.remainingAttempts - 1);
      this.view = { ...this.view, remainingAttempts, lockedOut: remainingAttempts === 0 };
    }
    return { ok: false, error: { code, message: `scripted ${code}` }, view: this.view };
  }

  private submit(factor: string, secret: string): LockAttemptResult {
    if (this.view.lockedOut) return this.fail('locked-out', false);
    if (this.view.retryAt !== null && Date.parse(this.view.retryAt) > Date.parse(this.view.now)) return this.fail('backoff', false);
    if (this.view.state === 'locked' && factor === 'pin') {
      if (secret !== RIGHT_PIN) return this.fail('wrong-pin');
      this.view = { ...this.view, state: 'second-factor' };
      return { ok: true, view: this.view };
    }
    if (this.view.state === 'second-factor' && factor === 'totp') {
      if (!/^\d{6}$/.test(secret)) return this.fail('malformed');
      if (secret !== RIGHT_CODE) return this.fail('wrong-code');
      this.view = { ...this.view, state: 'unlocked', remainingAttempts: 10 };
      return { ok: true, view: this.view };
    }
    return this.fail('wrong-state', false);
  }

  private enrolBegin(pin: string): EnrolmentOffer {
    if (pin.length < 6) return { ok: false, error: { code: 'pin-rules', message: 'scripted pin-rules' }, view: this.view };
    this.view = { ...this.view, pendingEnrolment: true };
    return { ok: true, offer: { uri: this.uri(), qrSvg: this.qrSvg, secret: ENROL_SECRET }, view: this.view };
  }

  private enrolConfirm(code: string): LockAttemptResult {
    if (!this.view.pendingEnrolment) return { ok: false, error: { code: 'no-pending-enrolment', message: 'scripted' }, view: this.view };
    if (code !== RIGHT_CODE) return { ok: false, error: { code: 'wrong-code', message: 'scripted' }, view: this.view };
    this.view = { ...this.view, enrolled: true, pendingEnrolment: false };
    return { ok: true, view: this.view };
  }

  private recoveryRespond(response: string): LockAttemptResult {
    if (this.view.challenge === null) return { ok: false, error: { code: 'no-challenge', message: 'scripted' }, view: this.view };
    const parsed = parseGroupedDigits(response, 3);
    if (!parsed.ok) {
      return { ok: false, error: { code: parsed.error.code, message: parsed.error.message, ...(parsed.groups ? { groups: [...parsed.groups] } : {}) }, view: this.view };
    }
    if (parsed.value !== RESPONSE.replace(/-/g, '').replace(/(\d{4})\d/g, '$1')) return { ok: false, error: { code: 'wrong-response', message: 'scripted' }, view: this.view };
    this.view = { ...this.view, state: 'unlocked', lockedOut: false, challenge: null, remainingAttempts: 10 };
    return { ok: true, view: this.view };
  }
}
