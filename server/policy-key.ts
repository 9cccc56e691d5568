import crypto, { type KeyObject } from 'node:crypto';
import path from 'node:path';
import { DataDirError } from './data-dir.js';
import { createKeyFileIfAbsent, readKeyFile } from './key-file.js';

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
  createKeyFileIfAbsent(
    dir,
    POLICY_KEY_FILE,
    () => crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }),
    'policy signing key',
  );
  const pem = readKeyFile(dir, POLICY_KEY_FILE, 'policy signing key').toString('utf8');
  let privateKey: KeyObject;
  try {
    privateKey = crypto.createPrivateKey({ key: pem, format: 'pem' });
  } catch (error) {
    // The message of a key parse error does not carry key material.
    throw new DataDirError(`cannot read policy signing key ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new DataDirError(`policy signing key ${file} is not an Ed25519 key (found ${String(privateKey.asymmetricKeyType)})`);
  }
  return signingKey(privateKey);
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
