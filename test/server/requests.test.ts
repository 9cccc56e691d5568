import crypto from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiPaths, HeartbeatResponseSchema, SignedPolicySchema } from '../../shared/api.js';
import { PolicySchema } from '../../shared/policy.js';
import { DeviceRequestSchema, deviceMatchRule } from '../../shared/requests.js';
import { builtInPolicyDocument } from '../../agent/policy/profiles.js';
import { agentStatus, bootServer, enrolDevice, movableClock, postJson, type TestServer } from './helpers.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.cleanup()));
});

const stick = {
  vendorId: '0930',
  productId: '6545',
  serial: '<img src=x onerror=alert(1)>',
  name: 'TransMemory',
  hash: 'kq9Wd1b0Yv2Xq9p8yVb7lCk3n2m1QwErTyUiOpAsDfG=',
  parentHash: 'p',
  viaPort: '1-1',
  connectType: 'hotplug',
  interfaces: ['08:06:50'],
};

async function rig() {
  const clock = movableClock(new Date('2026-11-26T00:00:00.000Z'));
  const server = await bootServer({ clock });
  servers.push(server);
  const device = await enrolDevice(server);
  const bearer = device.credential;
  await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus({ tier: 'lgwan' }) }, bearer);
  const submit = (overrides: Record<string, unknown> = {}) =>
    postJson(
      server.app,
      ApiPaths.requests,
      {
        id: `req_${crypto.randomBytes(12).toString('hex')}`,
        user: 'tanaka',
        device: stick,
        purpose: '会議資料の受け取り',
        from: '2026-11-26T00:00:00Z',
        until: '2026-11-26T08:00:00Z',
        access: 'read-write',
        submittedAt: '2026-11-26T00:00:00Z',
        ...overrides,
      },
      bearer,
    );
  const admin = (method: 'GET' | 'POST', url: string, body?: unknown) =>
    server.app.inject({ method, url, headers: { authorization: `Bearer ${server.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, payload: body === undefined ? undefined : JSON.stringify(body) });
  const heartbeat = async () => HeartbeatResponseSchema.parse((await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus({ tier: 'lgwan' }) }, bearer)).json());
  const policy = async () => {
    const response = await server.app.inject({ method: 'GET', url: ApiPaths.policy, headers: { authorization: `Bearer ${bearer}` } });
    return response.statusCode === 200 ? SignedPolicySchema.parse(response.json()) : null;
  };
  const publish = async () => {
    const document = builtInPolicyDocument('lgwan');
    const response = await server.app.inject({ method: 'PUT', url: `${ApiPaths.adminPolicies}/lgwan`, headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' }, payload: JSON.stringify(document) });
    expect(response.statusCode, response.body).toBeLessThan(300);
  };
  return { server, clock, device, submit, admin, heartbeat, policy, publish };
}

describe('device requests (申請 → 承認/却下)', () => {
  it('stores a request once (a resend is idempotent) with the match rule derived from the agent-reported identity', async () => {
    const r = await rig();
    const id = `req_${'1'.repeat(24)}`;
    const first = await r.submit({ id });
    expect(first.statusCode).toBe(201);
    expect(first.json()).toEqual({ id, state: 'pending' });
    expect((await r.submit({ id })).statusCode).toBe(200);
    const listed = await r.admin('GET', `${ApiPaths.adminRequests}?state=pending`);
    const requests = listed.json<{ requests: unknown[] }>().requests.map((row) => DeviceRequestSchema.parse(row));
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ id, user: 'tanaka', rule: deviceMatchRule(stick), state: 'pending', hostname: 'soumu-pc-001' });
    // Nonsense is refused and stores nothing.
    expect((await r.submit({ until: '2026-11-25T00:00:00Z' })).statusCode).toBe(400);
    expect((await r.submit({ rule: 'allow' })).statusCode).toBe(400);
    expect((await r.submit({ id: 'req_nothex' })).statusCode).toBe(400);
    expect((await r.admin('GET', ApiPaths.adminRequests)).json<{ requests: unknown[] }>().requests).toHaveLength(1);
  });

  it('pages the administrators’ list with the answer’s next cursor: every request exactly once, newest first, then next null', async () => {
    const r = await rig();
    const submitted: { id: string; receivedAt: string }[] = [];
    for (let i = 0; i < 7; i += 1) {
      // Some share a receivedAt (ties are ordered by id), some do not.
      if (i % 3 === 0) r.clock.advanceHours(0.001);
      const { id } = (await r.submit()).json<{ id: string }>();
      submitted.push({ id, receivedAt: r.clock().toISOString() });
    }
    const expected = [...submitted].sort((a, b) => (a.receivedAt === b.receivedAt ? (a.id < b.id ? 1 : -1) : a.receivedAt < b.receivedAt ? 1 : -1)).map((row) => row.id);
    const seen: string[] = [];
    const pages: number[] = [];
    let before: string | null = null;
    for (let guard = 0; guard < 10; guard += 1) {
      const response = await r.admin('GET', `${ApiPaths.adminRequests}?state=pending&limit=3${before === null ? '' : `&before=${encodeURIComponent(before)}`}`);
      expect(response.statusCode, response.body).toBe(200);
      const page = response.json<{ requests: unknown[]; next: string | null }>();
      const ids = page.requests.map((row) => DeviceRequestSchema.parse(row).id);
      seen.push(...ids);
      pages.push(ids.length);
      before = page.next;
      if (before === null) break;
    }
    expect(pages).toEqual([3, 3, 1]);
    expect(seen).toEqual(expected);
    // A page that ends exactly at the last request says so (no empty page after it).
    expect((await r.admin('GET', `${ApiPaths.adminRequests}?limit=7`)).json()).toMatchObject({ next: null });
    expect((await r.admin('GET', `${ApiPaths.adminRequests}?limit=6`)).json<{ next: string | null }>().next).not.toBeNull();
    // Anything but a cursor of this list is refused.
    for (const bad of ['nonsense', `2026-11-26T00:00:00.000Z|${'x'.repeat(10)}`, "' OR 1=1 --"]) {
      expect((await r.admin('GET', `${ApiPaths.adminRequests}?before=${encodeURIComponent(bad)}`)).statusCode, bad).toBe(400);
    }
  });

  it('an approval becomes an exception in that terminal’s next signed policy, with a higher version; revocation removes it', async () => {
    const r = await rig();
    const { id } = (await r.submit()).json<{ id: string }>();
    // No policy published for the tier yet: approving is refused with the reason.
    const early = await r.admin('POST', `${ApiPaths.adminRequests}/${id}/approve`, {});
    expect(early.statusCode).toBe(409);
    await r.publish();
    const before = await r.heartbeat();
    const tierPolicy = await r.policy();
    const tierVersion = PolicySchema.parse(JSON.parse(tierPolicy!.payload)).version;

    // Widening is refused; narrowing to read-only and a shorter window is kept.
    expect((await r.admin('POST', `${ApiPaths.adminRequests}/${id}/approve`, { until: '2026-11-27T00:00:00Z' })).statusCode).toBe(400);
    const approved = await r.admin('POST', `${ApiPaths.adminRequests}/${id}/approve`, { until: '2026-11-26T04:00:00Z', access: 'read-only' });
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json()).toMatchObject({ state: 'approved', approvedUntil: '2026-11-26T04:00:00.000Z', approvedAccess: 'read-only', decidedBy: 'api-token' });
    expect((await r.admin('POST', `${ApiPaths.adminRequests}/${id}/approve`, {})).statusCode).toBe(409);

    const after = await r.heartbeat();
    expect(after.policyEtag).not.toBe(before.policyEtag);
    const signed = (await r.policy())!;
    const key = crypto.createPublicKey({ key: Buffer.from(r.device.policyPublicKey, 'base64'), format: 'der', type: 'spki' });
    expect(crypto.verify(null, Buffer.from(signed.payload, 'utf8'), key, Buffer.from(signed.signature, 'base64'))).toBe(true);
    const document = PolicySchema.parse(JSON.parse(signed.payload));
    expect(document.version).toBe(tierVersion + 1);
    expect(document.exceptions).toEqual([{ id, device: deviceMatchRule(stick), user: 'tanaka', until: '2026-11-26T04:00:00.000Z', access: 'read-only' }]);
    // Same etag, same document.
    expect((await r.policy())!.payload).toBe(signed.payload);

    // Time passes beyond the window: the request reads expired (the agent expires it by its clock).
    r.clock.advanceHours(5);
    expect(DeviceRequestSchema.parse((await r.admin('GET', ApiPaths.adminRequests)).json<{ requests: unknown[] }>().requests[0]).state).toBe('expired');

    const revoked = await r.admin('POST', `${ApiPaths.adminRequests}/${id}/revoke`);
    expect(revoked.json()).toMatchObject({ state: 'revoked' });
    const final = PolicySchema.parse(JSON.parse((await r.policy())!.payload));
    expect(final.version).toBe(tierVersion + 2);
    expect(final.exceptions).toEqual([]);

    const trail = await r.admin('GET', `${ApiPaths.adminActions}?limit=10`);
    expect(JSON.stringify(trail.json())).toContain('request.approved');
    expect(JSON.stringify(trail.json())).toContain('request.revoked');
  });

  it('a rejection needs a reason and changes no policy; the terminal sees its requests and states', async () => {
    const r = await rig();
    await r.publish();
    const { id } = (await r.submit()).json<{ id: string }>();
    const etag = (await r.heartbeat()).policyEtag;
    expect((await r.admin('POST', `${ApiPaths.adminRequests}/${id}/reject`, { reason: ' ' })).statusCode).toBe(400);
    expect((await r.admin('POST', `${ApiPaths.adminRequests}/${id}/reject`, { reason: '業務上の必要性が確認できません' })).json()).toMatchObject({ state: 'rejected' });
    expect((await r.heartbeat()).policyEtag).toBe(etag);
    const mine = await r.server.app.inject({ method: 'GET', url: ApiPaths.requests, headers: { authorization: `Bearer ${r.device.credential}` } });
    expect(mine.json()).toMatchObject({ requests: [{ id, state: 'rejected', reason: '業務上の必要性が確認できません' }] });
    // Another terminal cannot see or reuse it.
    const other = await enrolDevice(r.server, { hostname: 'other-pc' });
    const theirs = await r.server.app.inject({ method: 'GET', url: ApiPaths.requests, headers: { authorization: `Bearer ${other.credential}` } });
    expect(theirs.json()).toEqual({ requests: [] });
    const reuse = await postJson(r.server.app, ApiPaths.requests, { id, user: 'x', device: stick, purpose: 'p', from: '2026-11-26T00:00:00Z', until: '2026-11-26T08:00:00Z', access: 'read-only', submittedAt: '2026-11-26T00:00:00Z' }, other.credential);
    expect(reuse.statusCode).toBe(409);
  });
});
