import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiErrorSchema, ApiPaths, EnrollResponseSchema, HeartbeatResponseSchema, SignedPolicySchema, type SignedPolicy } from '../../shared/api.js';
import { canonicalJson } from '../../shared/canonical-json.js';
import { validatePolicy, type Tier } from '../../shared/policy.js';
import { createServer } from '../../server/app.js';
import { POLICY_KEY_FILE, loadOrCreatePolicyKey } from '../../server/policy-key.js';
import {
  adminGet,
  adminPut,
  agentStatus,
  bootServer,
  enrolDevice,
  hostFacts,
  makeTempDir,
  movableClock,
  policyBody,
  postJson,
  type TestServer,
} from './helpers.js';

const policiesUrl = (tier: string): string => `${ApiPaths.adminPolicies}/${tier}`;

function verifies(publicKeyBase64: string, signed: SignedPolicy): boolean {
  const publicKey = crypto.createPublicKey({ key: Buffer.from(publicKeyBase64, 'base64'), format: 'der', type: 'spki' });
  return crypto.verify(null, Buffer.from(signed.payload, 'utf8'), publicKey, Buffer.from(signed.signature, 'base64'));
}

describe('the policy signing key', () => {
  let root: string;
  beforeEach(async () => {
    root = await makeTempDir();
  });
  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('is created once, mode 0600, and reused across restarts (same key id)', async () => {
    const dataDir = path.join(root, 'data');
    const first = await createServer({ dataDir });
    const file = path.join(dataDir, POLICY_KEY_FILE);
    const pem = await fs.readFile(file, 'utf8');
    await first.close();
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(first.policyKey.keyId).toMatch(/^[0-9a-f]{16}$/);

    const second = await createServer({ dataDir });
    await second.close();
    expect(second.policyKey).toEqual(first.policyKey);
    expect(await fs.readFile(file, 'utf8')).toBe(pem);
    // No temporary file is left behind.
    expect((await fs.readdir(dataDir)).filter((name) => name.includes('.tmp'))).toEqual([]);
  });

  it('has the key id the agent computes: SHA-256 of the SPKI DER, first 16 hex digits', () => {
    const key = loadOrCreatePolicyKey(root);
    const der = Buffer.from(key.publicKeyBase64, 'base64');
    expect(key.keyId).toBe(crypto.createHash('sha256').update(der).digest('hex').slice(0, 16));
    expect(crypto.createPublicKey({ key: der, format: 'der', type: 'spki' }).asymmetricKeyType).toBe('ed25519');
  });

  it('tightens a key file readable by others back to 0600', async () => {
    loadOrCreatePolicyKey(root);
    await fs.chmod(path.join(root, POLICY_KEY_FILE), 0o644);
    loadOrCreatePolicyKey(root);
    expect((await fs.stat(path.join(root, POLICY_KEY_FILE))).mode & 0o777).toBe(0o600);
  });

  it('refuses a key file that is not an Ed25519 key, without overwriting it', async () => {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' });
    await fs.writeFile(path.join(root, POLICY_KEY_FILE), pem, { mode: 0o600 });
    expect(() => loadOrCreatePolicyKey(root)).toThrow(/not an Ed25519 key/);
    await fs.writeFile(path.join(root, POLICY_KEY_FILE), 'garbage', { mode: 0o600 });
    expect(() => loadOrCreatePolicyKey(root)).toThrow(/cannot read policy signing key/);
    expect(await fs.readFile(path.join(root, POLICY_KEY_FILE), 'utf8')).toBe('garbage');
  });
});

describe('signed policies through the API', () => {
  let server: TestServer;
  const clock = movableClock();

  beforeEach(async () => {
    server = await bootServer({ clock });
  });
  afterEach(async () => {
    await server.cleanup();
  });

  const publish = async (tier: Tier, body: unknown = policyBody()): Promise<{ version: number; etag: string; keyId: string }> => {
    const response = await adminPut(server, policiesUrl(tier), body);
    if (response.statusCode !== 200) throw new Error(`publish failed: ${response.statusCode} ${response.body}`);
    return response.json();
  };
  const beat = (credential: string, tier?: Tier) =>
    postJson(server.app, ApiPaths.heartbeat, { status: agentStatus(tier === undefined ? {} : { tier }) }, credential);
  const etagOf = async (credential: string, tier?: Tier): Promise<string | null> =>
    HeartbeatResponseSchema.parse((await beat(credential, tier)).json()).policyEtag;
  const fetchPolicy = (credential?: string) =>
    server.app.inject({ method: 'GET', url: ApiPaths.policy, headers: credential === undefined ? {} : { authorization: `Bearer ${credential}` } });

  it('enrolment hands out the public key that verifies a published policy', async () => {
    const token = await server.issueToken();
    const enrolled = EnrollResponseSchema.parse((await postJson(server.app, ApiPaths.enroll, { token, host: hostFacts() })).json());
    expect(enrolled.policyPublicKey).toBe(server.policyKey.publicKeyBase64);
    await publish('mynumber');

    const signed = SignedPolicySchema.parse((await fetchPolicy(enrolled.credential)).json());
    expect(signed.keyId).toBe(server.policyKey.keyId);
    expect(verifies(enrolled.policyPublicKey, signed)).toBe(true);
    expect(verifies(enrolled.policyPublicKey, { ...signed, payload: signed.payload.replace('"enforce"', '"audit"') })).toBe(false);
    const otherKey = crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    expect(verifies(otherKey, signed)).toBe(false);
  });

  it('PUT sets version (from 2, increasing), issuedAt and tier, and signs the canonical JSON', async () => {
    const first = await publish('mynumber', policyBody({ version: 999, issuedAt: '2000-01-01T00:00:00Z' }));
    expect(first).toEqual({ tier: 'mynumber', version: 2, keyId: server.policyKey.keyId, etag: `${server.policyKey.keyId}:mynumber:2` });
    clock.advanceHours(1);
    expect((await publish('mynumber', policyBody({ tier: 'mynumber' }))).version).toBe(3);
    // Versions are per tier.
    expect((await publish('lgwan')).version).toBe(2);

    const current = (await adminGet(server, policiesUrl('mynumber'))).json();
    expect(current).toMatchObject({ tier: 'mynumber', version: 3, etag: `${server.policyKey.keyId}:mynumber:3`, createdBy: 'api-token' });
    expect(current.policy).toMatchObject({ version: 3, tier: 'mynumber', issuedAt: clock().toISOString(), mode: 'enforce' });
    expect(current.signed.payload).toBe(canonicalJson(current.policy));
    expect(validatePolicy(JSON.parse(current.signed.payload)).ok).toBe(true);
    expect(verifies(server.policyKey.publicKeyBase64, current.signed)).toBe(true);
  });

  it('keeps the history; a rollback is the older document published again as a new version', async () => {
    await publish('internet', policyBody({ mode: 'audit' }));
    await publish('internet', policyBody({ mode: 'enforce' }));
    const current = (await adminGet(server, policiesUrl('internet'))).json();
    expect(current.policy.mode).toBe('enforce');
    // Roll back to version 2's document, as read back from the API: version and issuedAt are replaced.
    await publish('internet', { ...current.policy, mode: 'audit' });
    const history = (await adminGet(server, `${policiesUrl('internet')}/history`)).json();
    expect(history.tier).toBe('internet');
    expect(history.versions.map((v: { version: number }) => v.version)).toEqual([4, 3, 2]);
    expect((await adminGet(server, policiesUrl('internet'))).json().policy).toMatchObject({ version: 4, mode: 'audit' });
  });

  it('refuses a bad rule with its line and column, and stores nothing', async () => {
    const body = policyBody();
    (body.usb as { rules: string[] }).rules[1] = 'allow id 0930:6545 sereal "x"';
    const response = await adminPut(server, policiesUrl('mynumber'), body);
    expect(response.statusCode).toBe(400);
    const error = ApiErrorSchema.parse(response.json()).error;
    expect(error.code).toBe('bad-request');
    expect(error.message).toMatch(/usb\.rules\[1\]: line 2, column 20: unknown attribute 'sereal'/);
    expect((await adminGet(server, `${policiesUrl('mynumber')}/history`)).json().versions).toEqual([]);
    expect((await adminGet(server, policiesUrl('mynumber'))).statusCode).toBe(404);
  });

  it.each([
    ['an unknown field', policyBody({ extra: true }), /extra/],
    ['a missing section', (({ lock: _lock, ...rest }) => rest)(policyBody()), /lock/],
    ['an array', [], /must be a JSON object/],
    ['a string', 'policy', /must be a JSON object/],
    ['a tier that differs from the path', policyBody({ tier: 'internet' }), /tier: the document says "internet" but is published for "mynumber"/],
  ])('refuses %s: 400 bad-request', async (_case, body, message) => {
    const response = await adminPut(server, policiesUrl('mynumber'), body);
    expect(response.statusCode).toBe(400);
    expect(ApiErrorSchema.parse(response.json()).error).toMatchObject({ code: 'bad-request', message: expect.stringMatching(message) });
    expect((await adminGet(server, `${policiesUrl('mynumber')}/history`)).json().versions).toEqual([]);
  });

  it('needs the admin token on every policy route', async () => {
    const { credential } = await enrolDevice(server);
    for (const bearer of [null, 'wrong', credential]) {
      const put = await adminPut(server, policiesUrl('mynumber'), policyBody(), bearer);
      expect(put.statusCode).toBe(401);
      expect(put.headers['www-authenticate']).toBe('Bearer');
      for (const url of [policiesUrl('mynumber'), `${policiesUrl('mynumber')}/history`]) {
        const headers = bearer === null ? {} : { authorization: `Bearer ${bearer}` };
        expect((await server.app.inject({ method: 'GET', url, headers })).statusCode).toBe(401);
      }
    }
    expect((await adminGet(server, `${policiesUrl('mynumber')}/history`)).json().versions).toEqual([]);
  });

  it('answers 404 for an unknown tier, and for a tier with no policy yet', async () => {
    for (const response of [
      await adminPut(server, policiesUrl('secret'), policyBody()),
      await adminGet(server, policiesUrl('secret')),
      await adminGet(server, `${policiesUrl('secret')}/history`),
      await adminGet(server, policiesUrl('lgwan')),
    ]) {
      expect(response.statusCode).toBe(404);
      expect(ApiErrorSchema.parse(response.json()).error.code).toBe('not-found');
    }
  });

  it('heartbeat etag: null before publishing, set after, changed by a new version', async () => {
    const { credential } = await enrolDevice(server);
    expect(await etagOf(credential, 'mynumber')).toBeNull();
    const first = await publish('mynumber');
    expect(await etagOf(credential, 'mynumber')).toBe(first.etag);
    expect(await etagOf(credential, 'mynumber')).toBe(first.etag);
    const second = await publish('mynumber');
    expect(second.etag).not.toBe(first.etag);
    expect(await etagOf(credential, 'mynumber')).toBe(`${server.policyKey.keyId}:mynumber:3`);
  });

  it('heartbeat etag and GET /policy follow the device tier; no tier reported means mynumber', async () => {
    const lgwan = await enrolDevice(server, { hostname: 'lgwan-pc' });
    const untiered = await enrolDevice(server, { hostname: 'old-agent' });
    const mynumber = await publish('mynumber');
    expect(await etagOf(lgwan.credential, 'lgwan')).toBeNull();
    expect((await fetchPolicy(lgwan.credential)).statusCode).toBe(404);
    expect(await etagOf(untiered.credential)).toBe(mynumber.etag);

    const lgwanPolicy = await publish('lgwan', policyBody({ mode: 'audit' }));
    expect(await etagOf(lgwan.credential, 'lgwan')).toBe(lgwanPolicy.etag);
    const signed = SignedPolicySchema.parse((await fetchPolicy(lgwan.credential)).json());
    expect(JSON.parse(signed.payload)).toMatchObject({ tier: 'lgwan', mode: 'audit', version: 2 });
    expect(JSON.parse(SignedPolicySchema.parse((await fetchPolicy(untiered.credential)).json()).payload).tier).toBe('mynumber');
  });

  it('GET /policy: 404 before publishing, then the exact signed bytes; before the first heartbeat it is the mynumber policy', async () => {
    const { credential } = await enrolDevice(server);
    const before = await fetchPolicy(credential);
    expect(before.statusCode).toBe(404);
    expect(ApiErrorSchema.parse(before.json()).error.code).toBe('not-found');

    await publish('mynumber');
    const response = await fetchPolicy(credential);
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const signed = SignedPolicySchema.parse(response.json());
    const admin = (await adminGet(server, policiesUrl('mynumber'))).json();
    expect(signed).toEqual(admin.signed);
    expect(verifies(server.policyKey.publicKeyBase64, signed)).toBe(true);
  });

  it('GET /policy needs a device credential', async () => {
    for (const bearer of [undefined, 'nope', server.adminToken]) {
      const response = await fetchPolicy(bearer);
      expect(response.statusCode).toBe(401);
      expect(response.headers['www-authenticate']).toBe('Bearer');
    }
  });
});
