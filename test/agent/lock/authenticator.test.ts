import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Secret } from 'otpauth';
import winston from 'winston';
import { describe, expect, it } from 'vitest';
import { LockAuthenticator } from '../../../agent/lock/authenticator.js';
import { totpCode } from '../../../agent/lock/factors.js';
import { LOCK_MACHINE_KEY_FILE, LOCK_SECRETS_FILE, LockSecretsStore, redactSecrets } from '../../../agent/lock/secrets-store.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();
const FAST = { N: 2 ** 10, r: 8, p: 1, keyLength: 32 };
const PIN = '739184';
const T0 = 1_700_000_000_000;

/** A winston logger whose every line lands in `lines` (debug level: everything). */
function capturingLogger(lines: string[]): winston.Logger {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  return winston.createLogger({ level: 'debug', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] });
}

async function setup(dir: string, clock: { now: number }, lines: string[] = [], maxFailures = 10) {
  const opened = await LockSecretsStore.open(dir, 'linux');
  if (!opened.ok) throw new Error(opened.error.message);
  const auth = new LockAuthenticator({ store: opened.value, now: () => clock.now, maxFailures: () => maxFailures, logger: capturingLogger(lines), hostName: 'pc-0042', scrypt: FAST });
  return { store: opened.value, auth };
}

/** Enrols `user` and returns the TOTP secret as the phone would hold it. */
async function enrol(auth: LockAuthenticator, clock: { now: number }, user = 'tanaka'): Promise<Uint8Array> {
  const view = await auth.beginEnrolment(user, PIN);
  if (!view.ok) throw new Error(view.error.message);
  const secret = Secret.fromBase32(view.value.secretBase32).bytes;
  expect(await auth.confirmEnrolment(user, totpCode(secret, clock.now))).toEqual({ ok: true, value: undefined });
  clock.now += 30_000; // the proving code's step is used up
  return secret;
}

describe('enrolment', () => {
  it('keeps nothing active until one valid code is proven', async () => {
    const clock = { now: T0 };
    const { auth } = await setup(await tempDir(), clock);
    const view = await auth.beginEnrolment('tanaka', PIN);
    expect(view.ok).toBe(true);
    expect(auth.status('tanaka')).toMatchObject({ enrolled: false, pendingEnrolment: true });
    expect((await auth.verifyFirstFactor('tanaka', PIN)).ok).toBe(false);
    expect(await auth.confirmEnrolment('tanaka', '000000')).toMatchObject({ ok: false });
    expect(auth.status('tanaka').enrolled).toBe(false);
  });

  it('refuses the proving code as an unlock code afterwards', async () => {
    const clock = { now: T0 };
    const { auth } = await setup(await tempDir(), clock);
    const view = await auth.beginEnrolment('tanaka', PIN);
    const secret = Secret.fromBase32(view.ok ? view.value.secretBase32 : '').bytes;
    const code = totpCode(secret, clock.now);
    expect((await auth.confirmEnrolment('tanaka', code)).ok).toBe(true);
    expect(await auth.verifySecondFactor('tanaka', code)).toMatchObject({ ok: false, error: { code: 'replayed' } });
  });

  it('expires an enrolment that is not confirmed within 10 minutes', async () => {
    const clock = { now: T0 };
    const { auth } = await setup(await tempDir(), clock);
    const view = await auth.beginEnrolment('tanaka', PIN);
    const secret = Secret.fromBase32(view.ok ? view.value.secretBase32 : '').bytes;
    clock.now += 11 * 60_000;
    expect(await auth.confirmEnrolment('tanaka', totpCode(secret, clock.now))).toMatchObject({ ok: false, error: { code: 'enrolment-expired' } });
  });

  it('refuses a PIN that is too short', async () => {
    const { auth } = await setup(await tempDir(), { now: T0 });
    expect(await auth.beginEnrolment('tanaka', '123')).toMatchObject({ ok: false, error: { code: 'pin-too-short' } });
  });
});

describe('unlocking', () => {
  it('accepts the right PIN and then a fresh code, once only', async () => {
    const clock = { now: T0 };
    const { auth } = await setup(await tempDir(), clock);
    const secret = await enrol(auth, clock);
    expect((await auth.verifyFirstFactor('tanaka', PIN)).ok).toBe(true);
    const code = totpCode(secret, clock.now);
    expect((await auth.verifySecondFactor('tanaka', code)).ok).toBe(true);
    expect(await auth.verifySecondFactor('tanaka', code)).toMatchObject({ ok: false, error: { code: 'replayed' } });
  });

  it('lets only one of two concurrent attempts with the same code pass', async () => {
    const clock = { now: T0 };
    const { auth } = await setup(await tempDir(), clock);
    const secret = await enrol(auth, clock);
    const code = totpCode(secret, clock.now);
    const results = await Promise.all([auth.verifySecondFactor('tanaka', code), auth.verifySecondFactor('tanaka', code)]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
  });

  it('checks both factors together for PAM without saying which one was wrong', async () => {
    const clock = { now: T0 };
    const { auth } = await setup(await tempDir(), clock);
    const secret = await enrol(auth, clock);
    const wrongPin = await auth.verifyBoth('tanaka', '000000', totpCode(secret, clock.now));
    const wrongCode = await auth.verifyBoth('tanaka', PIN, '000000');
    expect(wrongPin).toMatchObject({ ok: false, error: { code: 'wrong-code' } });
    expect(wrongCode).toMatchObject({ ok: false, error: { code: 'wrong-code' } });
    expect((await auth.verifyBoth('tanaka', PIN, totpCode(secret, clock.now))).ok).toBe(true);
  });

  it('says not-enrolled for an unknown user without counting a failure', async () => {
    const { auth } = await setup(await tempDir(), { now: T0 });
    expect(await auth.verifyFirstFactor('nobody', PIN)).toMatchObject({ ok: false, error: { code: 'not-enrolled' } });
    expect(auth.status('nobody').throttle.remainingBeforeLockout).toBe(10);
  });
});

describe('throttling persisted in the secrets file', () => {
  it('keeps counting failures across a restart (a new store on the same file)', async () => {
    const dir = await tempDir();
    const clock = { now: T0 };
    const first = await setup(dir, clock);
    await enrol(first.auth, clock);
    for (let i = 0; i < 4; i++) expect(await first.auth.verifyFirstFactor('tanaka', `wrong-${i}`)).toMatchObject({ ok: false, error: { code: 'wrong-pin' } });
    const restarted = await setup(dir, clock);
    expect(restarted.auth.status('tanaka').throttle.remainingBeforeLockout).toBe(6);
    const fifth = await restarted.auth.verifyFirstFactor('tanaka', 'wrong-5');
    expect(fifth.throttle.retryAtMs).toBe(clock.now + 30_000);
    expect(await restarted.auth.verifyFirstFactor('tanaka', PIN)).toMatchObject({ ok: false, error: { code: 'backoff' } });
  });

  it('locks the user out at maxFailures, reports it once, and only recovery clears it', async () => {
    const dir = await tempDir();
    const clock = { now: T0 };
    const { auth } = await setup(dir, clock, [], 3);
    await enrol(auth, clock);
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await auth.verifyFirstFactor('tanaka', 'nope-nope'));
    expect(outcomes.map((o) => o.throttle.justLockedOut)).toEqual([false, false, true]);
    clock.now += 30 * 86_400_000;
    const restarted = await setup(dir, clock, [], 3);
    expect(await restarted.auth.verifyFirstFactor('tanaka', PIN)).toMatchObject({ ok: false, error: { code: 'locked-out' }, throttle: { lockedOut: true } });
    await restarted.auth.clearLockout('tanaka');
    expect((await restarted.auth.verifyFirstFactor('tanaka', PIN)).ok).toBe(true);
  });

  it('does not reset the count on a right PIN alone, only on a complete unlock', async () => {
    const clock = { now: T0 };
    const { auth } = await setup(await tempDir(), clock);
    const secret = await enrol(auth, clock);
    for (let i = 0; i < 3; i++) await auth.verifySecondFactor('tanaka', '000000');
    expect((await auth.verifyFirstFactor('tanaka', PIN)).ok).toBe(true);
    expect(auth.status('tanaka').throttle.remainingBeforeLockout).toBe(7);
    expect((await auth.verifySecondFactor('tanaka', totpCode(secret, clock.now))).ok).toBe(true);
    expect(auth.status('tanaka').throttle.remainingBeforeLockout).toBe(10);
  });
});

describe('secrets file', () => {
  it('is written 0600 with a 0600 machine key, and holds no PIN or TOTP secret in clear', async () => {
    const dir = await tempDir();
    const clock = { now: T0 };
    const { auth } = await setup(dir, clock);
    const secret = await enrol(auth, clock);
    for (const name of [LOCK_SECRETS_FILE, LOCK_MACHINE_KEY_FILE]) expect((await fs.stat(path.join(dir, name))).mode & 0o777).toBe(0o600);
    const text = await fs.readFile(path.join(dir, LOCK_SECRETS_FILE), 'utf8');
    expect(text).not.toContain(PIN);
    expect(text).not.toContain(new Secret({ buffer: Uint8Array.from(secret).buffer }).base32);
    expect(text).not.toContain(Buffer.from(secret).toString('base64'));
  });

  it('refuses to open a secrets file or key that group or others can read', async () => {
    const dir = await tempDir();
    const clock = { now: T0 };
    await enrol((await setup(dir, clock)).auth, clock);
    await fs.chmod(path.join(dir, LOCK_SECRETS_FILE), 0o644);
    expect(await LockSecretsStore.open(dir, 'linux')).toMatchObject({ ok: false, error: { code: 'bad-permissions' } });
    await fs.chmod(path.join(dir, LOCK_SECRETS_FILE), 0o600);
    await fs.chmod(path.join(dir, LOCK_MACHINE_KEY_FILE), 0o640);
    expect(await LockSecretsStore.open(dir, 'linux')).toMatchObject({ ok: false, error: { code: 'bad-permissions' } });
  });

  it('refuses a tampered file and a wrong-size key', async () => {
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, LOCK_SECRETS_FILE), '{"version":1,"users":{"x":{"pin":"plain"}}}', { mode: 0o600 });
    expect(await LockSecretsStore.open(dir, 'linux')).toMatchObject({ ok: false, error: { code: 'bad-file' } });
    const other = await tempDir();
    await fs.writeFile(path.join(other, LOCK_MACHINE_KEY_FILE), 'short', { mode: 0o600 });
    expect(await LockSecretsStore.open(other, 'linux')).toMatchObject({ ok: false, error: { code: 'bad-key' } });
  });

  it('cannot move a sealed secret to another user', async () => {
    const opened = await LockSecretsStore.open(await tempDir(), 'linux');
    if (!opened.ok) throw new Error('open');
    const sealed = opened.value.seal('tanaka', 'totp', new Uint8Array([1, 2, 3]));
    expect(opened.value.open('tanaka', 'totp', sealed)).toEqual(new Uint8Array([1, 2, 3]));
    expect(opened.value.open('suzuki', 'totp', sealed)).toBeNull();
    expect(opened.value.open('tanaka', 'pending-totp', sealed)).toBeNull();
  });

  it('reports a TOTP secret that no longer decrypts (machine key replaced) as corrupt, not as a wrong code', async () => {
    const dir = await tempDir();
    const clock = { now: T0 };
    const secret = await enrol((await setup(dir, clock)).auth, clock);
    await fs.writeFile(path.join(dir, LOCK_MACHINE_KEY_FILE), Buffer.alloc(32, 9), { mode: 0o600 });
    const { auth } = await setup(dir, clock);
    expect(await auth.verifySecondFactor('tanaka', totpCode(secret, clock.now))).toMatchObject({ ok: false, error: { code: 'corrupt-secret' } });
  });
});

describe('logging', () => {
  it('never writes a PIN, a code, the TOTP secret, the URI or the user name to any log line', async () => {
    const lines: string[] = [];
    const clock = { now: T0 };
    const { auth } = await setup(await tempDir(), clock, lines);
    const view = await auth.beginEnrolment('tanaka', PIN);
    if (!view.ok) throw new Error('enrolment');
    const secret = Secret.fromBase32(view.value.secretBase32).bytes;
    const proving = totpCode(secret, clock.now);
    await auth.confirmEnrolment('tanaka', proving);
    clock.now += 30_000;
    await auth.verifyFirstFactor('tanaka', 'wrong-pin-9');
    await auth.verifyFirstFactor('tanaka', PIN);
    const code = totpCode(secret, clock.now);
    await auth.verifySecondFactor('tanaka', code);
    await auth.verifySecondFactor('tanaka', code);
    expect(lines.length).toBeGreaterThan(3);
    const all = lines.join('\n');
    for (const forbidden of [PIN, 'wrong-pin-9', proving, code, view.value.secretBase32, 'otpauth', 'tanaka']) expect(all).not.toContain(forbidden);
  });

  it('redacts secret-looking fields and otpauth URIs in log metadata', () => {
    expect(redactSecrets({ user: 'u1', pin: '1234', nested: { totpSecret: 'ABC', list: [{ code: '123456' }] }, note: 'see otpauth://totp/x?secret=ABC now' })).toEqual({
      user: 'u1',
      pin: '[redacted]',
      nested: { totpSecret: '[redacted]', list: [{ code: '[redacted]' }] },
      note: 'see otpauth://[redacted] now',
    });
  });
});
