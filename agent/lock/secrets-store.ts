import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { err, ok, type Result } from '../../shared/result.js';
import { readJsonFile, writeJsonFileAtomic } from '../state.js';
import { PinHashSchema } from './factors.js';
import { INITIAL_THROTTLE, ThrottleStateSchema } from './throttle.js';

/**
 * Per-user factor records in one root-only JSON file (`lock-secrets.json`, 0600) next to a machine
 * key file (`lock-machine.key`, 32 random bytes, 0600), both in the agent's state directory.
 *
 * - PIN: scrypt hash + salt + parameters (not reversible; no key needed).
 * - TOTP secret: AES-256-GCM with the machine key, a fresh 96-bit IV per write, and the user name
 *   and field as associated data (a ciphertext moved to another user's record does not decrypt).
 *   What this protects: a copy of the secrets file alone (a backup, a support bundle, a file read
 *   through a bug that leaks one path) does not reveal any TOTP secret. What it does not protect:
 *   anyone who can read both files — root/SYSTEM on the running machine, or a copy of the whole
 *   unencrypted disk. Binding the key to the TPM (or DPAPI machine scope on Windows) is the later
 *   step; full-disk encryption covers the stolen-disk case meanwhile.
 * - Per user also: the last accepted TOTP step, the throttle state, a pending enrolment.
 *
 * Every change is written atomically (temp file, fsync, rename; `writeJsonFileAtomic`) before the
 * caller answers, and writes are serialised. Nothing in here logs; `redactSecrets` is for callers.
 */

export const LOCK_SECRETS_FILE = 'lock-secrets.json';
export const LOCK_MACHINE_KEY_FILE = 'lock-machine.key';

const EncryptedSchema = z.strictObject({
  iv: z.base64(),
  ciphertext: z.base64(),
  tag: z.base64(),
});
export type Encrypted = z.infer<typeof EncryptedSchema>;

const userName = z.string().min(1).max(256);

export const UserFactorsSchema = z.strictObject({
  pin: PinHashSchema.nullable(),
  totp: EncryptedSchema.nullable(),
  totpLastStep: z.int().min(0).nullable(),
  /** Enrolment started but not yet proven with one valid code. */
  pending: z
    .strictObject({
      pin: PinHashSchema,
      totp: EncryptedSchema,
      startedAtMs: z.number().int().nonnegative(),
    })
    .nullable(),
  enrolledAtMs: z.number().int().nonnegative().nullable(),
  throttle: ThrottleStateSchema,
  /** False until the server holds this enrolment (roaming); absent in files from before roaming. */
  uploaded: z.boolean().optional(),
});
export type UserFactors = z.infer<typeof UserFactorsSchema>;

export const LockSecretsFileSchema = z.strictObject({
  version: z.literal(1),
  users: z.record(userName, UserFactorsSchema),
});
export type LockSecretsFile = z.infer<typeof LockSecretsFileSchema>;

export function emptyUserFactors(): UserFactors {
  return { pin: null, totp: null, totpLastStep: null, pending: null, enrolledAtMs: null, throttle: { ...INITIAL_THROTTLE } };
}

export type StoreOpenError = 'bad-permissions' | 'bad-key' | 'bad-file';

/** Whether a file's mode lets anyone but its owner read or write it (POSIX only). */
async function checkOwnerOnly(file: string, platform: NodeJS.Platform): Promise<Result<void, 'bad-permissions'>> {
  if (platform === 'win32') return ok(undefined); // ACLs are the installer's job on Windows.
  try {
    const stat = await fs.stat(file);
    if ((stat.mode & 0o077) !== 0) return err('bad-permissions', `${file}: mode ${(stat.mode & 0o777).toString(8)}, expected 600 (group/other access)`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return ok(undefined);
}

async function loadOrCreateKey(file: string): Promise<Result<Buffer, 'bad-key'>> {
  try {
    const key = await fs.readFile(file);
    if (key.length !== 32) return err('bad-key', `${file}: expected 32 bytes, found ${key.length}`);
    return ok(key);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = crypto.randomBytes(32);
  // 'wx': never overwrite a key another process created meanwhile (that would orphan its secrets).
  const handle = await fs.open(file, 'wx', 0o600);
  try {
    await handle.writeFile(key);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return ok(key);
}

export class LockSecretsStore {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly key: Buffer,
    private data: LockSecretsFile,
  ) {}

  /**
   * Opens (or creates) the store in `dir`. Refuses with `bad-permissions` when either file is
   * readable or writable by group/other (the caller journals `tamper.detected`), `bad-key` for a
   * key file of the wrong size, `bad-file` for content that does not validate.
   */
  static async open(dir: string, platform: NodeJS.Platform = process.platform): Promise<Result<LockSecretsStore, StoreOpenError>> {
    const file = path.join(dir, LOCK_SECRETS_FILE);
    const keyFile = path.join(dir, LOCK_MACHINE_KEY_FILE);
    for (const f of [keyFile, file]) {
      const mode = await checkOwnerOnly(f, platform);
      if (!mode.ok) return mode;
    }
    const key = await loadOrCreateKey(keyFile);
    if (!key.ok) return key;
    let data: LockSecretsFile | null;
    try {
      data = await readJsonFile(file, LockSecretsFileSchema);
    } catch (error) {
      return err('bad-file', (error as Error).message);
    }
    return ok(new LockSecretsStore(file, key.value, data ?? { version: 1, users: {} }));
  }

  get path(): string {
    return this.file;
  }

  /** The user's record (a copy); an empty record when the user has none. */
  get(user: string): UserFactors {
    const record = Object.hasOwn(this.data.users, user) ? this.data.users[user] : undefined;
    return structuredClone(record ?? emptyUserFactors());
  }

  /** Users with a record. */
  users(): string[] {
    return Object.keys(this.data.users);
  }

  /**
   * Read-modify-write of one user's record, serialised with every other update, persisted before
   * the returned promise resolves. `change` gets a copy and returns the new record (or null to delete it).
   */
  update(user: string, change: (record: UserFactors) => UserFactors | null): Promise<UserFactors | null> {
    const run = async (): Promise<UserFactors | null> => {
      userName.parse(user);
      const next = change(this.get(user));
      const users = { ...this.data.users };
      if (next === null) delete users[user];
      else users[user] = UserFactorsSchema.parse(next);
      const data: LockSecretsFile = { version: 1, users };
      await writeJsonFileAtomic(this.file, data);
      this.data = data;
      return next === null ? null : structuredClone(next);
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Encrypts a secret for `user`'s `field` with the machine key. */
  seal(user: string, field: string, plaintext: Uint8Array): Encrypted {
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(`sekimori-lock-v1\0${user}\0${field}`, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { iv: iv.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
  }

  /** Decrypts what `seal` made for the same user and field; `null` when it does not authenticate. */
  open(user: string, field: string, sealed: Encrypted): Uint8Array | null {
    try {
      const decipher = crypto.createDecipheriv('aes-256-gcm', this.key, Buffer.from(sealed.iv, 'base64'));
      decipher.setAAD(Buffer.from(`sekimori-lock-v1\0${user}\0${field}`, 'utf8'));
      decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
      return new Uint8Array(Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]));
    } catch {
      return null;
    }
  }
}

const SECRET_KEY = /pin|password|passwd|secret|token|code|otp|totp|key|hash|salt|cipher|iv|tag|response|uri|qr|credential/i;

/**
 * A copy of `value` with every field whose name looks secret replaced by `[redacted]`, and any
 * `otpauth://` URI in a string replaced too. For log metadata: pass everything through it.
 */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[deep]';
  if (typeof value === 'string') return value.replace(/otpauth:\/\/\S*/gi, 'otpauth://[redacted]');
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : redactSecrets(v, depth + 1);
    return out;
  }
  return value;
}
