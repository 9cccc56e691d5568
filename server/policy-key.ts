import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DataDirError } from './data-dir.js';
import { randomHex } from './crypto.js';

/**
 * The server's Ed25519 policy-signing key (DESIGN.md §5). Generated at first start, kept in the
 * data directory as `policy-signing-key.pem` (PKCS#8 PEM, mode 0600). Agents pin the public key at
 * enrolment, so losing or replacing this file means re-enrolling every terminal: back it up with
 * the database. The private key is never logged and never leaves this module except to `sign`.
 */

export const POLICY_KEY_FILE = 'policy-signing-key.pem';

export interface PolicySigningKey {
  /** First 16 hex digits of SHA-256 over the public key's SPKI DER. */
  readonly keyId: string;
  /** The public key as SPKI DER, base64: what enrolment hands the agent. */
  readonly publicKeyBase64: string;
  /** Ed25519 signature (base64) over the UTF-8 bytes of `payload`. */
  sign(payload: string): string;
}

/**
 * Reads `DIR/policy-signing-key.pem`, creating it at first use. Creation is atomic and exclusive:
 * the key is written to a private temporary file and hard-linked into place, which fails if the
 * file already exists (like O_EXCL, never follows a planted symlink, never overwrites a key), and a
 * concurrent reader (the CLI while the server starts) never sees a half-written file.
 * Throws DataDirError when the file cannot be created or read, or does not hold an Ed25519 key.
 */
export function loadOrCreatePolicyKey(dir: string): PolicySigningKey {
  const file = path.join(dir, POLICY_KEY_FILE);
  createKeyFileIfAbsent(dir, file);
  let privateKey: KeyObject;
  try {
    if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
    privateKey = crypto.createPrivateKey({ key: fs.readFileSync(file, 'utf8'), format: 'pem' });
  } catch (error) {
    // The message of a key parse error does not carry key material.
    throw new DataDirError(`cannot read policy signing key ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new DataDirError(`policy signing key ${file} is not an Ed25519 key (found ${String(privateKey.asymmetricKeyType)})`);
  }
  return signingKey(privateKey);
}

function createKeyFileIfAbsent(dir: string, file: string): void {
  if (fs.existsSync(file)) return;
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' });
  const temporary = path.join(dir, `.${POLICY_KEY_FILE}.${randomHex(8)}.tmp`);
  try {
    const fd = fs.openSync(temporary, 'wx', 0o600);
    try {
      fs.writeFileSync(fd, pem);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.linkSync(temporary, file);
  } catch (error) {
    // EEXIST: another process (server or CLI) created the key first; use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new DataDirError(`cannot create policy signing key ${file}: ${(error as Error).message}`, { cause: error });
    }
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

function signingKey(privateKey: KeyObject): PolicySigningKey {
  const spki = crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return {
    keyId: policyKeyId(spki),
    publicKeyBase64: spki.toString('base64'),
    sign: (payload) => crypto.sign(null, Buffer.from(payload, 'utf8'), privateKey).toString('base64'),
  };
}

/** The key id the agent and the server agree on: SHA-256 of the SPKI DER, first 16 hex digits. */
export function policyKeyId(spkiDer: Buffer): string {
  return crypto.createHash('sha256').update(spkiDer).digest('hex').slice(0, 16);
}
