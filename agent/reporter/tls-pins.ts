import crypto from 'node:crypto';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';

/**
 * SPKI pins (`sha256/<base64>`, the HPKP / curl `--pinnedpubkey` form): the SHA-256 of a
 * certificate's DER SubjectPublicKeyInfo, standard base64 with padding. `sekimori-server tls-pin`
 * prints them; the installer's `tls.pins` lists them; a connection is accepted only when the
 * server's leaf or a certificate of its chain has one of them.
 */

const PIN_PREFIX = 'sha256/';
/** 32 bytes in standard base64: 43 characters and one `=`. */
export const PIN_PATTERN = /^sha256\/[A-Za-z0-9+/]{43}=$/;

/** The 32-byte digest of a pin, or null when `text` is not exactly `sha256/<base64 of 32 bytes>` (canonical). */
export function parsePin(text: string): Buffer | null {
  if (!PIN_PATTERN.test(text)) return null;
  const encoded = text.slice(PIN_PREFIX.length);
  const digest = Buffer.from(encoded, 'base64');
  // Non-canonical base64 (stray low bits in the last character) decodes too; refuse it so one pin has one spelling.
  return digest.length === 32 && digest.toString('base64') === encoded ? digest : null;
}

/** The pin of a SubjectPublicKeyInfo (DER). */
export function pinOfSpki(spkiDer: Buffer): string {
  return PIN_PREFIX + crypto.createHash('sha256').update(spkiDer).digest('base64');
}

/** The pin of a certificate (DER or PEM). */
export function pinOfCertificate(certificate: Buffer | string): string {
  const spki = new crypto.X509Certificate(certificate).publicKey.export({ type: 'spki', format: 'der' });
  return pinOfSpki(spki);
}

/** Longest chain walked; a real one has 2–4 certificates. */
const MAX_CHAIN = 10;

/**
 * Pins of the certificates the server presented, leaf first, then each issuer as Node's chain
 * verification linked it (`getPeerCertificate(true)`; a self-signed root names itself as issuer).
 */
export function chainPins(leaf: PeerCertificate | DetailedPeerCertificate): string[] {
  const pins: string[] = [];
  const seen = new Set<PeerCertificate>();
  let current: PeerCertificate | undefined = leaf;
  while (current !== undefined && !seen.has(current) && pins.length < MAX_CHAIN) {
    seen.add(current);
    if (current.raw === undefined || current.raw.length === 0) break;
    pins.push(pinOfCertificate(current.raw));
    const issuer: DetailedPeerCertificate | undefined = (current as Partial<DetailedPeerCertificate>).issuerCertificate;
    if (issuer === undefined || issuer === current || (issuer.raw !== undefined && issuer.raw.equals(current.raw))) break;
    current = issuer;
  }
  return pins;
}

/** Whether any presented pin is one of `allowed` (digests from `parsePin`). */
export function matchesAnyPin(presented: readonly string[], allowed: readonly Buffer[]): boolean {
  return presented.some((pin) => {
    const digest = parsePin(pin);
    return digest !== null && allowed.some((candidate) => candidate.equals(digest));
  });
}
