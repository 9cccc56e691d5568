import crypto from 'node:crypto';
import type { Sha256Hex } from '../shared/journal.js';

/**
 * SHA-256 of a UTF-8 string as lower-case hex. Uses Node's one-shot `crypto.hash` where present
 * (no Hash object per call: the journal hashes every entry of every batch).
 */
export const sha256Hex: Sha256Hex =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text).digest('hex');

/** `bytes` cryptographically random bytes as base64url (no padding). */
export function randomBase64Url(bytes: number): string {
  return crypto.randomBytes(bytes).toString('base64url');
}

/** `bytes` cryptographically random bytes as lower-case hex. */
export function randomHex(bytes: number): string {
  return crypto.randomBytes(bytes).toString('hex');
}

/**
 * Whether `secret` hashes to `expectedSha256Hex`, compared in constant time. Comparing digests
 * (always 32 bytes) rather than the secrets themselves means neither the length nor the content of
 * the expected secret leaks through timing. A malformed expected digest never matches.
 */
export function secretMatchesHash(secret: string, expectedSha256Hex: string): boolean {
  const expected = Buffer.from(expectedSha256Hex, 'hex');
  const actual = Buffer.from(sha256Hex(secret), 'hex');
  if (expected.length !== actual.length) return false;
  return crypto.timingSafeEqual(actual, expected);
}
