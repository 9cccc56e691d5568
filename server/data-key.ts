import crypto from 'node:crypto';
import path from 'node:path';
import { DataDirError } from './data-dir.js';
import { createKeyFileIfAbsent, readKeyFile } from './key-file.js';

/**
 * The server's data-encryption key: secrets the server must be able to read back (each device's
 * administrator-recovery key, users' roaming credential bundles) are stored in the database only
 * sealed with AES-256-GCM under this key.
 *
 * `DIR/data-encryption-key` (mode 0600): 32 random bytes, base64, one line; created at first start
 * like the policy-signing key (never overwritten, never half-written). Every seal uses a fresh
 * random 96-bit IV, and binds "additional authenticated data" naming the row (purpose, device or
 * user, epoch or tier), so a sealed value copied into another row does not open.
 *
 * What it protects: a copy of the database alone (a backup, a dump, a stolen file) reveals no
 * recovery key and no TOTP secret. What it does not: anyone who can read the data directory (the
 * key file and the database together), or the running server process, reads them all.
 */

export const DATA_KEY_FILE = 'data-encryption-key';

/** Sealed text: `sk1.<keyId>.<iv>.<ciphertext>.<tag>` (base64url parts). */
const SEALED_PATTERN = /^sk1\.([0-9a-f]{16})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]{22})$/;

/** A sealed value that does not open: wrong key, wrong row (AAD), or altered. A bug or tampering, never client input. */
export class SealedDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealedDataError';
  }
}

export interface DataKey {
  /** First 16 hex digits of SHA-256 over a label and the key; names the key in every sealed value. */
  readonly keyId: string;
  /** AES-256-GCM with a fresh IV; `aad` names the row. Returns printable text for a TEXT column. */
  seal(plaintext: Uint8Array | string, aad: string): string;
  /** Opens what `seal` made with the same `aad`; throws SealedDataError otherwise. */
  open(sealed: string, aad: string): Buffer;
}

/** Reads `DIR/data-encryption-key`, creating it at first use. Throws DataDirError when it cannot. */
export function loadOrCreateDataKey(dir: string): DataKey {
  createKeyFileIfAbsent(dir, DATA_KEY_FILE, () => `${crypto.randomBytes(32).toString('base64')}\n`, 'data encryption key');
  const text = readKeyFile(dir, DATA_KEY_FILE, 'data encryption key').toString('utf8').trim();
  const key = Buffer.from(text, 'base64');
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text) || key.length !== 32) {
    throw new DataDirError(`data encryption key ${path.join(dir, DATA_KEY_FILE)} is malformed (expected 32 bytes in base64 on one line)`);
  }
  return dataKeyFrom(key);
}

/** A DataKey over 32 raw bytes (tests). */
export function dataKeyFrom(key: Uint8Array): DataKey {
  if (key.length !== 32) throw new RangeError('data key must be 32 bytes');
  const secret = Buffer.from(key);
  const keyId = crypto.createHash('sha256').update('sekimori-data-key-id:').update(secret).digest('hex').slice(0, 16);
  return {
    keyId,
    seal(plaintext, aad) {
      const iv = crypto.randomBytes(12);
      const cipher = crypto.createCipheriv('aes-256-gcm', secret, iv);
      cipher.setAAD(Buffer.from(aad, 'utf8'));
      const body = Buffer.concat([cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final()]);
      return ['sk1', keyId, iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
    },
    open(sealed, aad) {
      const match = SEALED_PATTERN.exec(sealed);
      if (!match) throw new SealedDataError('sealed value is malformed');
      const [, sealedKeyId, iv, body, tag] = match as unknown as [string, string, string, string, string];
      if (sealedKeyId !== keyId) throw new SealedDataError(`sealed under another data key (${sealedKeyId}, this server has ${keyId})`);
      try {
        const decipher = crypto.createDecipheriv('aes-256-gcm', secret, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(aad, 'utf8'));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]);
      } catch {
        throw new SealedDataError('sealed value does not open (altered, or moved from another row)');
      }
    },
  };
}

/** The AAD of a device's recovery key at `epoch`. */
export function recoveryKeyAad(deviceId: string, epoch: number): string {
  return JSON.stringify(['sekimori-recovery-key-v1', deviceId, epoch]);
}

/** The AAD of a user's credential bundle in `tier`. */
export function userCredentialsAad(tier: string, user: string): string {
  return JSON.stringify(['sekimori-user-credentials-v1', tier, user]);
}

/** The AAD of an administrator account's TOTP secret (the account's name as stored). */
export function adminTotpAad(accountName: string): string {
  return JSON.stringify(['sekimori-admin-totp-v1', accountName]);
}
