import type { Logger } from 'winston';
import type { UserCredentialBundle } from '../../shared/api.js';
import type { LockAttemptResult, LockErrorCode, LockView, EnrolmentOffer } from '../../shared/ipc.js';
import type { LockTransition, RecoveryAction } from '../../shared/lock.js';
import type { Policy } from '../../shared/policy.js';
import type { Journal } from '../journal/journal.js';
import type { SessionPlatform } from '../platform/session.js';
import { LockAuthenticator, userRef, type FactorOutcome } from './authenticator.js';
import { LockStateMachine, type LockConfig, type LockEvent } from './lock-state.js';
import { RecoveryVerifier, type IssuedChallenge } from './recovery.js';
import { LockSecretsStore } from './secrets-store.js';

const DAY_MS = 86_400_000;
/** A tick at least this often, so a policy change (idle seconds) takes effect without an event. */
const MAX_TICK_MS = 30_000;

/** What the lock needs from the server (absent when the terminal has none). */
export interface CredentialServer {
  /** Stores an enrolment for roaming; false when the server could not be reached or refused. */
  put(bundle: UserCredentialBundle): Promise<boolean>;
  /** An enrolment made on another terminal of this tier; null when none or unreachable. */
  lookup(user: string): Promise<UserCredentialBundle | null>;
}

export interface LockServiceOptions {
  readonly stateDir: string;
  readonly journal: Journal;
  readonly logger: Logger;
  /** The lock section of the policy in force (read on every use: a new policy applies at once). */
  readonly policy: () => Policy['lock'];
  /** Trusted wall time, epoch ms (TOTP steps, throttle, offline days). */
  readonly nowMs: () => number;
  /** Monotonic ms for the state machine's timers. */
  readonly monotonicMs: () => number;
  readonly hostname: string;
  readonly session: SessionPlatform;
  /** ISO time of the last successful contact with the server; null when never. */
  readonly lastContactAt: () => string | null;
  /** Whether this terminal reports to a server at all (offline days only count then). */
  readonly hasServer: () => boolean;
  /** False while the last attempt to reach the server failed (the lock screen then shows the offline days left). */
  readonly serverReachable: () => boolean;
  readonly deviceId: () => string | null;
  readonly server: CredentialServer | null;
  /** scrypt parameters for new PINs (tests lower them). */
  readonly scrypt?: { N: number; r: number; p: number; keyLength: number };
}

/** Knowledge factors and possession factors the policy may name; the possession ones not built yet are served by TOTP. */
const KNOWLEDGE = new Set(['pin', 'password']);

/**
 * The agent's lock: the state machine, the factor checks, recovery and the journal, behind the
 * methods the IPC handler and the PAM helper call. It owns every decision; the lock screen only
 * shows `view()` and forwards what the user typed.
 *
 * Fail closed: a secrets file with the wrong permissions or content is not used (journaled as
 * `tamper.detected`); every factor attempt is then refused and only administrator recovery or a
 * repair of the file helps.
 */
export class LockService {
  private readonly machine: LockStateMachine;
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners = new Set<(view: LockView) => void>();
  private recovery: RecoveryVerifier | null = null;
  private challenge: IssuedChallenge | null = null;
  /** The user who passed the first factor (the second must be the same user). */
  private firstFactorUser: string | null = null;
  private disposed = false;

  private constructor(
    private readonly options: LockServiceOptions,
    private readonly auth: LockAuthenticator | null,
  ) {
    this.machine = new LockStateMachine(this.lockConfig(), options.monotonicMs);
    this.machine.onDidTransition((transition) => this.transitioned(transition));
  }

  static async open(options: LockServiceOptions): Promise<LockService> {
    const opened = await LockSecretsStore.open(options.stateDir);
    let auth: LockAuthenticator | null = null;
    if (opened.ok) {
      auth = new LockAuthenticator({
        store: opened.value,
        now: options.nowMs,
        maxFailures: () => options.policy().maxFailures,
        logger: options.logger,
        hostName: options.hostname,
        scrypt: options.scrypt,
      });
    } else {
      options.logger.error('lock secrets refused; no factor can be checked until repaired', { reason: opened.error.code });
      await options.journal.append('tamper.detected', { kind: 'lock-secrets', reason: opened.error.code, message: opened.error.message });
    }
    const service = new LockService(options, auth);
    await service.openRecovery();
    service.schedule();
    return service;
  }

  private lockConfig(): LockConfig {
    const policy = this.options.policy();
    return { idleSeconds: policy.idleSeconds, requiredFactors: this.factors().length === 2 ? 2 : 1, secondFactorTimeoutMs: 120_000, uiHeartbeatTimeoutMs: 15_000 };
  }

  /** PIN always (fail closed: a policy naming only a possession factor still gets a knowledge one); TOTP when any possession factor is named. */
  private factors(): ('pin' | 'totp')[] {
    const named = this.options.policy().factors;
    return named.some((factor) => !KNOWLEDGE.has(factor)) ? ['pin', 'totp'] : ['pin'];
  }

  private async openRecovery(): Promise<RecoveryVerifier | null> {
    if (this.recovery) return this.recovery;
    const deviceId = this.options.deviceId();
    if (deviceId === null) return null;
    const verifier = await RecoveryVerifier.open(this.options.stateDir, deviceId);
    if (!(await verifier.checkMode())) {
      await this.options.journal.append('tamper.detected', { kind: 'lock-recovery', reason: 'bad-permissions', message: 'the recovery key file is readable by others' });
      return null;
    }
    this.recovery = verifier;
    return verifier;
  }

  get state(): LockView['state'] {
    return this.machine.state;
  }

  onDidChange(listener: (view: LockView) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Feeds an event from the session, the IPC or a command; journals and pushes whatever it changed. */
  dispatch(event: LockEvent): void {
    if (this.disposed) return;
    this.machine.setConfig(this.lockConfig());
    const transitions = this.machine.dispatch(event);
    this.schedule();
    if (transitions.length > 0) void this.changed();
  }

  private transitioned(transition: LockTransition): void {
    if (transition.to !== 'second-factor') this.firstFactorUser = null;
    if (transition.to === 'locked') this.challenge = null;
    const type = transition.to === 'locked' ? 'lock.locked' : transition.to === 'unlocked' ? 'lock.unlocked' : 'lock.secondFactor';
    const overlayLost = transition.trigger === 'ui-gone' || transition.trigger === 'ui-heartbeat-missed';
    void (async () => {
      const user = await this.options.session.consoleUser().catch(() => null);
      // The lock screen cannot cover the session: the OS session lock is the fallback.
      const osSessionLocked = overlayLost ? await this.options.session.lockSessions().catch(() => false) : undefined;
      await this.options.journal.append(type, { from: transition.from, to: transition.to, trigger: transition.trigger, user, ...(osSessionLocked === undefined ? {} : { osSessionLocked }) });
    })().catch((error: unknown) => this.options.logger.error('could not journal a lock transition', { error: String(error) }));
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.disposed) return;
    const due = this.machine.nextDeadlineMs();
    const delay = due === null ? MAX_TICK_MS : Math.min(Math.max(due, 0) + 5, MAX_TICK_MS);
    this.timer = setTimeout(() => this.dispatch({ type: 'tick' }), delay);
    this.timer.unref();
  }

  private async changed(): Promise<void> {
    if (this.listeners.size === 0) return;
    const view = await this.view();
    for (const listener of this.listeners) listener(view);
  }

  /** Ms since the last server contact; null without a server or before the first contact. */
  private sinceLastContactMs(): number | null {
    if (!this.options.hasServer()) return null;
    const last = this.options.lastContactAt();
    const lastMs = last === null ? NaN : Date.parse(last);
    return Number.isFinite(lastMs) ? this.options.nowMs() - lastMs : null;
  }

  /** Days the cached factors still work offline; null while the server is reachable, without one, or before the first contact. */
  private offlineDaysLeft(): number | null {
    const since = this.options.serverReachable() ? null : this.sinceLastContactMs();
    if (since === null) return null;
    return Math.max(0, this.options.policy().offlineDays - Math.max(0, Math.floor(since / DAY_MS)));
  }

  private offlineExpired(): boolean {
    const since = this.sinceLastContactMs();
    return since !== null && since > this.options.policy().offlineDays * DAY_MS;
  }

  async view(): Promise<LockView> {
    const user = await this.options.session.consoleUser().catch(() => null);
    const status = user !== null && this.auth ? this.auth.status(user) : null;
    const challenge = this.challenge && this.challenge.expiresAtMs > this.options.nowMs() ? this.challenge : null;
    return {
      state: this.machine.state,
      user,
      hostname: this.options.hostname,
      factors: this.factors(),
      enrolled: status?.enrolled ?? false,
      pendingEnrolment: status?.pendingEnrolment ?? false,
      remainingAttempts: status?.throttle.remainingBeforeLockout ?? 0,
      retryAt: status?.throttle.retryAtMs ? new Date(status.throttle.retryAtMs).toISOString() : null,
      lockedOut: status?.throttle.lockedOut ?? false,
      offlineDaysLeft: this.offlineDaysLeft(),
      challenge: challenge ? { code: challenge.code, action: challenge.challenge.action, expiresAt: new Date(challenge.expiresAtMs).toISOString() } : null,
      now: new Date(this.options.nowMs()).toISOString(),
    };
  }

  private async answer(ok: boolean, error?: { code: LockErrorCode; message: string; groups?: readonly number[] }): Promise<LockAttemptResult> {
    const view = await this.view();
    if (!error) return { ok, view };
    const { groups, ...rest } = error;
    return { ok, error: groups ? { ...rest, groups: [...groups] } : rest, view };
  }

  /** The console user, with their enrolment fetched from the server when this terminal has none (roaming). */
  private async consoleUserForAttempt(): Promise<{ user: string; auth: LockAuthenticator } | { error: LockErrorCode; message: string }> {
    if (!this.auth) return { error: 'corrupt-secret', message: 'the lock secrets on this terminal are unusable: call the administrator' };
    const user = await this.options.session.consoleUser().catch(() => null);
    if (user === null) return { error: 'no-console-user', message: 'no console session user is known' };
    await this.fetchRoamingEnrolment(user);
    return { user, auth: this.auth };
  }

  private async fetchRoamingEnrolment(user: string): Promise<void> {
    if (!this.auth || !this.options.server || this.auth.status(user).enrolled) return;
    const bundle = await this.options.server.lookup(user).catch(() => null);
    if (bundle === null || bundle.user !== user) return;
    await this.auth.installBundle(bundle);
    await this.options.journal.append('auth.enrolled', { user, source: 'server', enrolledAt: bundle.enrolledAt });
  }

  private async failed(user: string, factor: string, outcome: Extract<FactorOutcome, { ok: false }>, via: 'lock-screen' | 'pam', service?: string): Promise<void> {
    // Refusals that were not attempts (back-off, lock-out, not enrolled) are not failures to count or journal each time.
    if (outcome.error.code === 'backoff' || outcome.error.code === 'locked-out' || outcome.error.code === 'not-enrolled') return;
    await this.options.journal.append('auth.failed', { user, factor, code: outcome.error.code, remaining: outcome.throttle.remainingBeforeLockout, via, ...(service ? { service } : {}) });
    if (outcome.throttle.justLockedOut) await this.options.journal.append('auth.lockedOut', { user, via, maxFailures: this.options.policy().maxFailures });
  }

  /** One factor typed on the lock screen (PIN in `locked`, TOTP code in `second-factor`). */
  async submit(factor: 'pin' | 'totp', secret: string): Promise<LockAttemptResult> {
    const attemptEpoch = this.machine.snapshot.epoch;
    const state = this.machine.state;
    const expected = state === 'locked' ? 'pin' : state === 'second-factor' ? 'totp' : null;
    if (factor !== expected) return this.answer(false, { code: 'wrong-state', message: state === 'unlocked' ? 'the terminal is already unlocked' : `the lock expects the ${expected === 'pin' ? 'PIN' : 'code'} now` });
    const who = await this.consoleUserForAttempt();
    if ('error' in who) return this.answer(false, { code: who.error, message: who.message });
    const { user, auth } = who;
    if (this.offlineExpired()) return this.answer(false, { code: 'offline-expired', message: 'this terminal has not reached the server for too long: connect it or call the administrator' });
    if (factor === 'totp' && this.firstFactorUser !== user) return this.answer(false, { code: 'wrong-state', message: 'enter the PIN first' });
    const outcome = factor === 'pin' ? await auth.verifyFirstFactor(user, secret) : await auth.verifySecondFactor(user, secret);
    if (!outcome.ok) {
      await this.failed(user, factor, outcome, 'lock-screen');
      void this.changed();
      return this.answer(false, outcome.error);
    }
    if (factor === 'pin') {
      this.dispatch({ type: 'first-factor-ok', attemptEpoch });
      if (this.machine.state === 'second-factor') this.firstFactorUser = user;
      else if (this.machine.state === 'unlocked') await auth.completeUnlock(user);
    } else {
      this.dispatch({ type: 'second-factor-ok', attemptEpoch });
    }
    // A lock that happened while the factor was being checked wins: the answer says so.
    const view = await this.view();
    const advanced = factor === 'pin' ? view.state !== 'locked' : view.state === 'unlocked';
    return advanced ? { ok: true, view } : { ok: false, error: { code: 'wrong-state', message: 'the terminal locked again while the factor was checked: start again' }, view };
  }

  /** Both factors at once for `user` (the PAM helper at OS login or screen unlock). */
  async verifyBoth(user: string, pin: string, code: string, service: string | undefined): Promise<LockAttemptResult> {
    if (!this.auth) return this.answer(false, { code: 'corrupt-secret', message: 'the lock secrets on this terminal are unusable' });
    await this.fetchRoamingEnrolment(user);
    if (this.offlineExpired()) return this.answer(false, { code: 'offline-expired', message: 'this terminal has not reached the server for too long' });
    const outcome = await this.auth.verifyBoth(user, pin, code);
    if (!outcome.ok) {
      await this.failed(user, 'pin+totp', outcome, 'pam', service);
      return this.answer(false, outcome.error);
    }
    await this.options.journal.append('auth.verified', { user, via: 'pam', ...(service ? { service } : {}) });
    return this.answer(true);
  }

  async enrolBegin(pin: string): Promise<EnrolmentOffer> {
    const who = await this.consoleUserForAttempt();
    if ('error' in who) return { ok: false, error: { code: who.error, message: who.message }, view: await this.view() };
    if (who.auth.status(who.user).enrolled) return { ok: false, error: { code: 'already-enrolled', message: 'this user is already enrolled; an administrator can reset the factors' }, view: await this.view() };
    const begun = await who.auth.beginEnrolment(who.user, pin);
    if (!begun.ok) return { ok: false, error: { code: 'pin-rules', message: begun.error.message }, view: await this.view() };
    return { ok: true, offer: { uri: begun.value.uri, qrSvg: begun.value.qrSvg, secret: begun.value.secretBase32 }, view: await this.view() };
  }

  async enrolConfirm(code: string): Promise<LockAttemptResult> {
    const who = await this.consoleUserForAttempt();
    if ('error' in who) return this.answer(false, { code: who.error, message: who.message });
    const confirmed = await who.auth.confirmEnrolment(who.user, code);
    if (!confirmed.ok) return this.answer(false, { code: confirmed.error.code, message: confirmed.error.message });
    await this.options.journal.append('auth.enrolled', { user: who.user, source: 'local', factors: this.factors() });
    void this.syncCredentials();
    void this.changed();
    return this.answer(true);
  }

  async recoveryChallenge(action: RecoveryAction): Promise<LockAttemptResult> {
    const user = await this.options.session.consoleUser().catch(() => null);
    if (user === null) return this.answer(false, { code: 'no-console-user', message: 'no console session user is known' });
    const recovery = await this.openRecovery();
    if (!recovery) return this.answer(false, { code: 'no-key', message: 'this terminal has no recovery key yet (never reached the server)' });
    const issued = await recovery.issueChallenge(user, action, this.options.nowMs());
    if (!issued.ok) return this.answer(false, { code: 'no-key', message: issued.error.message });
    this.challenge = issued.value;
    void this.changed();
    return this.answer(true);
  }

  async recoveryRespond(response: string): Promise<LockAttemptResult> {
    const attemptEpoch = this.machine.snapshot.epoch;
    const recovery = await this.openRecovery();
    if (!recovery) return this.answer(false, { code: 'no-key', message: 'this terminal has no recovery key yet' });
    const verdict = await recovery.verifyResponse(response, this.options.nowMs());
    if (!verdict.ok) {
      if (verdict.error.code === 'expired' || verdict.error.code === 'too-many-attempts') this.challenge = null;
      if (verdict.error.code === 'wrong-response' || verdict.error.code === 'too-many-attempts') {
        await this.options.journal.append('auth.failed', { factor: 'recovery', code: verdict.error.code, via: 'lock-screen' });
      }
      return this.answer(false, { code: verdict.error.code, message: verdict.error.message, groups: verdict.groups });
    }
    this.challenge = null;
    const { user, action } = verdict.value;
    await this.auth?.clearLockout(user);
    await this.options.journal.append('auth.recovered', { user, action, keyEpoch: recovery.keyEpoch });
    if (action === 'unlock') this.dispatch({ type: 'recovery-unlock', attemptEpoch });
    void this.changed();
    return this.answer(true);
  }

  /** What the heartbeat reports about the recovery key (a missing key also asks for a fresh one). */
  recoveryReport(): { keyEpoch: number; rotationDue: boolean } | undefined {
    if (!this.recovery) return undefined;
    return { keyEpoch: this.recovery.keyEpoch, rotationDue: this.recovery.rotationDue || !this.recovery.hasKey };
  }

  /** A key from the server (enrolment or rotation). */
  async setRecoveryKey(key: Uint8Array, epoch: number): Promise<void> {
    const recovery = await this.openRecovery();
    if (!recovery) throw new Error('no device id yet: the recovery key cannot be stored');
    await recovery.setKey(key, epoch);
    this.challenge = null;
  }

  /** Administrator reset (server command): the user enrols again. */
  async resetFactors(user: string, commandId: string): Promise<void> {
    if (!this.auth) throw new Error('lock secrets unusable');
    await this.auth.resetFactors(user);
    await this.options.journal.append('auth.factorsReset', { user, commandId });
    void this.changed();
  }

  /** Uploads enrolments the server does not hold yet (after an enrolment, and on every heartbeat). */
  async syncCredentials(): Promise<void> {
    if (!this.auth || !this.options.server) return;
    for (const user of this.auth.usersToUpload()) {
      const bundle = this.auth.exportBundle(user);
      if (bundle === null) continue;
      if (await this.options.server.put(bundle).catch(() => false)) {
        await this.auth.markUploaded(user);
        this.options.logger.info('enrolment stored on the server for roaming', { user: userRef(user) });
      }
    }
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.machine.dispose();
    this.listeners.clear();
  }
}
