import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiPaths, HeartbeatResponseSchema, SignedPolicySchema } from '../../shared/api.js';
import { runCli, type CliIo } from '../../server/cli-commands.js';
import { SERVER_CLI, cli as runBuiltCli } from '../helpers/processes.js';
import { createServer } from '../../server/app.js';
import { POLICY_KEY_FILE } from '../../server/policy-key.js';
import { agentStatus, bootServer, enrolDevice, makeTempDir, policyBody, postJson, type TestServer } from './helpers.js';

/** Runs the built server CLI to completion (the shared process helper: never throws on a non-zero exit). */
const cli = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => runBuiltCli(SERVER_CLI, args);

describe('sekimori-server policy set / show', () => {
  let server: TestServer;
  let policyFile: string;
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (line) => out.push(line), stderr: (line) => err.push(line), untilStopSignal: () => Promise.resolve('SIGTERM') };

  const writePolicy = async (body: unknown, name = 'policy.json'): Promise<string> => {
    const file = path.join(server.root, name);
    await fs.writeFile(file, typeof body === 'string' ? body : JSON.stringify(body, null, 2));
    return file;
  };

  beforeEach(async () => {
    server = await bootServer();
    policyFile = await writePolicy(policyBody());
    out.length = 0;
    err.length = 0;
  });
  afterEach(async () => {
    await server.cleanup();
  });

  it('publishes from a separate process while the server runs; the server delivers it, signed by its key', async () => {
    const { credential } = await enrolDevice(server);
    const set = await cli('policy', 'set', '--data', server.dataDir, '--tier', 'mynumber', policyFile);
    expect(set).toEqual({ code: 0, stdout: 'tier mynumber version 2\n', stderr: '' });
    expect((await cli('policy', 'set', '--data', server.dataDir, '--tier', 'mynumber', policyFile)).stdout).toBe('tier mynumber version 3\n');

    const beat = await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus({ tier: 'mynumber' }) }, credential);
    expect(HeartbeatResponseSchema.parse(beat.json()).policyEtag).toBe(`${server.policyKey.keyId}:mynumber:3`);
    const fetched = await server.app.inject({ method: 'GET', url: ApiPaths.policy, headers: { authorization: `Bearer ${credential}` } });
    const signed = SignedPolicySchema.parse(fetched.json());
    const publicKey = crypto.createPublicKey({ key: Buffer.from(server.policyKey.publicKeyBase64, 'base64'), format: 'der', type: 'spki' });
    expect(crypto.verify(null, Buffer.from(signed.payload), publicKey, Buffer.from(signed.signature, 'base64'))).toBe(true);

    const show = await cli('policy', 'show', '--data', server.dataDir, '--tier', 'mynumber');
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toEqual(JSON.parse(signed.payload));
    expect(JSON.parse(show.stdout)).toMatchObject({ version: 3, tier: 'mynumber', mode: 'enforce' });
  });

  it('refuses a bad rule with exit 1, its line and column on stderr, and stores nothing', async () => {
    const body = policyBody();
    (body.usb as { rules: string[] }).rules[2] = 'block with-interface one-of { 08:*:* ';
    const file = await writePolicy(body, 'bad.json');
    const result = await cli('policy', 'set', '--data', server.dataDir, '--tier', 'lgwan', file);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^sekimori-server: .*bad\.json: usb\.rules\[2\]: line 3, column \d+: /);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(await server.store.policyHistory('lgwan')).toEqual([]);
  });

  it('works with the server stopped, and creates the signing key if the data directory has none', async () => {
    await server.close();
    await fs.rm(path.join(server.dataDir, POLICY_KEY_FILE));
    expect(await runCli(['policy', 'set', '--data', server.dataDir, '--tier', 'internet', policyFile], io)).toBe(0);
    expect(out).toEqual(['tier internet version 2']);
    expect((await fs.stat(path.join(server.dataDir, POLICY_KEY_FILE))).mode & 0o777).toBe(0o600);
    // The server started afterwards uses the key the CLI created.
    const restarted = await createServer({ dataDir: server.dataDir });
    try {
      const current = await restarted.store.currentPolicy('internet');
      expect(current?.keyId).toBe(restarted.policyKey.keyId);
    } finally {
      await restarted.close();
    }
  });

  it.each([
    ['a tier in the document that differs from --tier', () => writePolicy(policyBody({ tier: 'lgwan' })), /tier: the document says "lgwan"/],
    ['a file that is not JSON', () => writePolicy('{ "mode": '), /not valid JSON/],
    ['a missing file', () => Promise.resolve('/nonexistent/policy.json'), /cannot read \/nonexistent\/policy\.json/],
  ])('answers %s with exit 1 and one line on stderr', async (_case, file, message) => {
    expect(await runCli(['policy', 'set', '--data', server.dataDir, '--tier', 'mynumber', await file()], io)).toBe(1);
    expect(out).toEqual([]);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(message);
    expect(await server.store.policyHistory('mynumber')).toEqual([]);
  });

  it('policy show exits 1 when nothing was published', async () => {
    expect(await runCli(['policy', 'show', '--data', server.dataDir, '--tier', 'lgwan'], io)).toBe(1);
    expect(err).toEqual(['sekimori-server: no policy published for tier lgwan']);
  });

  it('never creates a data directory or a key for a mistyped --data', async () => {
    const typo = path.join(server.root, 'typo');
    expect(await runCli(['policy', 'set', '--data', typo, '--tier', 'mynumber', policyFile], io)).toBe(1);
    await expect(fs.stat(typo)).rejects.toThrow(/ENOENT/);
  });

  it.each([
    ['no --tier', ['policy', 'set', '--data', '/tmp/x', 'f.json']],
    ['an unknown tier', ['policy', 'show', '--data', '/tmp/x', '--tier', 'secret']],
    ['no file', ['policy', 'set', '--data', '/tmp/x', '--tier', 'mynumber']],
    ['two files', ['policy', 'set', '--data', '/tmp/x', '--tier', 'mynumber', 'a.json', 'b.json']],
    ['a file given to show', ['policy', 'show', '--data', '/tmp/x', '--tier', 'mynumber', 'a.json']],
    ['no sub-command', ['policy']],
  ])('answers %s with exit 2 and usage on stderr', async (_case, argv) => {
    expect(await runCli(argv, io)).toBe(2);
    expect(out).toEqual([]);
    expect(err.join('\n')).toContain('Usage: sekimori-server');
  });

  it('documents both commands in --help', async () => {
    expect(await runCli(['--help'], io)).toBe(0);
    expect(out.join('\n')).toContain('policy set');
    expect(await runCli(['policy', 'set', '--help'], io)).toBe(0);
    expect(out.join('\n')).toContain('Usage: sekimori-server policy set --data DIR --tier TIER FILE');
  });
});

describe('two servers on one data directory', () => {
  it('share one signing key: the second reads the key the first created', async () => {
    const root = await makeTempDir();
    try {
      const dataDir = path.join(root, 'data');
      const servers = await Promise.all([createServer({ dataDir }), createServer({ dataDir })]);
      await Promise.all(servers.map((s) => s.close()));
      expect(servers[0].policyKey).toEqual(servers[1].policyKey);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
