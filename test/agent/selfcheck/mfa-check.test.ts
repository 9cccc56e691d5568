import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mfaCheck, pamCallsSekimori, parsePasswd } from '../../../agent/selfcheck/checks/mfa-check.js';
import { builtInPolicyDocument } from '../../../agent/policy/profiles.js';
import { emptyUserFactors, type UserFactors } from '../../../agent/lock/secrets-store.js';
import type { Policy, Tier } from '../../../shared/policy.js';
import { useTempDirs } from '../../helpers/temp-dir.js';
import { fixture } from './fixtures.js';

const tempDir = useTempDirs();

const PIN: UserFactors['pin'] = { algorithm: 'scrypt', N: 1024, r: 8, p: 1, keyLength: 32, salt: 'c2FsdA==', hash: 'aGFzaA==' };
const SEALED = { iv: 'aXY=', ciphertext: 'Y2lwaGVy', tag: 'dGFn' };

function record(enrolled: boolean): UserFactors {
  return enrolled ? { ...emptyUserFactors(), pin: PIN, totp: SEALED, enrolledAtMs: 1 } : emptyUserFactors();
}

/** A temp root with etc/passwd and etc/pam.d/common-auth, and a state dir with lock secrets. */
async function machine(options: { pam: 'sekimori' | 'plain' | null; users: Record<string, boolean> | null; secretsMode?: number }): Promise<{ rootDir: string; stateDir: string }> {
  const rootDir = await tempDir();
  const stateDir = await tempDir();
  await fs.mkdir(path.join(rootDir, 'etc/pam.d'), { recursive: true });
  await fs.writeFile(path.join(rootDir, 'etc/passwd'), fixture('passwd'));
  if (options.pam) await fs.writeFile(path.join(rootDir, 'etc/pam.d/common-auth'), fixture(`common-auth-${options.pam}`));
  if (options.users) {
    const users = Object.fromEntries(Object.entries(options.users).map(([name, enrolled]) => [name, record(enrolled)]));
    const file = path.join(stateDir, 'lock-secrets.json');
    await fs.writeFile(file, JSON.stringify({ version: 1, users }), { mode: options.secretsMode ?? 0o600 });
    await fs.chmod(file, options.secretsMode ?? 0o600);
  }
  return { rootDir, stateDir };
}

const check = (where: { rootDir: string; stateDir: string }, tier: Tier = 'mynumber', lock: Policy['lock'] = builtInPolicyDocument(tier).lock, platform: NodeJS.Platform = 'linux') =>
  mfaCheck({ platform, tier, lockPolicy: () => lock, ...where });

describe('mfa check', () => {
  it('reads people from /etc/passwd: uid ≥ 1000 with a login shell, never nobody or service accounts', () => {
    expect(parsePasswd(fixture('passwd'))).toEqual([
      { name: 'yamada', uid: 1000 },
      { name: 'suzuki', uid: 1001 },
    ]);
  });

  it('finds the PAM step only on a line that is not a comment', () => {
    expect(pamCallsSekimori(fixture('common-auth-sekimori'))).toBe(true);
    expect(pamCallsSekimori(fixture('common-auth-plain'))).toBe(false);
  });

  it('passes on the My Number tier when every local user has both factors and the OS login calls pam-verify', async () => {
    const outcome = await check(await machine({ pam: 'sekimori', users: { yamada: true, suzuki: true, 'former-staff': false } })).run();
    expect(outcome).toMatchObject({ result: 'pass', evidence: { localUsers: 2, enrolled: 2, notEnrolled: [], osLoginIntegrated: true, factors: ['pin', 'totp'] } });
  });

  it('fails and names the local users who have not enrolled', async () => {
    const outcome = await check(await machine({ pam: 'sekimori', users: { yamada: true, suzuki: false } })).run();
    expect(outcome).toMatchObject({ result: 'fail', evidence: { notEnrolled: ['suzuki'] } });
    const none = await check(await machine({ pam: 'sekimori', users: null })).run();
    expect(none).toMatchObject({ result: 'fail', evidence: { notEnrolled: ['yamada', 'suzuki'] } });
  });

  it('fails when the OS login does not enforce the factors (no PAM step)', async () => {
    const outcome = await check(await machine({ pam: 'plain', users: { yamada: true, suzuki: true } })).run();
    expect(outcome).toMatchObject({ result: 'fail', evidence: { osLoginIntegrated: false } });
  });

  it('fails on the My Number tier when the lock policy names one factor only', async () => {
    const where = await machine({ pam: 'sekimori', users: { yamada: true, suzuki: true } });
    const outcome = await check(where, 'mynumber', { ...builtInPolicyDocument('mynumber').lock, factors: ['pin'] }).run();
    expect(outcome.result).toBe('fail');
    expect(outcome.evidence.problems).toContain('the lock policy does not name a knowledge and a possession factor');
  });

  it('fails when the secrets file is readable by others (the lock refuses it)', async () => {
    const outcome = await check(await machine({ pam: 'sekimori', users: { yamada: true, suzuki: true }, secretsMode: 0o644 })).run();
    expect(outcome.result).toBe('fail');
    expect(String(outcome.evidence.problems)).toMatch(/readable by others/);
  });

  it('passes on the internet tier, whose policy does not require multi-factor', async () => {
    expect(await check(await machine({ pam: null, users: null }), 'internet').run()).toMatchObject({ result: 'pass', evidence: { required: false } });
  });

  it('is unknown on Windows (no local user list or Credential Provider yet), and unknown without /etc/passwd', async () => {
    expect((await check(await machine({ pam: null, users: null }), 'mynumber', builtInPolicyDocument('mynumber').lock, 'win32').run()).result).toBe('unknown');
    expect((await check({ rootDir: await tempDir(), stateDir: await tempDir() }).run()).result).toBe('unknown');
  });
});
