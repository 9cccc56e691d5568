import crypto from 'node:crypto';
import fs from 'node:fs';

/**
 * The server's TLS files (`sekimori-server start --tls-cert FILE --tls-key FILE`) and the SPKI pin
 * IT puts in the installer config (`sekimori-server tls-pin --cert FILE`).
 */

/** A TLS file cannot be used (message for people; exit 1). */
export class TlsFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsFileError';
  }
}

/** Certificate (leaf first, then intermediates) and private key, PEM, as fastify's `https` option takes them. */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Largest PEM file read. */
const MAX_PEM_BYTES = 1024 * 1024;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads and checks the certificate and key: the key file must not be readable or writable by
 * group or others (POSIX; refused otherwise, as ssh does), both must parse, and the key must be
 * the certificate's.
 */
export function loadTlsFiles(certFile: string, keyFile: string, platform: NodeJS.Platform = process.platform): TlsFiles {
  const keyStat = statFile(keyFile, '--tls-key');
  if (platform !== 'win32' && (keyStat.mode & 0o077) !== 0) {
    const mode = (keyStat.mode & 0o777).toString(8).padStart(4, '0');
    throw new TlsFileError(`--tls-key ${keyFile} is readable or writable by group or others (mode ${mode}); the server's private key must be owner-only: chmod 600 ${keyFile}`);
  }
  const cert = readPem(certFile, '--tls-cert');
  const key = readPem(keyFile, '--tls-key');
  const certificates = parseCertificates(cert, `--tls-cert ${certFile}`);
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(key);
  } catch (error) {
    throw new TlsFileError(`--tls-key ${keyFile} is not a PEM private key (${(error as Error).message})`, { cause: error });
  }
  const leaf = certificates[0]!;
  if (!leaf.checkPrivateKey(privateKey)) throw new TlsFileError(`--tls-key ${keyFile} is not the key of the certificate in ${certFile}`);
  return { cert, key };
}

/** `sha256/<base64>` of each certificate's SubjectPublicKeyInfo in `certFile`, in file order (leaf first for a full chain). */
export function tlsPins(certFile: string): string[] {
  return parseCertificates(readPem(certFile, '--cert'), `--cert ${certFile}`).map(spkiPin);
}

/** The SPKI pin of a certificate: SHA-256 of its public key's DER SubjectPublicKeyInfo, base64. */
export function spkiPin(certificate: crypto.X509Certificate): string {
  const spki = certificate.publicKey.export({ type: 'spki', format: 'der' });
  return `sha256/${crypto.createHash('sha256').update(spki).digest('base64')}`;
}

function parseCertificates(pem: Buffer, what: string): crypto.X509Certificate[] {
  const blocks = pem.toString('utf8').match(PEM_CERTIFICATE);
  if (blocks === null) throw new TlsFileError(`${what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, index) => {
    try {
      return new crypto.X509Certificate(block);
    } catch (error) {
      throw new TlsFileError(`${what}: certificate ${index + 1} does not parse (${(error as Error).message})`, { cause: error });
    }
  });
}

function statFile(file: string, flag: string): fs.Stats {
  try {
    return fs.statSync(file);
  } catch (error) {
    throw new TlsFileError(`${flag} ${file}: ${(error as Error).message}`, { cause: error });
  }
}

function readPem(file: string, flag: string): Buffer {
  if (statFile(file, flag).size > MAX_PEM_BYTES) throw new TlsFileError(`${flag} ${file} is larger than ${MAX_PEM_BYTES} bytes`);
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new TlsFileError(`${flag} ${file}: ${(error as Error).message}`, { cause: error });
  }
}
