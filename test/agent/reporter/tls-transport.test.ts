import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ServerClient } from '../../../agent/reporter/server-client.js';
import { pinOfCertificate } from '../../../agent/reporter/tls-pins.js';
import type { CertificateRejection } from '../../../agent/reporter/transport.js';
import { waitFor } from '../../helpers/processes.js';
import { makeTestPki, randomPin, type TestPki } from '../../helpers/test-pki.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();
const CREDENTIAL = 'device-credential-that-must-never-leave-on-a-bad-connection-0123456789';
const BUNDLE = { user: 'yamada', bundle: 'secret-enrolment' } as never;

/** A TLS listener that records what each connection sent (no HTTP: it only counts bytes). */
async function recordingTlsServer(pki: TestPki): Promise<{ url: string; handshakes: () => number; closed: () => number; bytes: () => number; close: () => Promise<void> }> {
  let handshakes = 0;
  let closed = 0;
  let bytes = 0;
  const server = tls.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (socket) => {
    handshakes += 1;
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.on('error', () => undefined);
  });
  // TCP level: the client may drop the connection before the server saw its handshake finish.
  server.on('connection', (raw: Socket) => raw.on('close', () => (closed += 1)));
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    handshakes: () => handshakes,
    closed: () => closed,
    bytes: () => bytes,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** An HTTPS server answering `{}` and recording each request's authorization header and body. */
async function answeringHttpsServer(pki: TestPki, host = '127.0.0.1'): Promise<{ url: (name?: string) => string; requests: { authorization: string | undefined; body: string }[]; close: () => Promise<void> }> {
  const requests: { authorization: string | undefined; body: string }[] = [];
  const server = https.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      requests.push({ authorization: request.headers.authorization, body });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (name = '127.0.0.1') => `https://${name}:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

describe('the agent’s HTTPS transport (real TLS on 127.0.0.1)', () => {
  let pki: TestPki;
  let leafPin: string;
  let caPin: string;
  beforeAll(async () => {
    pki = await makeTestPki(await tempDir(), { ips: ['127.0.0.1'] });
    leafPin = pinOfCertificate(pki.serverCertPem);
    caPin = pinOfCertificate(pki.caCertPem);
  });

  it('talks to the server when its chain leads to the configured CA and the leaf or the CA matches a pin', async () => {
    const server = await answeringHttpsServer(pki);
    closers.push(server.close);
    for (const pins of [[leafPin], [randomPin(), caPin], undefined]) {
      const rejected: CertificateRejection[] = [];
      const client = new ServerClient(server.url(), { tls: { ca: pki.caCertPem, pins }, onCertificateRejected: (rejection) => void rejected.push(rejection) });
      expect(await client.putCredentials(CREDENTIAL, BUNDLE)).toEqual({ kind: 'ok', value: {} });
      expect(rejected).toEqual([]);
    }
    // What arrived is the request itself, credential included: the transport carries what fetch carried.
    expect(server.requests).toHaveLength(3);
    expect(server.requests[0]).toEqual({ authorization: `Bearer ${CREDENTIAL}`, body: JSON.stringify(BUNDLE) });
  });

  it('maps answers exactly as over plain HTTP: an API error is refused, anything else unreachable', async () => {
    const server = https.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem }, (request, response) => {
      if (request.url?.endsWith('/credentials')) response.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'unauthorized', message: 'no' } }));
      else response.writeHead(502, { 'content-type': 'text/html' }).end('<html>proxy</html>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const client = new ServerClient(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, { tls: { ca: pki.caCertPem, pins: [leafPin] } });
    expect(await client.putCredentials(CREDENTIAL, BUNDLE)).toEqual({ kind: 'refused', status: 401, error: { code: 'unauthorized', message: 'no' } });
    expect(await client.policy(CREDENTIAL)).toEqual({ kind: 'unreachable', message: expect.stringMatching(/^HTTP 502 from /) });
  });

  it('with the right CA but no matching pin: sends nothing, ends unreachable, reports the presented pins', async () => {
    const server = await recordingTlsServer(pki);
    closers.push(server.close);
    const rejected: CertificateRejection[] = [];
    const client = new ServerClient(server.url, { tls: { ca: pki.caCertPem, pins: [randomPin()] }, onCertificateRejected: (rejection) => void rejected.push(rejection) });
    const result = await client.enroll({ token: 'enrolment-token-that-must-never-leave', host: {} as never });
    expect(result).toEqual({ kind: 'unreachable', message: expect.stringMatching(/server certificate rejected \(pin-mismatch/) });
    expect(await client.heartbeat(CREDENTIAL, { status: {} as never })).toMatchObject({ kind: 'unreachable' });
    // Both connections closed without a single byte of application data (had the client written
    // the token, the server would have finished the handshake and read it before the close).
    await waitFor(() => (server.closed() >= 2 ? true : null), 10_000, 'both connections to close');
    expect(server.handshakes()).toBeLessThanOrEqual(2);
    expect(server.bytes()).toBe(0);
    const port = new URL(server.url).port;
    expect(rejected).toEqual([
      { host: `127.0.0.1:${port}`, reason: 'pin-mismatch', code: 'ERR_SEKIMORI_PIN_MISMATCH', presentedPin: leafPin, chainPins: [leafPin, caPin] },
      { host: `127.0.0.1:${port}`, reason: 'pin-mismatch', code: 'ERR_SEKIMORI_PIN_MISMATCH', presentedPin: leafPin, chainPins: [leafPin, caPin] },
    ]);
    // Control: the recorder does see what a client writes.
    const control = tls.connect({ host: '127.0.0.1', port: Number(port), ca: pki.caCertPem });
    await new Promise<void>((resolve) => control.once('secureConnect', () => control.end('hello', resolve)));
    await waitFor(() => (server.bytes() === 5 ? true : null), 10_000, 'the control bytes');
  });

  it('without the CA (public roots only) the same server is untrusted, even when its pin is configured: nothing sent', async () => {
    const server = await recordingTlsServer(pki);
    closers.push(server.close);
    for (const tlsSettings of [null, { pins: [leafPin] }]) {
      const rejected: CertificateRejection[] = [];
      const client = new ServerClient(server.url, { tls: tlsSettings, onCertificateRejected: (rejection) => void rejected.push(rejection) });
      expect(await client.enroll({ token: 'enrolment-token-that-must-never-leave', host: {} as never })).toMatchObject({ kind: 'unreachable' });
      expect(rejected).toEqual([{ host: expect.any(String), reason: 'untrusted', code: expect.stringMatching(/^[A-Z_]+$/), presentedPin: leafPin, chainPins: [leafPin] }]);
    }
    await waitFor(() => (server.closed() >= 2 ? true : null), 10_000, 'both connections to close');
    expect(server.bytes()).toBe(0);
  });

  it('a CA that did not issue the server certificate replaces the public roots: untrusted', async () => {
    const other = await makeTestPki(await tempDir());
    const server = await recordingTlsServer(pki);
    closers.push(server.close);
    const rejected: CertificateRejection[] = [];
    const client = new ServerClient(server.url, { tls: { ca: other.caCertPem }, onCertificateRejected: (rejection) => void rejected.push(rejection) });
    expect(await client.policy(CREDENTIAL)).toMatchObject({ kind: 'unreachable' });
    expect(rejected).toMatchObject([{ reason: 'untrusted', presentedPin: leafPin }]);
    await waitFor(() => (server.closed() >= 1 ? true : null), 10_000, 'the connection to close');
    expect(server.bytes()).toBe(0);
  });

  it('still checks the host name: a certificate for 127.0.0.1 does not serve "localhost", pins or not', async () => {
    const server = await answeringHttpsServer(pki);
    closers.push(server.close);
    const rejected: CertificateRejection[] = [];
    const client = new ServerClient(server.url('localhost'), { tls: { ca: pki.caCertPem, pins: [leafPin] }, onCertificateRejected: (rejection) => void rejected.push(rejection) });
    expect(await client.putCredentials(CREDENTIAL, BUNDLE)).toMatchObject({ kind: 'unreachable' });
    expect(rejected).toMatchObject([{ reason: 'hostname-mismatch', code: 'ERR_TLS_CERT_ALTNAME_INVALID', presentedPin: leafPin }]);
    expect(server.requests).toEqual([]);
  });

  it('an ordinary network failure is unreachable without a certificate report', async () => {
    const server = await recordingTlsServer(pki);
    const url = server.url;
    await server.close();
    const rejected: CertificateRejection[] = [];
    const client = new ServerClient(url, { tls: { ca: pki.caCertPem, pins: [leafPin] }, onCertificateRejected: (rejection) => void rejected.push(rejection) });
    expect(await client.policy(CREDENTIAL)).toEqual({ kind: 'unreachable', message: expect.stringContaining('ECONNREFUSED') });
    expect(rejected).toEqual([]);
  });

  it('refuses plain http:// to another machine without sending anything (unless allowInsecureHttp)', async () => {
    const refused = await new ServerClient('http://198.51.100.7:8443').enroll({ token: 'enrolment-token-that-must-never-leave', host: {} as never });
    expect(refused).toEqual({ kind: 'unreachable', message: expect.stringMatching(/plain http:\/\/ to another machine/) });
    const withPins = await new ServerClient('http://127.0.0.1:9', { tls: { pins: [leafPin] } }).policy(CREDENTIAL);
    expect(withPins).toEqual({ kind: 'unreachable', message: expect.stringMatching(/tls .*configured: use https/) });
  });
});
