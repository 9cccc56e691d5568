import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Secret } from 'otpauth';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeResponse, decodeChallenge } from '../../../shared/lock.js';
import type { UserCredentialBundle } from '../../../shared/api.js';
import type { Policy } from '../../../shared/policy.js';
import { Journal } from '../../../agent/journal/journal.js';
import { totpCode } from '../../../agent/lock/factors.js';
import { LockService, type CredentialServer } from '../../../agent/lock/lock-service.js';
import { hmacWith } from '../../../agent/lock/recovery.js';
import type { SessionPlatform } from '../../../agent/platform/session.js';
import { readJournal } from '../../helpers/agent-state.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();
const FAST = { N: 2 ** 10, r: 8, p: 1, keyLength: 32 };
const PIN = '739184';
const T0 = Date.parse('2026-11-26T01:00:00Z');
const DEVICE = `dev_${'a'.repeat(32)}`;

/** The OS session boundary: who is at the console, and whether the OS session lock was asked for. */
class TestSession implements SessionPlatform {
  consoleName: string | null = 'tanaka';
  osLocks = 0;
  consoleUser(): Promise<string | null> {
    return Promise.resolve(this.consoleName);
  }
  userName(): Promise<string | null> {
    return Promise.resolve(null);
  }
  lockSessions(): Promise<boolean> {
    this.osLocks++;
    return Promise.resolve(true);
  }
}

/** The server's credential store as a map (the real server route is covered by the integration test). */
class MemoryCredentialServer implements CredentialServer {
  readonly bundles = new Map<string, UserCredentialBundle>();
  reachable = true;
  put(bundle: UserCredentialBundle): Promise<boolean> {
    if (this.reachable) this.bundles.set(bundle.user, bundle);
    return Promise.resolve(this.reachable);
  }
  lookup(user: string): Promise<UserCredentialBundle | null> {
    return Promise.resolve(this.reachable ? (this.bundles.get(user) ?? null) : null);
  }
}

const open: LockService[] = [];
afterEach(() => {
  for (const service of open.splice(0)) service.dispose();
});

async function rig(options: { dir?: string; lock?: Partial<Policy['lock']>; server?: MemoryCredentialServer; lastContactAt?: string | null; reachable?: boolean } = {}) {
  const dir = options.dir ?? (await tempDir());
  const { journal } = await Journal.open(path.join(dir, 'journal.jsonl'));
  const clock = { wall: T0, mono: 1_000_000 };
  const session = new TestSession();
  const lock: Policy['lock'] = { idleSeconds: 300, onResume: true, onSessionStart: true, factors: ['pin', 'totp'], maxFailures: 3, offlineDays: 7, ...options.lock };
  let lastContactAt = options.lastContactAt === undefined ? new Date(T0).toISOString() : options.lastContactAt;
  let reachable = options.reachable ?? true;
  const service = await LockService.open({
    stateDir: dir,
    journal,
    logger: winston.createLogger({ silent: true }),
    policy: () => lock,
    nowMs: () => clock.wall,
    monotonicMs: () => clock.mono,
    hostname: 'pc-0042',
    session,
    lastContactAt: () => lastContactAt,
    hasServer: () => true,
    serverReachable: () => reachable,
    deviceId: () => DEVICE,
    server: options.server ?? null,
    scrypt: FAST,
  });
  open.push(service);
  const advance = (ms: number): void => {
    clock.wall += ms;
    clock.mono += ms;
  };
  const entries = () => readJournal(dir);
  return { dir, journal, clock, session, service, advance, entries, setLastContact: (iso: string | null) => (lastContactAt = iso), setReachable: (value: boolean) => (reachable = value) };
}

/** Enrols the console user through the service, as the lock screen does; returns the phone's secret. */
async function enrol(r: Awaited<ReturnType<typeof rig>>): Promise<Uint8Array> {
  const offer = await r.service.enrolBegin(PIN);
  expect(offer.ok).toBe(true);
  expect(offer.offer!.qrSvg).toContain('<svg');
  const secret = Secret.fromBase32(offer.offer!.secret).bytes;
  expect((await r.service.enrolConfirm(totpCode(secret, r.clock.wall))).ok).toBe(true);
  r.advance(30_000);
  return secret;
}

describe('LockService', () => {
  it('walks locked → second-factor → unlocked with PIN then code, journaling each transition with its trigger', async () => {
    const r = await rig();
    const secret = await enrol(r);
    expect(r.service.state).toBe('locked');
    expect((await r.service.submit('totp', totpCode(secret, r.clock.wall))).error?.code).toBe('wrong-state');
    const pin = await r.service.submit('pin', PIN);
    expect(pin).toMatchObject({ ok: true, view: { state: 'second-factor', user: 'tanaka', enrolled: true } });
    const code = await r.service.submit('totp', totpCode(secret, r.clock.wall));
    expect(code).toMatchObject({ ok: true, view: { state: 'unlocked' } });
    // The same code again (after a manual lock) is refused as replayed.
    r.service.dispatch({ type: 'manual-lock' });
    expect((await r.service.submit('pin', PIN)).ok).toBe(true);
    expect((await r.service.submit('totp', totpCode(secret, r.clock.wall))).error?.code).toBe('replayed');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const lockEvents = (await r.entries()).filter((e) => e.type.startsWith('lock.') || e.type.startsWith('auth.'));
    expect(lockEvents.map((e) => [e.type, e.data.trigger ?? e.data.code ?? e.data.source])).toEqual([
      ['auth.enrolled', 'local'],
      ['lock.secondFactor', 'first-factor'],
      ['lock.unlocked', 'second-factor'],
      ['lock.locked', 'manual-lock'],
      ['lock.secondFactor', 'first-factor'],
      ['auth.failed', 'replayed'],
    ]);
    expect(lockEvents.every((e) => e.data.user === 'tanaka')).toBe(true);
    // Neither the PIN nor any code nor the secret is in the journal.
    const text = await fs.readFile(path.join(r.dir, 'journal.jsonl'), 'utf8');
    expect(text).not.toContain(PIN);
    expect(text).not.toContain(new Secret({ buffer: Uint8Array.from(secret).buffer }).base32);
  });

  it('counts wrong PINs, locks the user out at maxFailures, and only a recovery response clears it', async () => {
    const r = await rig();
    await enrol(r);
    expect(await r.service.submit('pin', '000000')).toMatchObject({ ok: false, error: { code: 'wrong-pin' }, view: { remainingAttempts: 2 } });
    await r.service.submit('pin', '000001');
    const third = await r.service.submit('pin', '000002');
    expect(third).toMatchObject({ ok: false, view: { lockedOut: true, remainingAttempts: 0 } });
    // No timer clears a lock-out (the server was reached meanwhile: not an offline refusal).
    r.advance(30 * 86_400_000);
    r.setLastContact(new Date(r.clock.wall).toISOString());
    expect(await r.service.submit('pin', PIN)).toMatchObject({ ok: false, error: { code: 'locked-out' } });

    // No key yet: the challenge cannot be given.
    expect((await r.service.recoveryChallenge('unlock')).error?.code).toBe('no-key');
    const key = crypto.randomBytes(32);
    await r.service.setRecoveryKey(key, 0);
    const asked = await r.service.recoveryChallenge('unlock');
    expect(asked.ok).toBe(true);
    const shown = asked.view.challenge!.code;
    const decoded = decodeChallenge(shown);
    if (!decoded.ok) throw new Error('challenge does not decode');
    const response = encodeResponse(decoded.value, hmacWith(key));
    // A typo in group 2 is reported as group 2, and is not an attempt.
    const typo = response.split('-').map((group, i) => (i === 1 ? `${(Number(group[0]) + 1) % 10}${group.slice(1)}` : group)).join('-');
    expect(await r.service.recoveryRespond(typo)).toMatchObject({ ok: false, error: { code: 'check-digit', groups: [2] } });
    expect(await r.service.recoveryRespond(response)).toMatchObject({ ok: true, view: { state: 'unlocked', lockedOut: false } });
    // Once only.
    expect((await r.service.recoveryRespond(response)).error?.code).toBe('no-challenge');
    expect(r.service.recoveryReport()).toEqual({ keyEpoch: 1, rotationDue: true });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const types = (await r.entries()).map((e) => e.type);
    expect(types.filter((t) => t === 'auth.failed')).toHaveLength(3);
    expect(types).toContain('auth.lockedOut');
    expect(types).toContain('auth.recovered');
  });

  it('locks on idle, on resume and on a policy violation, and the OS session lock follows a lock screen that went away', async () => {
    const r = await rig();
    const secret = await enrol(r);
    const unlock = async () => {
      expect((await r.service.submit('pin', PIN)).ok).toBe(true);
      r.advance(30_000);
      expect((await r.service.submit('totp', totpCode(secret, r.clock.wall))).ok).toBe(true);
    };
    await unlock();
    r.advance(299_000);
    r.service.dispatch({ type: 'activity' });
    r.advance(299_000);
    r.service.dispatch({ type: 'tick' });
    expect(r.service.state).toBe('unlocked');
    r.advance(1_000);
    r.service.dispatch({ type: 'tick' });
    expect(r.service.state).toBe('locked');
    await unlock();
    r.service.dispatch({ type: 'resume' });
    expect(r.service.state).toBe('locked');
    await unlock();
    r.service.dispatch({ type: 'policy-violation' });
    expect(r.service.state).toBe('locked');
    // A lock screen that stops sending heartbeats: reported once, and the OS session is locked.
    r.service.dispatch({ type: 'ui-heartbeat' });
    r.advance(15_000);
    r.service.dispatch({ type: 'tick' });
    r.advance(60_000);
    r.service.dispatch({ type: 'tick' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(r.session.osLocks).toBe(1);
    const triggers = (await r.entries()).filter((e) => e.type === 'lock.locked').map((e) => e.data.trigger);
    expect(triggers).toEqual(['idle', 'resume', 'policy-violation', 'ui-heartbeat-missed']);
    const missed = (await r.entries()).find((e) => e.data.trigger === 'ui-heartbeat-missed');
    expect(missed?.data.osSessionLocked).toBe(true);
  });

  it('keeps cached factors working offline for offlineDays, shows the days left, then refuses', async () => {
    const r = await rig({ lock: { offlineDays: 2 } });
    const secret = await enrol(r);
    // Reachable: nothing to count down.
    expect((await r.service.view()).offlineDaysLeft).toBeNull();
    r.setReachable(false);
    expect((await r.service.view()).offlineDaysLeft).toBe(2);
    r.advance(86_400_000 + 60_000);
    expect((await r.service.view()).offlineDaysLeft).toBe(1);
    expect((await r.service.submit('pin', PIN)).ok).toBe(true);
    expect((await r.service.submit('totp', totpCode(secret, r.clock.wall))).ok).toBe(true);
    r.service.dispatch({ type: 'manual-lock' });
    r.advance(86_400_000);
    expect((await r.service.view()).offlineDaysLeft).toBe(0);
    expect(await r.service.submit('pin', PIN)).toMatchObject({ ok: false, error: { code: 'offline-expired' } });
    r.setLastContact(new Date(r.clock.wall).toISOString());
    r.setReachable(true);
    expect((await r.service.submit('pin', PIN)).ok).toBe(true);
    expect((await r.service.view()).offlineDaysLeft).toBeNull();
  });

  it('refuses attempts when no console user is known, and never unlocks a different user with the first user\'s PIN step', async () => {
    const r = await rig();
    const secret = await enrol(r);
    r.session.consoleName = null;
    expect((await r.service.submit('pin', PIN)).error?.code).toBe('no-console-user');
    r.session.consoleName = 'tanaka';
    expect((await r.service.submit('pin', PIN)).ok).toBe(true);
    r.session.consoleName = 'suzuki';
    expect((await r.service.submit('totp', totpCode(secret, r.clock.wall))).error?.code).toBe('wrong-state');
    expect(r.service.state).toBe('second-factor');
  });

  it('roams: an enrolment uploads to the server and another terminal installs it at the first attempt', async () => {
    const server = new MemoryCredentialServer();
    server.reachable = false;
    const a = await rig({ server });
    const secret = await enrol(a);
    expect(server.bundles.size).toBe(0);
    server.reachable = true;
    await a.service.syncCredentials();
    expect(server.bundles.get('tanaka')?.pin.algorithm).toBe('scrypt');

    const b = await rig({ server });
    expect((await b.service.view()).enrolled).toBe(false);
    expect((await b.service.submit('pin', PIN)).ok).toBe(true);
    expect((await b.service.submit('totp', totpCode(secret, b.clock.wall))).ok).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await b.entries()).find((e) => e.type === 'auth.enrolled')?.data.source).toBe('server');
    // The server copy does not reopen a locked-out user here, and a reset removes the local copy.
    await b.service.resetFactors('tanaka', 'cmd-1');
    server.bundles.clear();
    expect((await b.service.view()).enrolled).toBe(false);
  });

  it('PAM: both factors at once, one failure counted when either is wrong, and the answer does not say which', async () => {
    const r = await rig();
    const secret = await enrol(r);
    const wrongPin = await r.service.verifyBoth('tanaka', '000000', totpCode(secret, r.clock.wall), 'login');
    const wrongCode = await r.service.verifyBoth('tanaka', PIN, '000000', 'login');
    expect(wrongPin.error?.code).toBe(wrongCode.error?.code);
    expect(wrongCode.view.remainingAttempts).toBe(1);
    expect((await r.service.verifyBoth('tanaka', PIN, totpCode(secret, r.clock.wall), 'login')).ok).toBe(true);
    expect((await r.service.verifyBoth('tanaka', PIN, totpCode(secret, r.clock.wall), 'login')).ok).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const verified = (await r.entries()).filter((e) => e.type === 'auth.verified');
    expect(verified).toHaveLength(1);
    expect(verified[0]!.data).toMatchObject({ user: 'tanaka', via: 'pam', service: 'login' });
  });

  it('refuses to use a secrets file other users can read, and journals tamper.detected', async () => {
    const dir = await tempDir();
    const first = await rig({ dir });
    await enrol(first);
    first.service.dispose();
    await first.journal.close();
    await fs.chmod(path.join(dir, 'lock-secrets.json'), 0o644);
    const again = await rig({ dir });
    expect((await again.service.submit('pin', PIN)).error?.code).toBe('corrupt-secret');
    const tamper = (await again.entries()).filter((e) => e.type === 'tamper.detected');
    expect(tamper.at(-1)?.data).toMatchObject({ kind: 'lock-secrets', reason: 'bad-permissions' });
  });
});
