import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DetailedPeerCertificate } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { ServerCertificateAlarm } from '../../../agent/reporter/certificate-alarm.js';
import { chainPins, matchesAnyPin, parsePin, pinOfCertificate } from '../../../agent/reporter/tls-pins.js';
import { isLoopbackHost, serverUrlProblem, type CertificateRejection } from '../../../agent/reporter/transport.js';
import { AgentConfigSchema, readJsonFile } from '../../../agent/state.js';
import { spkiPin, tlsPins } from '../../../server/tls.js';
import { ROOT } from '../../helpers/processes.js';
import { makeTestPki, opensslPin, randomPin, type TestPki } from '../../helpers/test-pki.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();

describe('SPKI pins: parsing', () => {
  const digest = crypto.randomBytes(32);
  const pin = `sha256/${digest.toString('base64')}`;

  it('accepts sha256/<standard base64 of 32 bytes> and returns the digest', () => {
    expect(parsePin(pin)).toEqual(digest);
  });

  it.each([
    ['no prefix', digest.toString('base64')],
    ['another hash', `sha1/${digest.toString('base64')}`],
    ['upper-case prefix', `SHA256/${digest.toString('base64')}`],
    ['31 bytes', `sha256/${crypto.randomBytes(31).toString('base64')}`],
    ['33 bytes', `sha256/${crypto.randomBytes(33).toString('base64')}`],
    ['base64url', `sha256/${Buffer.alloc(32, 0xfb).toString('base64url')}=`],
    ['no padding', `sha256/${digest.toString('base64').replace(/=$/, '')}`],
    ['surrounding space', ` ${pin}`],
    ['hex', `sha256/${digest.toString('hex')}`],
    ['empty', ''],
  ])('refuses %s', (_what, text) => {
    expect(parsePin(text)).toBeNull();
  });

  it('refuses non-canonical base64 (one pin, one spelling)', () => {
    // The last character before '=' carries 2 unused bits; set one of them.
    const canonical = Buffer.alloc(32, 0).toString('base64'); // "AAAA…AAA="
    expect(parsePin(`sha256/${canonical}`)).not.toBeNull();
    expect(parsePin(`sha256/${canonical.slice(0, 42)}B=`)).toBeNull();
  });
});

describe('SPKI pins: computing and matching', () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await makeTestPki(await tempDir());
  });

  it('agent and server compute the pin exactly as openssl does (SHA-256 of the DER SubjectPublicKeyInfo)', async () => {
    const expectedLeaf = await opensslPin(pki.serverCertFile);
    const expectedCa = await opensslPin(pki.caCertFile);
    expect(pinOfCertificate(pki.serverCertPem)).toBe(expectedLeaf);
    expect(pinOfCertificate(new crypto.X509Certificate(pki.serverCertPem).raw)).toBe(expectedLeaf);
    expect(spkiPin(new crypto.X509Certificate(pki.serverCertPem))).toBe(expectedLeaf);
    expect(pinOfCertificate(pki.caCertPem)).toBe(expectedCa);
    expect(expectedLeaf).not.toBe(expectedCa);
    // tls-pin's reader: every certificate of a bundle, in file order.
    const bundle = path.join(pki.dir, 'fullchain.pem');
    await fs.writeFile(bundle, pki.serverCertPem + pki.caCertPem);
    expect(tlsPins(bundle)).toEqual([expectedLeaf, expectedCa]);
  });

  it('walks the presented chain leaf first and stops at a self-signed root', () => {
    const leaf = new crypto.X509Certificate(pki.serverCertPem);
    const ca = new crypto.X509Certificate(pki.caCertPem);
    const root = { raw: ca.raw } as DetailedPeerCertificate;
    (root as { issuerCertificate: DetailedPeerCertificate }).issuerCertificate = root; // Node links a root to itself
    const chain = { raw: leaf.raw, issuerCertificate: root } as DetailedPeerCertificate;
    expect(chainPins(chain)).toEqual([pinOfCertificate(leaf.raw), pinOfCertificate(ca.raw)]);
    // Without issuer details (getPeerCertificate(false)): the leaf only.
    expect(chainPins({ raw: leaf.raw } as DetailedPeerCertificate)).toEqual([pinOfCertificate(leaf.raw)]);
  });

  it('matches when any presented certificate carries an allowed pin, never otherwise', () => {
    const leafPin = pinOfCertificate(pki.serverCertPem);
    const caPin = pinOfCertificate(pki.caCertPem);
    const allowed = (...pins: string[]): Buffer[] => pins.map((pin) => parsePin(pin)!);
    expect(matchesAnyPin([leafPin, caPin], allowed(leafPin))).toBe(true);
    expect(matchesAnyPin([leafPin, caPin], allowed(randomPin(), caPin))).toBe(true);
    expect(matchesAnyPin([leafPin, caPin], allowed(randomPin(), randomPin()))).toBe(false);
    expect(matchesAnyPin([], allowed(leafPin))).toBe(false);
    expect(matchesAnyPin(['not a pin', leafPin.replace('sha256', 'sha1')], allowed(leafPin))).toBe(false);
  });
});

describe('which server URLs the agent uses', () => {
  it.each([
    ['localhost', true],
    ['LOCALHOST', true],
    ['127.0.0.1', true],
    ['127.10.0.3', true],
    ['[::1]', true],
    ['[::ffff:127.0.0.1]', true],
    ['10.0.0.5', false],
    ['192.0.2.2', false],
    ['[fd00::2]', false],
    ['sekimori.example.lg.jp', false],
    ['localhost.example.jp', false],
    ['127.0.0.1.example.jp', false],
  ])('%s is loopback: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
    expect(isLoopbackHost(new URL(`http://${host}:8443`).hostname)).toBe(loopback);
  });

  it('refuses plain http:// to another machine unless allowInsecureHttp, and TLS settings on http://', () => {
    expect(serverUrlProblem('https://sekimori.example.lg.jp', {})).toBeNull();
    expect(serverUrlProblem('http://127.0.0.1:8443', {})).toBeNull();
    expect(serverUrlProblem('http://10.0.0.5:8443', {})).toMatch(/plain http:\/\/ to another machine.*allowInsecureHttp/);
    expect(serverUrlProblem('http://10.0.0.5:8443', { allowInsecureHttp: true })).toBeNull();
    expect(serverUrlProblem('http://127.0.0.1:8443', { tls: { pins: [randomPin()] } })).toMatch(/tls .*configured: use https/);
    expect(serverUrlProblem('ftp://sekimori.example.lg.jp', {})).toMatch(/only https/);
  });
});

describe('the installer config (AgentConfigSchema)', () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await makeTestPki(await tempDir());
  });
  const parse = (config: Record<string, unknown>): { ok: boolean; message: string } => {
    const result = AgentConfigSchema.safeParse(config);
    return { ok: result.success, message: result.success ? '' : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ') };
  };

  it('accepts tls.ca (PEM) and tls.pins for an https server', () => {
    expect(parse({ serverUrl: 'https://sekimori.example.lg.jp', tls: { ca: pki.caCertPem, pins: [pinOfCertificate(pki.serverCertPem)] } })).toEqual({ ok: true, message: '' });
    expect(parse({ serverUrl: 'https://sekimori.example.lg.jp', tls: { pins: [randomPin()] } }).ok).toBe(true);
    expect(parse({ serverUrl: 'https://sekimori.example.lg.jp', tls: { ca: pki.caCertPem + pki.serverCertPem } }).ok).toBe(true);
  });

  it('refuses a malformed pin, an empty pin list, a CA that is not a certificate, unknown tls fields', () => {
    expect(parse({ tls: { pins: ['sha256/abc='] } }).message).toMatch(/^tls\.pins\.0: expected sha256/);
    expect(parse({ tls: { pins: [] } }).ok).toBe(false);
    expect(parse({ tls: { ca: 'not a certificate' } }).message).toMatch(/^tls\.ca: expected PEM/);
    expect(parse({ tls: { ca: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' } }).ok).toBe(false);
    expect(parse({ tls: { ca: pki.caCertPem, rejectUnauthorized: false } }).ok).toBe(false);
  });

  it('refuses http:// to another machine unless allowInsecureHttp (labs), and TLS settings with http://', () => {
    expect(parse({ serverUrl: 'http://10.0.0.5:8443' }).message).toMatch(/^serverUrl: .*plain http:\/\/ to another machine/);
    expect(parse({ serverUrl: 'http://10.0.0.5:8443', allowInsecureHttp: true }).ok).toBe(true);
    expect(parse({ serverUrl: 'http://127.0.0.1:8443' }).ok).toBe(true);
    expect(parse({ serverUrl: 'http://127.0.0.1:8443', tls: { ca: pki.caCertPem } }).message).toMatch(/^serverUrl: .*use https/);
    expect(parse({ allowInsecureHttp: 'yes' }).ok).toBe(false);
  });

  it('accepts the packaged example config (it shows tls.pins)', async () => {
    const example = await readJsonFile(path.join(ROOT, 'build/linux/config.json.example'), AgentConfigSchema);
    expect(example?.tls?.pins?.length).toBeGreaterThan(0);
    expect(example?.serverUrl).toMatch(/^https:/);
  });
});

describe('ServerCertificateAlarm', () => {
  const rejection = (overrides: Partial<CertificateRejection> = {}): CertificateRejection => ({
    host: 'sekimori.example.lg.jp:443',
    reason: 'pin-mismatch',
    code: 'ERR_SEKIMORI_PIN_MISMATCH',
    presentedPin: `sha256/${Buffer.alloc(32, 1).toString('base64')}`,
    chainPins: [`sha256/${Buffer.alloc(32, 1).toString('base64')}`],
    ...overrides,
  });

  it('journals each distinct failure once as tamper.detected kind server-certificate, and logs it', async () => {
    const entries: { type: string; data: Record<string, unknown> }[] = [];
    const logged: string[] = [];
    const alarm = new ServerCertificateAlarm(
      { append: (type, data) => Promise.resolve(void entries.push({ type, data: data ?? {} })) as never },
      { error: ((message: string) => void logged.push(message)) as never },
    );
    for (let i = 0; i < 5; i += 1) await alarm.report(rejection());
    expect(entries).toEqual([
      { type: 'tamper.detected', data: { kind: 'server-certificate', host: 'sekimori.example.lg.jp:443', reason: 'pin-mismatch', code: 'ERR_SEKIMORI_PIN_MISMATCH', presentedPin: rejection().presentedPin, chainPins: rejection().chainPins } },
    ]);
    expect(logged).toHaveLength(1);
    // Another presented key, another reason, another host: each once more.
    await alarm.report(rejection({ presentedPin: `sha256/${Buffer.alloc(32, 2).toString('base64')}` }));
    await alarm.report(rejection({ reason: 'untrusted', code: 'SELF_SIGNED_CERT_IN_CHAIN' }));
    await alarm.report(rejection({ host: 'other.example.lg.jp:443' }));
    await alarm.report(rejection({ reason: 'untrusted', code: 'SELF_SIGNED_CERT_IN_CHAIN' }));
    expect(entries).toHaveLength(4);
  });

  it('stops journaling new distinct failures after a bound (a server rotating keys cannot fill the journal)', async () => {
    let count = 0;
    const alarm = new ServerCertificateAlarm({ append: () => Promise.resolve(void (count += 1)) as never }, null);
    for (let i = 0; i < 100; i += 1) await alarm.report(rejection({ presentedPin: `sha256/${crypto.randomBytes(32).toString('base64')}` }));
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThan(100);
  });

  it('tries again when the journal could not be written', async () => {
    let attempts = 0;
    const alarm = new ServerCertificateAlarm(
      {
        append: () => {
          attempts += 1;
          return (attempts === 1 ? Promise.reject(new Error('disk full')) : Promise.resolve()) as never;
        },
      },
      null,
    );
    await alarm.report(rejection());
    await alarm.report(rejection());
    await alarm.report(rejection());
    expect(attempts).toBe(2);
  });
});
