import fs from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { TOTP } from 'otpauth';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_SESSION_COOKIE } from '../../shared/api.js';
import type { JournalEntry } from '../../shared/journal.js';
import { readJournal } from '../helpers/agent-state.js';
import { AGENT_CLI, FAST_REPORTER, SERVER_CLI, agentStatus, cli, enrollmentToken, killAll, serverEventCount, startProcess, waitFor, type Proc } from '../helpers/processes.js';
import { makeTestPki, opensslPin, randomPin, type TestPki } from '../helpers/test-pki.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
afterEach(killAll);

/** `sekimori-server start` with --tls-cert/--tls-key; the URL it prints. */
async function startTlsServer(dataDir: string, pki: TestPki, host = '127.0.0.1'): Promise<{ proc: Proc; url: string }> {
  const proc = startProcess(SERVER_CLI, ['start', '--data', dataDir, '--port', '0', '--host', host, '--tls-cert', pki.serverCertFile, '--tls-key', pki.serverKeyFile]);
  const match = await proc.waitForOutput(/listening on (\S+)/);
  return { proc, url: match[1]! };
}

/** The agent's config as the installer writes it (short reporter intervals for tests). */
async function writeAgentConfig(stateDir: string, config: Record<string, unknown>): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  await fs.writeFile(path.join(stateDir, 'config.json'), JSON.stringify({ reporter: FAST_REPORTER, ...config }), { mode: 0o600 });
}

async function readConfig(stateDir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await fs.readFile(path.join(stateDir, 'config.json'), 'utf8')) as Record<string, unknown>;
}

async function devices(dataDir: string): Promise<{ deviceId: string; lastSeenAt: string | null; eventCount: number }[]> {
  const result = await cli(SERVER_CLI, ['devices', '--data', dataDir, '--json']);
  expect(result.code).toBe(0);
  return (JSON.parse(result.stdout) as { devices: { deviceId: string; lastSeenAt: string | null; eventCount: number }[] }).devices;
}

const certificateEntries = (journal: JournalEntry[]): JournalEntry[] => journal.filter((entry) => entry.type === 'tamper.detected' && entry.data.kind === 'server-certificate');

/** Runs an agent that cannot trust the server until it has retried `attempts` times, then stops it (SIGTERM, exit 0). */
async function runRefusedAgent(stateDir: string, attempts: number): Promise<string> {
  const agent = startProcess(AGENT_CLI, ['run', '--state', stateDir]);
  await agent.waitForOutput(/running; state in/);
  await waitFor(() => ((agent.stderr.match(/unreachable for enrolment/g)?.length ?? 0) >= attempts ? true : null), 60_000, `${attempts} refused enrolment attempts`);
  expect((await agentStatus(stateDir)).enrolled).toBe(false);
  await agent.kill('SIGTERM');
  expect((await agent.exited).code).toBe(0);
  return agent.stderr;
}

/** One HTTPS request trusting `ca` (the test's fetch cannot take a CA). */
function httpsRequest(url: string, ca: string, body: unknown): Promise<{ status: number; setCookie: string[]; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, setCookie: response.headers['set-cookie'] ?? [], json: JSON.parse(text) as Record<string, unknown> }));
    });
    request.on('error', reject);
    request.end(JSON.stringify(body));
  });
}

/** An IPv4 address of this machine other than loopback (the dashboard's "HTTPS or this machine" rule needs one), or null. */
function nonLoopbackIpv4(): string | null {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return null;
}

// Real processes with real TLS on 127.0.0.1; the CA and the server certificate are made with openssl per test.
describe('agent ↔ server over HTTPS (sekimori-server start --tls-cert/--tls-key)', { timeout: 180_000 }, () => {
  it('with the installer’s CA and the pin tls-pin prints, the agent enrols, heartbeats and uploads over HTTPS', async () => {
    const pki = await makeTestPki(await tempDir());
    const dataDir = await tempDir();
    const stateDir = await tempDir();
    const pin = await cli(SERVER_CLI, ['tls-pin', '--cert', pki.serverCertFile]);
    expect(pin.code).toBe(0);
    // Exactly one line: the pin, as openssl computes it on its own.
    expect(pin.stdout).toBe(`${await opensslPin(pki.serverCertFile)}\n`);

    const server = await startTlsServer(dataDir, pki);
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const token = await enrollmentToken(dataDir);
    await writeAgentConfig(stateDir, { serverUrl: server.url, enrollToken: token, tls: { ca: pki.caCertPem, pins: [pin.stdout.trim()] } });
    const agent = startProcess(AGENT_CLI, ['run', '--state', stateDir]);
    await agent.waitForOutput(/running; state in/);

    const delivered = async (): Promise<{ deviceId: string; length: number }> =>
      waitFor(async () => {
        const status = await agentStatus(stateDir);
        if (!status.deviceId) return null;
        const count = await serverEventCount(dataDir, status.deviceId);
        return count === status.journalLength && status.ackSeq === status.journalLength ? { deviceId: status.deviceId, length: count } : null;
      }, 60_000, 'the server to hold the whole journal');
    const first = await delivered();
    // Enrolled: the token is spent and gone from the config; the TLS settings stay.
    const config = await readConfig(stateDir);
    expect(config.enrollToken).toBeUndefined();
    expect(config.tls).toEqual({ ca: pki.caCertPem, pins: [pin.stdout.trim()] });
    // Uploads keep flowing after enrolment.
    const marker = await cli(AGENT_CLI, ['journal', 'append', '--state', stateDir, '--type', 'operator.marker', '--data', '{"over":"https"}']);
    expect(marker.code).toBe(0);
    const second = await delivered();
    expect(second.length).toBeGreaterThan(first.length);
    // Heartbeats: the server has seen the terminal.
    const [device] = await devices(dataDir);
    expect(device).toMatchObject({ deviceId: first.deviceId });
    expect(device?.lastSeenAt).not.toBeNull();
    expect(certificateEntries(await readJournal(stateDir))).toEqual([]);
    const verify = await cli(SERVER_CLI, ['events', '--data', dataDir, '--device', first.deviceId, '--verify']);
    expect(verify.stdout.trim()).toBe(`verified ${second.length}`);

    await agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    await server.proc.kill('SIGTERM');
  });

  it('with the right CA but a wrong pin it never enrols: the server has no device, the token stays, one journal entry', async () => {
    const pki = await makeTestPki(await tempDir());
    const dataDir = await tempDir();
    const stateDir = await tempDir();
    const server = await startTlsServer(dataDir, pki);
    const token = await enrollmentToken(dataDir);
    const wrongPin = randomPin();
    await writeAgentConfig(stateDir, { serverUrl: server.url, enrollToken: token, tls: { ca: pki.caCertPem, pins: [wrongPin] } });

    const stderr = await runRefusedAgent(stateDir, 4);
    expect(stderr).toMatch(/server certificate rejected \(pin-mismatch/);

    expect(await devices(dataDir)).toEqual([]);
    expect((await readConfig(stateDir)).enrollToken).toBe(token);
    const journal = await readJournal(stateDir);
    expect(journal.some((entry) => entry.type === 'agent.enrolled')).toBe(false);
    // Four attempts or more, one entry: the host and what the server presented.
    const entries = certificateEntries(journal);
    expect(entries).toHaveLength(1);
    const leafPin = await opensslPin(pki.serverCertFile);
    expect(entries[0]?.data).toEqual({
      kind: 'server-certificate',
      host: new URL(server.url).host,
      reason: 'pin-mismatch',
      code: 'ERR_SEKIMORI_PIN_MISMATCH',
      presentedPin: leafPin,
      chainPins: [leafPin, await opensslPin(pki.caCertFile)],
    });
  });

  it('without the CA (public roots only) it fails the same way: untrusted, no device, token kept, journaled once', async () => {
    const pki = await makeTestPki(await tempDir());
    const dataDir = await tempDir();
    const stateDir = await tempDir();
    const server = await startTlsServer(dataDir, pki);
    const token = await enrollmentToken(dataDir);
    // The right pin, but nothing the public roots vouch for: pins add to the chain check, never replace it.
    await writeAgentConfig(stateDir, { serverUrl: server.url, enrollToken: token, tls: { pins: [await opensslPin(pki.serverCertFile)] } });

    const stderr = await runRefusedAgent(stateDir, 4);
    expect(stderr).toMatch(/server certificate rejected \(untrusted/);
    expect(await devices(dataDir)).toEqual([]);
    expect((await readConfig(stateDir)).enrollToken).toBe(token);
    const entries = certificateEntries(await readJournal(stateDir));
    expect(entries).toHaveLength(1);
    expect(entries[0]?.data).toMatchObject({ kind: 'server-certificate', host: new URL(server.url).host, reason: 'untrusted', presentedPin: await opensslPin(pki.serverCertFile) });
  });

  it('the server refuses a private key group or others can read, and --tls-cert without --tls-key', async () => {
    const pki = await makeTestPki(await tempDir());
    const dataDir = await tempDir();
    await fs.chmod(pki.serverKeyFile, 0o644);
    const refused = await cli(SERVER_CLI, ['start', '--data', dataDir, '--port', '0', '--tls-cert', pki.serverCertFile, '--tls-key', pki.serverKeyFile]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`sekimori-server: --tls-key ${pki.serverKeyFile} is readable or writable by group or others (mode 0644); the server's private key must be owner-only: chmod 600 ${pki.serverKeyFile}\n`);
    expect(refused.stdout).not.toMatch(/listening/);
    await fs.chmod(pki.serverKeyFile, 0o640);
    expect((await cli(SERVER_CLI, ['start', '--data', dataDir, '--port', '0', '--tls-cert', pki.serverCertFile, '--tls-key', pki.serverKeyFile])).code).toBe(1);

    const half = await cli(SERVER_CLI, ['start', '--data', dataDir, '--port', '0', '--tls-cert', pki.serverCertFile]);
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/--tls-cert and --tls-key go together/);
    // A key that is not the certificate's.
    const other = await makeTestPki(await tempDir());
    const mismatch = await cli(SERVER_CLI, ['start', '--data', dataDir, '--port', '0', '--tls-cert', pki.serverCertFile, '--tls-key', other.serverKeyFile]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toMatch(/is not the key of the certificate/);
    const notPem = await cli(SERVER_CLI, ['tls-pin', '--cert', other.serverKeyFile]);
    expect(notPem.code).toBe(1);
    expect(notPem.stderr).toMatch(/holds no PEM certificate/);
  });

  it('the agent refuses to start with plain http:// to another machine unless allowInsecureHttp (labs)', async () => {
    const stateDir = await tempDir();
    await writeAgentConfig(stateDir, {});
    const byFlag = await cli(AGENT_CLI, ['run', '--state', stateDir, '--server', 'http://198.51.100.7:8443']);
    expect(byFlag.code).toBe(1);
    expect(byFlag.stderr).toMatch(/^sekimori-agent: --server: server URL http:\/\/198\.51\.100\.7:8443 is plain http:\/\/ to another machine.*allowInsecureHttp/);
    expect(byFlag.stderr).not.toMatch(/\n\s+at /); // one clear line, no stack trace

    const configDir = await tempDir();
    await writeAgentConfig(configDir, { serverUrl: 'http://198.51.100.7:8443', enrollToken: 'x'.repeat(32) });
    const byConfig = await cli(AGENT_CLI, ['run', '--state', configDir]);
    expect(byConfig.code).toBe(1);
    expect(byConfig.stderr).toMatch(/config\.json: serverUrl: server URL http:\/\/198\.51\.100\.7:8443 is plain http:\/\/ to another machine/);
    // `enroll` reads the same config: refused without touching the network.
    const enroll = await cli(AGENT_CLI, ['enroll', '--state', stateDir, '--server', 'http://198.51.100.7:8443', '--token', 'x'.repeat(32)]);
    expect(enroll.code).toBe(1);
    expect(enroll.stderr).toMatch(/plain http:\/\/ to another machine/);

    // Labs: allowed when the config says so (the agent runs; nothing answers there).
    await writeAgentConfig(configDir, { serverUrl: 'http://198.51.100.7:8443', enrollToken: 'x'.repeat(32), allowInsecureHttp: true });
    const lab = startProcess(AGENT_CLI, ['run', '--state', configDir]);
    await lab.waitForOutput(/running; state in/);
    await lab.kill('SIGTERM');
  });

  const address = nonLoopbackIpv4();
  it.skipIf(address === null)('the dashboard login counts an HTTPS connection from another machine as secure (plain HTTP from there is refused)', async () => {
    const ip = address!;
    const pki = await makeTestPki(await tempDir(), { ips: ['127.0.0.1', ip] });
    const dataDir = await tempDir();
    // The database first, then an account.
    const first = await startTlsServer(dataDir, pki, ip);
    await first.proc.kill('SIGTERM');
    const created = await cli(SERVER_CLI, ['create-admin', '--data', dataDir, '--user', 'kanri']);
    expect(created.code).toBe(0);
    const password = /initial password: (\S+)/.exec(created.stdout)?.[1];
    const secret = /TOTP secret \(base32\): (\S+)/.exec(created.stdout)?.[1];
    expect(password && secret).toBeTruthy();

    // Plain HTTP from this machine's LAN address: not loopback, so refused before any check.
    const plain = startProcess(SERVER_CLI, ['start', '--data', dataDir, '--port', '0', '--host', ip]);
    const plainUrl = (await plain.waitForOutput(/listening on (\S+)/))[1]!;
    expect(plain.stderr).toMatch(/warning: plain HTTP on/);
    const refused = await fetch(`${plainUrl}/api/v1/admin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'kanri', password, code: '000000' }) });
    expect(refused.status).toBe(403);
    expect(JSON.stringify(await refused.json())).toMatch(/needs HTTPS/);
    await plain.kill('SIGTERM');

    const server = await startTlsServer(dataDir, pki, ip);
    expect(server.url).toMatch(new RegExp(`^https://${ip.replace(/\./g, '\\.')}:\\d+$`));
    const code = new TOTP({ secret: secret!, algorithm: 'SHA1', digits: 6, period: 30 }).generate();
    const login = await httpsRequest(`${server.url}/api/v1/admin/login`, pki.caCertPem, { user: 'kanri', password, code });
    expect(login.status).toBe(200);
    expect(login.json).toMatchObject({ user: 'kanri', via: 'session' });
    expect(login.setCookie).toHaveLength(1);
    expect(login.setCookie[0]).toMatch(new RegExp(`^${ADMIN_SESSION_COOKIE}=[^;]+; Path=/; HttpOnly; Secure; SameSite=Strict$`));
    await server.proc.kill('SIGTERM');
  });
});
