import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiErrorSchema, ApiPaths, DeviceSummarySchema } from '../../shared/api.js';
import { GENESIS_HASH, JournalEntrySchema } from '../../shared/journal.js';
import { DATABASE_FILE } from '../../server/sqlite-store.js';
import { adminGet, bootServer, enrolDevice, journal, postJson, rehashed, type TestServer } from './helpers.js';

describe('admin API', () => {
  let server: TestServer;
  let deviceId: string;
  let credential: string;

  beforeEach(async () => {
    server = await bootServer();
    ({ deviceId, credential } = await enrolDevice(server));
  });
  afterEach(async () => {
    await server.cleanup();
  });

  const upload = (entries: unknown[]) => postJson(server.app, ApiPaths.events, { entries }, credential);
  const chainUrl = () => `${ApiPaths.adminDevices}/${deviceId}/chain`;

  it('keeps its token in DIR/admin-token, readable by the owner only, in a 0700 data directory', () => {
    expect(server.adminTokenFile).toBe(path.join(server.dataDir, 'admin-token'));
    expect(fs.statSync(server.adminTokenFile).mode & 0o777).toBe(0o600);
    expect(fs.statSync(server.dataDir).mode & 0o777).toBe(0o700);
    expect(server.adminToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it.each([
    ['no token', undefined],
    ['a wrong token', 'Bearer wrong-token-wrong-token-wrong-token-00'],
    ['a device credential', () => `Bearer ${credential}`],
  ])('refuses %s with 401', async (_case, authorization) => {
    const value = typeof authorization === 'function' ? authorization() : authorization;
    const response = await server.app.inject({
      method: 'GET',
      url: ApiPaths.adminDevices,
      headers: value === undefined ? {} : { authorization: value },
    });
    expect(response.statusCode).toBe(401);
    expect(ApiErrorSchema.parse(response.json()).error.code).toBe('unauthorized');
  });

  it('lists devices with their event and tamper counts', async () => {
    const chain = journal(4);
    await upload(chain);
    await upload([chain[0], journal(1, { seq: 9, hash: GENESIS_HASH })[0]]);
    const response = await adminGet(server, ApiPaths.adminDevices);
    expect(response.statusCode).toBe(200);
    const devices = response.json().devices.map((d: unknown) => DeviceSummarySchema.parse(d));
    expect(devices).toEqual([
      {
        deviceId,
        hostname: 'soumu-pc-001',
        os: 'linux',
        agentVersion: '0.1.0',
        enrolledAt: expect.any(String),
        lastSeenAt: null,
        enforcement: null,
        lockState: null,
        ackSeq: 4,
        eventCount: 4,
        tamperCount: 1,
      },
    ]);
  });

  it('pages through a device\'s events with after and limit', async () => {
    const chain = journal(7);
    await upload(chain);
    const page = await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}/events?after=2&limit=3`);
    expect(page.statusCode).toBe(200);
    expect(page.json().events.map((e: unknown) => JournalEntrySchema.parse(e))).toEqual(chain.slice(2, 5));
    const all = await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}/events`);
    expect(all.json().events).toHaveLength(7);
  });

  it.each([
    ['a limit above 1000', 'limit=1001'],
    ['a limit of 0', 'limit=0'],
    ['a negative after', 'after=-1'],
    ['a non-numeric after', 'after=abc'],
    ['an unknown parameter', 'sort=desc'],
  ])('refuses %s with 400 bad-request', async (_case, query) => {
    const response = await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}/events?${query}`);
    expect(response.statusCode).toBe(400);
    expect(ApiErrorSchema.parse(response.json()).error.code).toBe('bad-request');
  });

  it('answers 404 for a device that does not exist and 400 for something that is not a device id', async () => {
    const unknown = await adminGet(server, `${ApiPaths.adminDevices}/dev_${'0'.repeat(32)}/chain`);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('not-found');
    const malformed = await adminGet(server, `${ApiPaths.adminDevices}/..%2F..%2Fetc/events`);
    expect(malformed.statusCode).toBe(400);
  });

  it('reports a stored chain verified from genesis, with the tamper refused at upload', async () => {
    const chain = journal(5);
    await upload(chain);
    await upload([rehashed(chain[2]!, { data: { forged: true } })]);
    const response = await adminGet(server, chainUrl());
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      count: 5,
      verified: true,
      firstBadSeq: null,
      reason: null,
      head: { seq: 5, hash: chain[4]!.hash },
      tamper: [{ kind: 'fork', seq: 3, detail: expect.any(Object), detectedAt: expect.any(String) }],
    });
  });

  it('reports a device without events as verified with count 0', async () => {
    expect((await adminGet(server, chainUrl())).json()).toMatchObject({ count: 0, verified: true, firstBadSeq: null });
  });

  it('finds the first bad seq when stored events were edited behind the server\'s back', async () => {
    await upload(journal(6));
    const db = new Database(path.join(server.dataDir, DATABASE_FILE));
    try {
      db.prepare("UPDATE events SET data_json = '{\"edited\":true}' WHERE device_id = ? AND seq = 4").run(deviceId);
    } finally {
      db.close();
    }
    expect((await adminGet(server, chainUrl())).json()).toMatchObject({ count: 6, verified: false, firstBadSeq: 4 });
  });

  it('finds events deleted from the end of the stored chain', async () => {
    await upload(journal(6));
    const db = new Database(path.join(server.dataDir, DATABASE_FILE));
    try {
      db.prepare('DELETE FROM events WHERE device_id = ? AND seq > 4').run(deviceId);
    } finally {
      db.close();
    }
    expect((await adminGet(server, chainUrl())).json()).toMatchObject({ count: 4, verified: false, firstBadSeq: 5 });
  });
});
