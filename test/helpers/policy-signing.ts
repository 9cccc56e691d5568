import crypto from 'node:crypto';
import type { SignedPolicy } from '../../shared/api.js';
import { canonicalJson } from '../../shared/canonical-json.js';

/** An Ed25519 policy-signing key as the server keeps one: sign documents, hand out the SPKI public key. */
export function policySigningKey(): { publicKey: string; keyId: string; sign(document: unknown): SignedPolicy } {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  const keyId = crypto.createHash('sha256').update(der).digest('hex').slice(0, 16);
  return {
    publicKey: der.toString('base64'),
    keyId,
    sign(document: unknown): SignedPolicy {
      const payload = canonicalJson(document);
      return { payload, keyId, signature: crypto.sign(null, Buffer.from(payload, 'utf8'), privateKey).toString('base64') };
    },
  };
}
