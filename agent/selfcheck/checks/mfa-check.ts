import fs from 'node:fs/promises';
import path from 'node:path';
import type { Policy, Tier } from '../../../shared/policy.js';
import { LOCK_SECRETS_FILE, LockSecretsFileSchema } from '../../lock/secrets-store.js';
import { builtInPolicyDocument } from '../../policy/profiles.js';
import { errorText, fail, pass, unknown, type SelfCheck } from '../check.js';

/** A local account a person can log in with. */
export interface LocalUser {
  readonly name: string;
  readonly uid: number;
}

/** Shells that mean "cannot log in": such accounts need no factors. */
const NO_LOGIN_SHELLS = /(?:^|\/)(?:nologin|false)$/;
/** `nobody` (and `nfsnobody`) have uid 65534 on Debian; never a person. */
const NOBODY_UID = 65_534;

/**
 * Parses `/etc/passwd`: the accounts of people — uid ≥ 1000 (Debian's first user uid), not
 * `nobody`, with a login shell. Malformed lines are skipped.
 */
export function parsePasswd(text: string, firstUid = 1000): LocalUser[] {
  const users: LocalUser[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length < 7) continue;
    const [name = '', , uidText = '', , , , shell = ''] = fields;
    const uid = Number(uidText);
    if (name === '' || !/^\d+$/.test(uidText) || uid < firstUid || uid === NOBODY_UID || NO_LOGIN_SHELLS.test(shell.trim())) continue;
    users.push({ name, uid });
  }
  return users;
}

/** Whether a PAM file calls Sekimori's `pam-verify` step (a line that is not a comment). */
export function pamCallsSekimori(text: string): boolean {
  return text.split('\n').some((line) => !line.trim().startsWith('#') && /pam_exec\.so/.test(line) && /sekimori|pam-verify/.test(line));
}

const KNOWLEDGE = new Set(['pin', 'password']);

/**
 * `mfa` (多要素認証, seed §6(3)①): on a tier that requires two factors (マイナンバー利用事務系 and
 * LGWAN接続系 by the built-in profiles, or any policy naming two):
 * - the lock policy names a knowledge and a possession factor;
 * - every local user (`/etc/passwd` under `rootDir`, uid ≥ 1000, a login shell) has both factors
 *   enrolled in the agent's lock secrets (names and counts only: no secret is read);
 * - the OS login enforces them: `etc/pam.d/common-auth` calls `sekimori-agent pam-verify`.
 * Unknown where the agent cannot tell (Windows: no Credential Provider yet, no local user list).
 */
export function mfaCheck(options: {
  readonly platform: NodeJS.Platform;
  readonly tier: Tier;
  readonly lockPolicy: () => Policy['lock'];
  /** Root of the file system the users and PAM files are read from (`/`; a temp dir in tests). */
  readonly rootDir: string;
  readonly stateDir: string;
}): SelfCheck {
  return {
    id: 'mfa',
    async run() {
      const factors = options.lockPolicy().factors;
      const twoFactorPolicy = factors.some((factor) => KNOWLEDGE.has(factor)) && factors.some((factor) => !KNOWLEDGE.has(factor));
      const profileRequiresTwo = builtInPolicyDocument(options.tier).lock.factors.length >= 2;
      const required = options.tier === 'mynumber' || profileRequiresTwo || twoFactorPolicy;
      const evidence: Record<string, unknown> = { tier: options.tier, factors: [...factors], required };
      if (!required) return pass({ ...evidence, detail: 'this tier does not require multi-factor authentication' });
      const problems: string[] = [];
      if (!twoFactorPolicy) problems.push('the lock policy does not name a knowledge and a possession factor');

      if (options.platform !== 'linux') {
        return problems.length > 0 ? fail({ ...evidence, problems }) : unknown({ ...evidence, detail: 'local users and OS login integration are not read on this platform (no Credential Provider yet)' });
      }
      let users: LocalUser[];
      try {
        users = parsePasswd(await fs.readFile(path.join(options.rootDir, 'etc', 'passwd'), 'utf8'));
      } catch (error) {
        return unknown({ ...evidence, detail: `cannot read the local users: ${errorText(error)}` });
      }
      const secrets = await readEnrolled(options.stateDir);
      if (!secrets.ok) {
        problems.push(secrets.reason);
      }
      const enrolled = secrets.ok ? secrets.enrolled : new Set<string>();
      const notEnrolled = users.filter((user) => !enrolled.has(user.name)).map((user) => user.name);
      if (notEnrolled.length > 0) problems.push('local users without both factors enrolled');
      const pam = await fs.readFile(path.join(options.rootDir, 'etc', 'pam.d', 'common-auth'), 'utf8').catch(() => null);
      const osLogin = pam !== null && pamCallsSekimori(pam);
      if (!osLogin) problems.push('the OS login does not call sekimori-agent pam-verify (etc/pam.d/common-auth)');
      Object.assign(evidence, { localUsers: users.length, enrolled: users.length - notEnrolled.length, notEnrolled, osLoginIntegrated: osLogin });
      return problems.length > 0 ? fail({ ...evidence, problems }) : pass(evidence);
    },
  };
}

/** Users with PIN and TOTP enrolled, from the lock secrets file (never opened for its secrets). */
async function readEnrolled(stateDir: string): Promise<{ ok: true; enrolled: Set<string> } | { ok: false; reason: string }> {
  const file = path.join(stateDir, LOCK_SECRETS_FILE);
  let text: string;
  try {
    const stat = await fs.stat(file);
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) return { ok: false, reason: `the lock secrets file is readable by others (mode ${(stat.mode & 0o777).toString(8)}): the lock refuses it` };
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true, enrolled: new Set() };
    return { ok: false, reason: `cannot read the lock secrets: ${errorText(error)}` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'the lock secrets file is not valid JSON' };
  }
  const parsed = LockSecretsFileSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: 'the lock secrets file does not validate' };
  const enrolled = new Set<string>();
  for (const [user, record] of Object.entries(parsed.data.users)) if (record.pin !== null && record.totp !== null) enrolled.add(user);
  return { ok: true, enrolled };
}
