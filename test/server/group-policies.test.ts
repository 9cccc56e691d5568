import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiErrorSchema, ApiPaths, HeartbeatResponseSchema, SignedPolicySchema, type EnrollResponse } from '../../shared/api.js';
import { PolicySchema, type Policy, type Tier } from '../../shared/policy.js';
import { Journal } from '../../agent/journal/journal.js';
import { PolicySource } from '../../agent/policy-source.js';
import { asSession, readySession, steppingClock } from './admin-helpers.js';
import { adminDelete, adminGet, adminPut, agentStatus, bootServer, enrolDevice, journal as journalEntries, makeTempDir, policyBody, postJson, type TestServer } from './helpers.js';

/**
 * Policies per group of terminals (tier, department) and the tier the server holds for each
 * terminal, through the real app on a SQLite file. Every version a terminal is given is offered to
 * the agent's real PolicySource (signature pinned at enrolment, schema, tier, no rollback): "the
 * agent would accept this" is checked by the agent's own code, and no offer may be refused.
 */

const silent = winston.createLogger({ silent: true });
const servers: TestServer[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await Promise.all(servers.splice(0).map((server) => server.cleanup()));
});

const groupUrl = (tier: Tier, department: string): string => `${ApiPaths.adminPolicies}/${tier}/groups/${encodeURIComponent(department)}`;

/** A policy document whose first rule's label names it (which document a terminal got). */
function named(name: string): Record<string, unknown> {
  return policyBody({ usb: { rules: [`allow id 0930:6545 serial "A1B2C3" label "${name}"`, 'block'], readOnly: [], implicit: 'block' } });
}

function nameOf(policy: Policy): string | undefined {
  return /label "([^"]*)"/.exec(policy.usb.rules[0] ?? '')?.[1];
}

async function boot(): Promise<TestServer> {
  const server = await bootServer({ clock: steppingClock() });
  servers.push(server);
  return server;
}

async function publishTier(server: TestServer, tier: Tier, name: string): Promise<number> {
  const response = await adminPut(server, `${ApiPaths.adminPolicies}/${tier}`, named(name));
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ version: number }>().version;
}

async function publishGroup(server: TestServer, tier: Tier, department: string, name: string): Promise<number> {
  const response = await adminPut(server, groupUrl(tier, department), named(name));
  expect(response.statusCode, response.body).toBe(200);
  expect(response.json()).toMatchObject({ tier, department });
  return response.json<{ version: number }>().version;
}

async function setDepartment(server: TestServer, deviceId: string, department: string | null): Promise<void> {
  expect((await adminPut(server, `${ApiPaths.adminDevices}/${deviceId}/department`, { department })).statusCode).toBe(200);
}

/**
 * A terminal as the agent runs it: heartbeats reporting its installer's tier, fetches the policy
 * when the etag changes and offers it to a real PolicySource pinned to the enrolment's key.
 */
async function terminal(server: TestServer, tier: Tier, hostname: string) {
  const enrolled: EnrollResponse = await enrolDevice(server, { hostname });
  const dir = await makeTempDir('sekimori-agent-');
  const { journal } = await Journal.open(path.join(dir, 'journal.jsonl'));
  cleanups.push(async () => {
    await journal.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const source = new PolicySource(path.join(dir, 'policy.json'), tier, () => enrolled.policyPublicKey, journal, silent);
  let lastEtag: string | null = null;
  const beat = async (reported: Tier | undefined = tier) =>
    HeartbeatResponseSchema.parse((await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus(reported === undefined ? {} : { tier: reported }) }, enrolled.credential)).json());
  const fetchPolicy = async () => {
    const response = await server.app.inject({ method: 'GET', url: ApiPaths.policy, headers: { authorization: `Bearer ${enrolled.credential}` } });
    return response.statusCode === 200 ? SignedPolicySchema.parse(response.json()) : null;
  };
  /** One reporter cycle; the policy in force after it. */
  const sync = async (): Promise<{ fetched: boolean; accepted: boolean; policy: Policy }> => {
    const { policyEtag } = await beat();
    let fetched = false;
    let accepted = false;
    if (policyEtag !== null && policyEtag !== lastEtag) {
      const signed = await fetchPolicy();
      if (signed !== null) {
        fetched = true;
        accepted = await source.offer(signed);
      }
      lastEtag = policyEtag;
    }
    return { fetched, accepted, policy: source.current.policy };
  };
  const rejections = async () => {
    const text = await fs.readFile(path.join(dir, 'journal.jsonl'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.includes('"policy.rejected"'))
      .map((line) => JSON.parse(line) as { data: { reason: string } });
  };
  return { ...enrolled, dir, journal, source, beat, fetchPolicy, sync, rejections };
}

describe('policies per group of terminals (tier × department)', () => {
  it('never gives a terminal a lower version: tier→group, tier bumped while in group, group A→B (older), group deleted→tier, approvals on a group policy', async () => {
    const server = await boot();
    const pc = await terminal(server, 'lgwan', 'soumu-pc-001');
    const versions: number[] = [];
    /** One transition: the agent fetches, accepts, and has the expected document at a higher version. */
    const expectAccepted = async (name: string): Promise<Policy> => {
      const { fetched, accepted, policy } = await pc.sync();
      expect(fetched, `a new etag for ${name}`).toBe(true);
      expect(accepted, `the agent accepts ${name}`).toBe(true);
      expect(nameOf(policy)).toBe(name);
      expect(policy.version).toBeGreaterThan(versions.at(-1) ?? 0);
      versions.push(policy.version);
      return policy;
    };

    expect(await publishTier(server, 'lgwan', 'tier-1')).toBe(2);
    await expectAccepted('tier-1');

    // tier → group: two departments' documents, the terminal in 総務課.
    expect(await publishGroup(server, 'lgwan', '人事課', 'jinji-1')).toBe(3);
    expect(await publishGroup(server, 'lgwan', '総務課', 'soumu-1')).toBe(4);
    await setDepartment(server, pc.deviceId, '総務課');
    expect((await expectAccepted('soumu-1')).version).toBe(4);

    // The tier's document changes while the terminal is in its group: nothing changes for it.
    expect(await publishTier(server, 'lgwan', 'tier-2')).toBe(5);
    expect(await pc.sync()).toMatchObject({ fetched: false });
    expect(nameOf(pc.source.current.policy)).toBe('soumu-1');

    // group A → group B, whose document (version 3) is older than the one in force (4).
    await setDepartment(server, pc.deviceId, '人事課');
    expect((await expectAccepted('jinji-1')).version).toBe(5);
    // The same document again (a restart, a re-fetch) has the same version and bytes.
    const again = await pc.fetchPolicy();
    expect(PolicySchema.parse(JSON.parse(again!.payload)).version).toBe(5);

    // group → tier: 人事課's policy is deleted; tier-2 (version 5) comes back above 5.
    const deleted = await adminDelete(server, groupUrl('lgwan', '人事課'));
    expect(deleted.statusCode, deleted.body).toBe(200);
    expect(deleted.json()).toEqual({ tier: 'lgwan', department: '人事課', version: 6, deletedVersion: 3 });
    expect((await expectAccepted('tier-2')).version).toBe(6);

    // Back to 総務課 (document version 4).
    await setDepartment(server, pc.deviceId, '総務課');
    expect((await expectAccepted('soumu-1')).version).toBe(7);

    // An approved request on top of the group policy: the exception rides on 総務課's document.
    const requestId = `req_${crypto.randomBytes(12).toString('hex')}`;
    const submitted = await postJson(
      server.app,
      ApiPaths.requests,
      {
        id: requestId,
        user: 'tanaka',
        device: { vendorId: '0781', productId: '5567', serial: 'S1', name: 'Cruzer', hash: 'h', parentHash: 'p', viaPort: '1-1', connectType: 'hotplug', interfaces: ['08:06:50'] },
        purpose: '会議資料',
        from: '2026-11-25T00:00:00Z',
        until: '2026-11-26T00:00:00Z',
        access: 'read-write',
        submittedAt: '2026-11-25T00:00:00Z',
      },
      pc.credential,
    );
    expect(submitted.statusCode, submitted.body).toBe(201);
    const approved = await server.app.inject({
      method: 'POST',
      url: `${ApiPaths.adminRequests}/${requestId}/approve`,
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(approved.statusCode, approved.body).toBe(200);
    const withException = await expectAccepted('soumu-1');
    expect(withException.exceptions.map((exception) => exception.id)).toEqual([requestId]);

    // The group's document changes: still above, exception kept.
    expect(await publishGroup(server, 'lgwan', '総務課', 'soumu-2')).toBe(7);
    expect((await expectAccepted('soumu-2')).exceptions.map((exception) => exception.id)).toEqual([requestId]);

    // Group deleted with an exception in force: the tier's document, exception kept, higher again.
    expect((await adminDelete(server, groupUrl('lgwan', '総務課'))).statusCode).toBe(200);
    expect((await expectAccepted('tier-2')).exceptions.map((exception) => exception.id)).toEqual([requestId]);

    // A new tier document.
    await publishTier(server, 'lgwan', 'tier-3');
    await expectAccepted('tier-3');

    expect(await pc.rejections()).toEqual([]);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
  });

  it('gives a group policy only to the terminals of that tier in that department', async () => {
    const server = await boot();
    const inGroup = await terminal(server, 'lgwan', 'soumu-lgwan');
    const otherDepartment = await terminal(server, 'lgwan', 'jinji-lgwan');
    const otherTier = await terminal(server, 'mynumber', 'soumu-mynumber');
    const noDepartment = await terminal(server, 'lgwan', 'no-department');
    await setDepartment(server, inGroup.deviceId, '総務課');
    await setDepartment(server, otherDepartment.deviceId, '人事課');
    await setDepartment(server, otherTier.deviceId, '総務課');
    await publishTier(server, 'lgwan', 'lgwan-tier');
    await publishTier(server, 'mynumber', 'mynumber-tier');
    await publishGroup(server, 'lgwan', '総務課', 'lgwan-soumu');

    expect(nameOf((await inGroup.sync()).policy)).toBe('lgwan-soumu');
    expect(nameOf((await otherDepartment.sync()).policy)).toBe('lgwan-tier');
    expect(nameOf((await otherTier.sync()).policy)).toBe('mynumber-tier');
    expect(nameOf((await noDepartment.sync()).policy)).toBe('lgwan-tier');
    for (const pc of [inGroup, otherDepartment, otherTier, noDepartment]) {
      expect(pc.source.origin).toBe('signed');
      expect(await pc.rejections()).toEqual([]);
    }
  });

  it('publishes, reads, lists, keeps the history of and deletes a group policy; validates like a tier policy', async () => {
    const server = await boot();
    // A group policy alone (no tier policy yet) is a document of its own.
    const published = await adminPut(server, groupUrl('internet', '総務課'), named('g1'));
    expect(published.statusCode, published.body).toBe(200);
    expect(published.json()).toEqual({ tier: 'internet', department: '総務課', version: 2, keyId: server.policyKey.keyId, etag: `${server.policyKey.keyId}:internet:2` });
    // The tier's own sequence is shared: the next tier document is above the group's.
    expect(await publishTier(server, 'internet', 't')).toBe(3);
    expect((await adminGet(server, `${ApiPaths.adminPolicies}/internet/history`)).json().versions.map((v: { version: number }) => v.version)).toEqual([3]);

    const current = await adminGet(server, groupUrl('internet', '総務課'));
    expect(current.statusCode).toBe(200);
    expect(current.json()).toMatchObject({ tier: 'internet', department: '総務課', version: 2, createdBy: 'api-token', policy: { tier: 'internet', version: 2 } });
    expect(JSON.parse(current.json().signed.payload)).toEqual(current.json().policy);

    const list = await adminGet(server, `${ApiPaths.adminPolicies}/internet/groups`);
    expect(list.json()).toMatchObject({ tier: 'internet', groups: [{ department: '総務課', version: 2 }] });
    expect((await adminGet(server, `${ApiPaths.adminPolicies}/lgwan/groups`)).json()).toEqual({ tier: 'lgwan', groups: [] });

    // Bad rule: 400 with line and column, nothing stored.
    const bad = named('x');
    (bad.usb as { rules: string[] }).rules[1] = 'allow id 0930:6545 sereal "x"';
    const refused = await adminPut(server, groupUrl('internet', '総務課'), bad);
    expect(refused.statusCode).toBe(400);
    expect(ApiErrorSchema.parse(refused.json()).error.message).toMatch(/usb\.rules\[1\]: line 2, column 20: unknown attribute 'sereal'/);
    expect((await adminPut(server, groupUrl('internet', '総務課'), named('y'), server.adminToken)).json().version).toBe(4);
    expect((await adminPut(server, groupUrl('internet', '総務課'), { ...named('z'), tier: 'lgwan' })).statusCode).toBe(400);
    // A department name with a control character, an unknown tier.
    expect((await adminPut(server, groupUrl('internet', 'a\u0007b'), named('z'))).statusCode).toBe(400);
    expect((await adminPut(server, `${ApiPaths.adminPolicies}/secret/groups/x`, named('z'))).statusCode).toBe(404);

    expect((await adminDelete(server, groupUrl('internet', '総務課'))).statusCode).toBe(200);
    expect((await adminDelete(server, groupUrl('internet', '総務課'))).statusCode).toBe(404);
    expect((await adminGet(server, groupUrl('internet', '総務課'))).statusCode).toBe(404);
    expect((await adminGet(server, `${ApiPaths.adminPolicies}/internet/groups`)).json().groups).toEqual([]);
    const history = (await adminGet(server, `${groupUrl('internet', '総務課')}/history`)).json();
    expect(history.versions.map((v: { version: number; deleted: boolean }) => [v.version, v.deleted])).toEqual([
      [5, true],
      [4, false],
      [2, false],
    ]);

    const trail = JSON.stringify((await adminGet(server, `${ApiPaths.adminActions}?limit=20`)).json());
    expect(trail).toContain('policy.group.published');
    expect(trail).toContain('policy.group.deleted');
  });

  it('an auditor cannot publish or delete a group policy nor set a tier; a session needs the CSRF token', async () => {
    const clock = steppingClock();
    const server = await bootServer({ clock });
    servers.push(server);
    const { deviceId } = await enrolDevice(server);
    const admin = await readySession(server, 'tanaka', 'admin', clock, clock.advance);
    const auditor = await readySession(server, 'kansa', 'auditor', clock, clock.advance);
    const url = groupUrl('lgwan', '総務課');
    expect((await asSession(server, auditor, 'PUT', url, named('a'))).statusCode).toBe(403);
    expect((await asSession(server, auditor, 'PUT', `${ApiPaths.adminDevices}/${deviceId}/tier`, { tier: 'lgwan' })).statusCode).toBe(403);
    expect((await asSession(server, admin, 'PUT', url, named('a'), { csrf: null })).statusCode).toBe(403);
    expect((await asSession(server, admin, 'PUT', `${ApiPaths.adminDevices}/${deviceId}/tier`, { tier: 'lgwan' }, { csrf: 'wrong' })).statusCode).toBe(403);
    expect((await asSession(server, admin, 'PUT', url, named('a'))).statusCode).toBe(200);
    expect((await asSession(server, auditor, 'GET', url)).statusCode).toBe(200);
    expect((await asSession(server, auditor, 'DELETE', url)).statusCode).toBe(403);
    expect((await asSession(server, admin, 'DELETE', url, undefined, { csrf: null })).statusCode).toBe(403);
    expect((await asSession(server, admin, 'DELETE', url)).statusCode).toBe(200);
    const trail = (await asSession(server, admin, 'GET', `${ApiPaths.adminActions}?limit=20`)).json<{ actions: { action: string; actor: string }[] }>().actions;
    expect(trail.filter((action) => action.action.startsWith('policy.group.')).map((action) => [action.action, action.actor])).toEqual([
      ['policy.group.deleted', 'tanaka'],
      ['policy.group.published', 'tanaka'],
    ]);
  });
});

describe('the tier the server holds for a terminal (not the one it claims)', () => {
  const tamperOf = async (server: TestServer, deviceId: string) =>
    (await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}/chain`)).json<{ tamper: { kind: string; seq: number; detail: Record<string, string> }[] }>().tamper.filter((record) => record.kind === 'tier-mismatch');

  it('takes the first heartbeat’s tier, then ignores claims of another tier: tamper recorded once per change, the stored tier’s policy sent', async () => {
    const server = await boot();
    await publishTier(server, 'lgwan', 'lgwan-tier');
    await publishTier(server, 'mynumber', 'mynumber-tier');
    const pc = await terminal(server, 'lgwan', 'lgwan-pc');
    expect(nameOf((await pc.sync()).policy)).toBe('lgwan-tier');
    const lgwanEtag = (await pc.beat()).policyEtag;

    // A stolen credential claims mynumber: the etag and policy are still lgwan's.
    expect((await pc.beat('mynumber')).policyEtag).toBe(lgwanEtag);
    expect((await pc.beat('mynumber')).policyEtag).toBe(lgwanEtag);
    expect(JSON.parse((await pc.fetchPolicy())!.payload)).toMatchObject({ tier: 'lgwan' });
    let device = (await adminGet(server, `${ApiPaths.adminDevices}/${pc.deviceId}`)).json();
    expect(device).toMatchObject({ tier: 'lgwan', tamperFlags: 1 });
    expect(await tamperOf(server, pc.deviceId)).toMatchObject([{ kind: 'tier-mismatch', seq: 0, detail: { reported: 'mynumber', stored: 'lgwan' } }]);

    // Reporting its tier again ends the episode; a new claim is a new record (at a new journal position).
    await pc.beat('lgwan');
    expect((await postJson(server.app, ApiPaths.events, { entries: journalEntries(1) }, pc.credential)).statusCode).toBe(200);
    await pc.beat('internet');
    await pc.beat('internet');
    expect((await tamperOf(server, pc.deviceId)).map((record) => [record.seq, record.detail.reported])).toEqual([
      [0, 'mynumber'],
      [1, 'internet'],
    ]);
    device = (await adminGet(server, `${ApiPaths.adminDevices}/${pc.deviceId}`)).json();
    expect(device).toMatchObject({ tier: 'lgwan', tamperFlags: 2 });
    // An agent of the claimed tier refuses what the server sends (fail closed: it keeps its last good one).
    expect(await pc.rejections()).toEqual([]);
  });

  it('an administrator changes the tier; the agent refuses the other tier’s policy until its installer config follows', async () => {
    const server = await boot();
    await publishTier(server, 'lgwan', 'lgwan-tier');
    await publishTier(server, 'internet', 'internet-tier');
    const pc = await terminal(server, 'lgwan', 'moved-pc');
    expect(nameOf((await pc.sync()).policy)).toBe('lgwan-tier');

    const set = await adminPut(server, `${ApiPaths.adminDevices}/${pc.deviceId}/tier`, { tier: 'internet' });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json()).toEqual({ deviceId: pc.deviceId, tier: 'internet', previous: 'lgwan' });
    expect((await adminGet(server, `${ApiPaths.adminDevices}/${pc.deviceId}`)).json()).toMatchObject({ tier: 'internet' });
    // The agent still runs with tier lgwan: it gets internet's policy and refuses it, keeping lgwan's.
    const { fetched, accepted, policy } = await pc.sync();
    expect({ fetched, accepted }).toEqual({ fetched: true, accepted: false });
    expect(nameOf(policy)).toBe('lgwan-tier');
    expect((await pc.rejections()).at(-1)?.data.reason).toMatch(/policy is for tier internet, this terminal is lgwan/);
    // Its report of the old tier is expected during the change: no tamper record.
    expect(await tamperOf(server, pc.deviceId)).toEqual([]);

    // The operator changes the installer config: the agent restarts as internet and accepts.
    const moved = new PolicySource(path.join(pc.dir, 'policy-internet.json'), 'internet', () => pc.policyPublicKey, pc.journal, silent);
    const hb = HeartbeatResponseSchema.parse((await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus({ tier: 'internet' }) }, pc.credential)).json());
    expect(hb.policyEtag).toBe(`${server.policyKey.keyId}:internet:2`);
    expect(await moved.offer((await pc.fetchPolicy())!)).toBe(true);
    expect(nameOf(moved.current.policy)).toBe('internet-tier');
    expect(await tamperOf(server, pc.deviceId)).toEqual([]);

    // Refusals: unknown device, bad tier.
    expect((await adminPut(server, `${ApiPaths.adminDevices}/dev_${'0'.repeat(32)}/tier`, { tier: 'lgwan' })).statusCode).toBe(404);
    expect((await adminPut(server, `${ApiPaths.adminDevices}/${pc.deviceId}/tier`, { tier: 'secret' })).statusCode).toBe(400);
    const trail = JSON.stringify((await adminGet(server, `${ApiPaths.adminActions}?limit=10`)).json());
    expect(trail).toContain('device.tier');
  });

  it('gives roaming credential bundles by the stored tier, not the claimed one', async () => {
    const server = await boot();
    const lgwan = await enrolDevice(server, { hostname: 'lgwan-pc' });
    const other = await enrolDevice(server, { hostname: 'mynumber-pc' });
    await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus({ tier: 'lgwan' }) }, lgwan.credential);
    await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus({ tier: 'mynumber' }) }, other.credential);
    const bundle = {
      user: 'tanaka',
      pin: { algorithm: 'scrypt', N: 16384, r: 8, p: 1, keyLength: 32, salt: 'bXVuaWNpcGFsLXNhbHQ=', hash: 'q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=' },
      totpSecret: 'KRUGKIDROVUWG2ZAMJZG653OEBTG66BA',
      enrolledAt: '2026-11-25T09:00:00.000+09:00',
    };
    const stored = await server.app.inject({ method: 'PUT', url: ApiPaths.credentials, headers: { authorization: `Bearer ${lgwan.credential}`, 'content-type': 'application/json' }, payload: JSON.stringify(bundle) });
    expect(stored.json()).toMatchObject({ tier: 'lgwan' });

    // The mynumber terminal claims lgwan: still no lgwan bundle for it.
    await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus({ tier: 'lgwan' }) }, other.credential);
    expect((await postJson(server.app, ApiPaths.credentialsLookup, { user: 'tanaka' }, other.credential)).statusCode).toBe(404);
    // An administrator moves it to lgwan: now it is.
    expect((await adminPut(server, `${ApiPaths.adminDevices}/${other.deviceId}/tier`, { tier: 'lgwan' })).statusCode).toBe(200);
    const lookup = await postJson(server.app, ApiPaths.credentialsLookup, { user: 'tanaka' }, other.credential);
    expect(lookup.statusCode).toBe(200);
    expect(lookup.json()).toMatchObject({ user: 'tanaka' });
  });
});
