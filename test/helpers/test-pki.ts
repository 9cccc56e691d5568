import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A throw-away municipality CA and a server certificate it issued, made with the `openssl` command (Debian `openssl`). */
export interface TestPki {
  readonly dir: string;
  readonly caCertFile: string;
  readonly caCertPem: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
}

const CA_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = Sekimori Test Municipality CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;

/**
 * Writes `ca.pem`, `server.pem` and `server.key` (0600) into `dir`: an EC P-256 CA and a server
 * certificate for `ips` (subjectAltName IP entries) and `dnsNames`, valid for two days.
 */
export async function makeTestPki(dir: string, options: { ips?: readonly string[]; dnsNames?: readonly string[] } = {}): Promise<TestPki> {
  const file = (name: string): string => path.join(dir, name);
  await fs.writeFile(file('ca.cnf'), CA_CONFIG);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', '-new', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2', '-config', file('ca.cnf'), '-extensions', 'v3_ca']);
  await run('openssl', ['req', '-new', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=sekimori-test-server', '-config', file('ca.cnf')]);
  const names = [...(options.ips ?? ['127.0.0.1']).map((ip) => `IP:${ip}`), ...(options.dnsNames ?? []).map((name) => `DNS:${name}`)];
  await fs.writeFile(
    file('server.ext'),
    `subjectAltName = ${names.join(',')}\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\nauthorityKeyIdentifier = keyid\n`,
  );
  await run('openssl', [
    'x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
    '-set_serial', `0x${crypto.randomBytes(8).toString('hex')}`, '-days', '2', '-out', file('server.pem'), '-extfile', file('server.ext'),
  ]);
  await fs.chmod(file('server.key'), 0o600);
  await fs.chmod(file('ca.key'), 0o600);
  return {
    dir,
    caCertFile: file('ca.pem'),
    caCertPem: await fs.readFile(file('ca.pem'), 'utf8'),
    serverCertFile: file('server.pem'),
    serverKeyFile: file('server.key'),
    serverCertPem: await fs.readFile(file('server.pem'), 'utf8'),
    serverKeyPem: await fs.readFile(file('server.key'), 'utf8'),
  };
}

/**
 * The SPKI pin of a certificate computed by openssl alone (the independent reference for the
 * code's own): public key → DER SubjectPublicKeyInfo → SHA-256 → base64.
 */
export async function opensslPin(certFile: string): Promise<string> {
  const { stdout } = await run('sh', [
    '-c',
    'openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | openssl base64 -A',
    'sh',
    certFile,
  ]);
  return `sha256/${stdout.trim()}`;
}

/** A well-formed pin of no real key. */
export function randomPin(): string {
  return `sha256/${crypto.randomBytes(32).toString('base64')}`;
}
