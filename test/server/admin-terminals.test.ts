import crypto from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AdminPaths, ApiPaths, type AdminTerminal, type AdminTerminalsResponse } from '../../shared/api.js';
import { EMPTY_HEAD, GENESIS_HASH, chainEntry, type JournalEntry } from '../../shared/journal.js';
import { sha256Hex } from '../../server/crypto.js';
import { MIGRATIONS, migrate } from '../../server/migrations.js';
import { terminalListSql } from '../../server/sqlite-admin.js';
import { DATABASE_FILE, SqliteStore } from '../../server/sqlite-store.js';
import type { TerminalQuery } from '../../server/store.js';
import { RecoveryTerminal } from '../helpers/recovery-terminal.js';
import { steppingClock } from './admin-helpers.js';
import { adminGet, agentStatus, bootServer, enrolDevice, makeTempDir, postJson, type TestServer } from './helpers.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.cleanup();
  server = undefined;
});

/** Entries of the given types continuing `from`, as an agent writes them. */
function entries(types: readonly string[], from: { seq: number; hash: string } = EMPTY_HEAD, data: (i: number) => Record<string, unknown> = () => ({})): JournalEntry[] {
  const out: JournalEntry[] = [];
  let head = from;
  types.forEach((type, i) => {
    const { entry } = chainEntry(head, { time: new Date(Date.UTC(2026, 10, 25, 0, 0, head.seq + 1)).toISOString(), tz: '+09:00', type, data: data(i) }, sha256Hex);
    out.push(entry);
    head = entry;
  });
  return out;
}

async function terminals(s: TestServer, query: Record<string, string | number> = {}): Promise<AdminTerminalsResponse> {
  const search = new URLSearchParams(Object.entries(query).map(([key, value]) => [key, String(value)])).toString();
  const response = await adminGet(s, `${AdminPaths.terminals}${search === '' ? '' : `?${search}`}`);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<AdminTerminalsResponse>();
}

describe('the terminal list', () => {
  it('shows online state, tier, lock state, policy version, violations and tamper flags from heartbeats and events', async () => {
    const clock = steppingClock();
    server = await bootServer({ clock });
    const a = await enrolDevice(server, { hostname: 'soumu-pc-001' });
    const b = await enrolDevice(server, { hostname: 'zeimu-pc-002' });
    await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus({ tier: 'lgwan', lockState: 'locked', policyVersion: 3 }) }, a.credential);
    const batch = entries(['agent.started', 'device.blocked', 'device.blocked', 'network.violation', 'tamper.detected', 'device.allowed']);
    expect((await postJson(server.app, ApiPaths.events, { entries: batch }, a.credential)).statusCode).toBe(200);
    // A gap is refused and recorded: one more tamper flag.
    const gap = entries(['agent.started'], { seq: 10, hash: batch.at(-1)!.hash });
    expect((await postJson(server.app, ApiPaths.events, { entries: gap }, a.credential)).statusCode).toBe(409);

    const page = await terminals(server);
    expect(page.counts).toEqual({ total: 2, online: 1 });
    expect(page.onlineWindowSeconds).toBe(300);
    expect(page.terminals.map((t) => t.hostname)).toEqual(['soumu-pc-001', 'zeimu-pc-002']);
    expect(page.terminals[0]).toMatchObject({
      deviceId: a.deviceId,
      tier: 'lgwan',
      online: true,
      lockState: 'locked',
      policyVersion: 3,
      enforcement: 'enforced',
      violations: 3,
      tamperFlags: 2,
    });
    expect(page.terminals[1]).toMatchObject({ deviceId: b.deviceId, tier: 'mynumber', online: false, lastSeenAt: null, lockState: null, violations: 0, tamperFlags: 0 });

    clock.advance(301);
    expect((await terminals(server)).counts).toEqual({ total: 2, online: 0 });
  });

  it('filters by text (part of the host name, any case, or a device id), tier and online state', async () => {
    const clock = steppingClock();
    server = await bootServer({ clock });
    const a = await enrolDevice(server, { hostname: 'Soumu-PC-001' });
    const b = await enrolDevice(server, { hostname: 'zeimu-pc-002' });
    const c = await enrolDevice(server, { hostname: 'soumu-note-003' });
    await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus({ tier: 'internet' }) }, c.credential);
    await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus({ tier: 'mynumber' }) }, a.credential);
    const ids = (page: AdminTerminalsResponse): string[] => page.terminals.map((t) => t.deviceId);
    expect(ids(await terminals(server, { q: 'SOUMU' }))).toEqual([a.deviceId, c.deviceId]);
    expect(ids(await terminals(server, { q: b.deviceId }))).toEqual([b.deviceId]);
    expect(ids(await terminals(server, { tier: 'mynumber' }))).toEqual([a.deviceId, b.deviceId]); // b: no heartbeat yet = mynumber
    expect(ids(await terminals(server, { tier: 'internet' }))).toEqual([c.deviceId]);
    expect(ids(await terminals(server, { status: 'online' }))).toEqual([a.deviceId, c.deviceId]);
    expect(ids(await terminals(server, { status: 'offline' }))).toEqual([b.deviceId]);
    expect(ids(await terminals(server, { status: 'online', tier: 'mynumber', q: 'pc' }))).toEqual([a.deviceId]);
    expect(ids(await terminals(server, { q: 'nothing-like-it' }))).toEqual([]);
  });

  it('refuses a cursor from another sort or direction, and a forged one, with 400', async () => {
    server = await bootServer();
    await enrolDevice(server, { hostname: 'a' });
    await enrolDevice(server, { hostname: 'b' });
    const first = await terminals(server, { limit: 1 });
    expect(first.nextCursor).not.toBeNull();
    expect((await adminGet(server, `${AdminPaths.terminals}?limit=1&sort=lastSeen&after=${first.nextCursor!}`)).statusCode).toBe(400);
    expect((await adminGet(server, `${AdminPaths.terminals}?limit=1&dir=desc&after=${first.nextCursor!}`)).statusCode).toBe(400);
    expect((await adminGet(server, `${AdminPaths.terminals}?after=not-a-cursor`)).statusCode).toBe(400);
    expect((await terminals(server, { limit: 1, after: first.nextCursor! })).terminals.map((t) => t.hostname)).toEqual(['b']);
  });
});

/** Inserts `rows` devices straight into the database (fast seeding; the API reads them like any other). */
function seedDevices(dataDir: string, rows: readonly { id: string; hostname: string; tier: string | null; lastSeenAt: string | null }[]): void {
  const db = new Database(path.join(dataDir, DATABASE_FILE));
  try {
    const insert = db.prepare(
      `INSERT INTO devices (id, hostname, os, arch, hardware_id, agent_version, credential_hash, enrolled_at, last_seen_at, status_json, ack_seq, ack_hash, tier)
       VALUES (?, ?, 'linux', 'x64', 'hw', '0.1.0', ?, '2026-11-01T00:00:00.000Z', ?, ?, 0, ?, ?)`,
    );
    db.transaction(() => {
      for (const row of rows) {
        const status = row.lastSeenAt === null ? null : JSON.stringify(agentStatus({ lockState: 'unlocked', policyVersion: 2 }));
        insert.run(row.id, row.hostname, 'x'.repeat(64), row.lastSeenAt, status, GENESIS_HASH, row.tier);
      }
    })();
  } finally {
    db.close();
  }
}

function fakeDevices(count: number, random: () => number): { id: string; hostname: string; tier: string | null; lastSeenAt: string | null }[] {
  const tiers = [null, 'mynumber', 'lgwan', 'internet'];
  return Array.from({ length: count }, (_unused, i) => ({
    id: `dev_${crypto.createHash('md5').update(String(i)).digest('hex')}`,
    // Duplicate host names and last-seen times: ties are ordered by device id.
    hostname: `pc-${String(Math.floor(random() * (count / 3))).padStart(6, '0')}`,
    tier: tiers[Math.floor(random() * tiers.length)]!,
    lastSeenAt: random() < 0.1 ? null : new Date(Date.UTC(2026, 10, 24, 23, Math.floor(random() * 60))).toISOString(),
  }));
}

/** A small deterministic PRNG (mulberry32). */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('keyset paging', () => {
  const clock = steppingClock(new Date('2026-11-25T00:00:00.000Z'));
  const devices = fakeDevices(900, seeded(7));
  let paged: TestServer;

  beforeAll(async () => {
    paged = await bootServer({ clock });
    seedDevices(paged.dataDir, devices);
  });
  afterAll(async () => {
    await paged.cleanup();
  });

  const cases: { sort: 'hostname' | 'lastSeen'; dir: 'asc' | 'desc'; tier?: string; status?: 'online' | 'offline'; q?: string }[] = [
    { sort: 'hostname', dir: 'asc' },
    { sort: 'hostname', dir: 'desc' },
    { sort: 'lastSeen', dir: 'asc' },
    { sort: 'lastSeen', dir: 'desc' },
    { sort: 'hostname', dir: 'asc', tier: 'mynumber' },
    { sort: 'lastSeen', dir: 'desc', tier: 'lgwan', status: 'online' },
    { sort: 'hostname', dir: 'desc', status: 'offline', q: '00001' },
  ];

  for (const query of cases) {
    it(`pages through every match exactly once in order: ${JSON.stringify(query)}`, async () => {
      const onlineSince = new Date(clock().getTime() - 300_000).toISOString();
      const expected = devices
        .filter((d) => query.tier === undefined || (d.tier ?? 'mynumber') === query.tier)
        .filter((d) => query.status === undefined || (query.status === 'online') === (d.lastSeenAt !== null && d.lastSeenAt >= onlineSince))
        .filter((d) => query.q === undefined || d.hostname.includes(query.q))
        .map((d) => ({ key: query.sort === 'hostname' ? d.hostname : (d.lastSeenAt ?? ''), id: d.id }))
        .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
        .map((d) => d.id);
      if (query.dir === 'desc') expected.reverse();
      expect(expected.length).toBeGreaterThan(3);

      const seen: string[] = [];
      let after: string | null | undefined;
      for (let pages = 0; after !== null && pages < 1000; pages += 1) {
        const page: AdminTerminalsResponse = await terminals(paged, { ...query, limit: 37, ...(after === undefined ? {} : { after }) });
        seen.push(...page.terminals.map((t: AdminTerminal) => t.deviceId));
        after = page.nextCursor;
      }
      expect(seen).toEqual(expected);
    });
  }
});

describe('the list query at 100,000 terminals', () => {
  let dir: string;
  let store: SqliteStore;
  let db: Database.Database;
  const devices = fakeDevices(100_000, seeded(42));

  beforeAll(async () => {
    dir = await makeTempDir();
    store = SqliteStore.open(dir, { create: true });
    seedDevices(dir, devices);
    db = new Database(path.join(dir, DATABASE_FILE), { readonly: true });
  }, 120_000);
  afterAll(async () => {
    db.close();
    await store.close();
  });

  const base: Omit<TerminalQuery, 'sort' | 'descending'> = { onlineSince: '2026-11-24T23:30:00.000Z', limit: 50 };
  const shapes: (Pick<TerminalQuery, 'sort' | 'descending'> & Partial<TerminalQuery>)[] = [];
  for (const sort of ['hostname', 'lastSeen'] as const) {
    for (const descending of [false, true]) {
      for (const tier of [undefined, 'lgwan'] as const) {
        for (const online of [undefined, true, false]) {
          shapes.push({ sort, descending, tier, online });
          shapes.push({ sort, descending, tier, online, text: 'pc-0001', after: { key: sort === 'hostname' ? 'pc-010000' : '2026-11-24T23:30:00.000Z', id: 'dev_8' } });
        }
      }
    }
  }

  it('walks an index in page order for every filter, sort and direction: no full sort, no temporary b-tree', () => {
    for (const shape of shapes) {
      const { sql, params } = terminalListSql({ ...base, ...shape });
      const plan = db.prepare<Record<string, unknown>, { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`).all(params).map((row) => row.detail).join(' | ');
      const index = `devices_list_by_${shape.tier === undefined ? '' : 'tier_'}${shape.sort === 'hostname' ? 'hostname' : 'last_seen'}`;
      expect(plan, JSON.stringify(shape)).toContain(`INDEX ${index}`);
      expect(plan, JSON.stringify(shape)).not.toMatch(/TEMP B-TREE/);
    }
  });

  it('answers the first page and a page deep in the list with the right rows', async () => {
    const first = await store.listTerminals({ ...base, sort: 'hostname', descending: false });
    const sorted = [...devices].sort((x, y) => (x.hostname < y.hostname ? -1 : x.hostname > y.hostname ? 1 : x.id < y.id ? -1 : 1));
    expect(first.rows.map((row) => row.id)).toEqual(sorted.slice(0, 50).map((d) => d.id));
    const middle = sorted[70_000]!;
    const deep = await store.listTerminals({ ...base, sort: 'hostname', descending: false, after: { key: middle.hostname, id: middle.id } });
    expect(deep.rows.map((row) => row.id)).toEqual(sorted.slice(70_001, 70_051).map((d) => d.id));
    expect(deep.more).toBe(true);
    expect(await store.terminalCounts(base.onlineSince)).toEqual({ total: 100_000, online: devices.filter((d) => d.lastSeenAt !== null && d.lastSeenAt >= base.onlineSince).length });
  });
});

describe('migration 5 counts the violations and tamper flags a database already holds', () => {
  it('backfills the counters from events and tamper records', async () => {
    const dir = await makeTempDir();
    const file = path.join(dir, DATABASE_FILE);
    const db = new Database(file);
    migrate(db, MIGRATIONS.slice(0, 4));
    db.prepare(
      `INSERT INTO devices (id, hostname, os, arch, hardware_id, agent_version, credential_hash, enrolled_at, ack_seq, ack_hash)
       VALUES ('dev_00000000000000000000000000000001', 'old-pc', 'linux', 'x64', 'hw', '0.1.0', 'h', '2026-01-01T00:00:00.000Z', 4, 'x')`,
    ).run();
    const insert = db.prepare(
      `INSERT INTO events (device_id, seq, time, tz, type, data_json, prev, hash, received_at) VALUES ('dev_00000000000000000000000000000001', ?, 't', '+09:00', ?, '{}', 'p', 'h', 't')`,
    );
    ['device.blocked', 'export.blocked', 'tamper.detected', 'device.allowed'].forEach((type, i) => insert.run(i + 1, type));
    db.prepare(
      "INSERT INTO tamper_events (device_id, kind, seq, detail_json, detected_at) VALUES ('dev_00000000000000000000000000000001', 'gap', 9, '{}', 't')",
    ).run();
    migrate(db);
    expect(db.prepare('SELECT violation_count, tamper_flag_count FROM devices').get()).toEqual({ violation_count: 2, tamper_flag_count: 2 });
    db.close();
  });
});

describe('a terminal’s detail', () => {
  it('gives its status, its events newest first page by page, and the USB devices it reported with their last decision', async () => {
    server = await bootServer();
    const a = await enrolDevice(server, { hostname: 'soumu-pc-001' });
    await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus({ tier: 'lgwan', lockState: 'second-factor', policyVersion: 4 }) }, a.credential);
    const stick = { id: '0930:6545', serial: 'A1B2C3', name: '<img src=x onerror=alert(1)>', manufacturer: '"><script>alert(1)</script>' };
    const batch = entries(['device.attached', 'device.blocked', 'device.allowed', 'device.blocked', 'device.readonly'], EMPTY_HEAD, (i) =>
      i === 4
        ? { key: '1-3', device: { id: '0781:5581', serial: 'S2', name: 'SanDisk', manufacturer: 'SanDisk' }, decision: 'read-only', rule: { line: 2 } }
        : { key: '1-2', device: stick, decision: i === 2 ? 'allow' : 'block', rule: { line: i } },
    );
    await postJson(server.app, ApiPaths.events, { entries: batch }, a.credential);

    const detail = await adminGet(server, `${ApiPaths.adminDevices}/${a.deviceId}`);
    expect(detail.json()).toMatchObject({ deviceId: a.deviceId, hostname: 'soumu-pc-001', tier: 'lgwan', lockState: 'second-factor', policyVersion: 4, arch: 'x64', ackSeq: 5, status: { tier: 'lgwan' }, violations: 2 });

    const usb = (await adminGet(server, `${ApiPaths.adminDevices}/${a.deviceId}/usb-devices`)).json<{ devices: unknown[] }>();
    expect(usb.devices).toEqual([
      { usbId: '0781:5581', serial: 'S2', name: 'SanDisk', manufacturer: 'SanDisk', lastDecision: 'device.readonly', rule: { line: 2 }, lastSeq: 5, lastTime: batch[4]!.time, decisions: 1 },
      { usbId: '0930:6545', serial: 'A1B2C3', name: stick.name, manufacturer: stick.manufacturer, lastDecision: 'device.blocked', rule: { line: 3 }, lastSeq: 4, lastTime: batch[3]!.time, decisions: 3 },
    ]);

    const newest = (await adminGet(server, `${ApiPaths.adminDevices}/${a.deviceId}/events?before=${Number.MAX_SAFE_INTEGER}&limit=2`)).json<{ events: JournalEntry[] }>();
    expect(newest.events.map((e) => e.seq)).toEqual([5, 4]);
    const older = (await adminGet(server, `${ApiPaths.adminDevices}/${a.deviceId}/events?before=4&limit=10`)).json<{ events: JournalEntry[] }>();
    expect(older.events.map((e) => e.seq)).toEqual([3, 2, 1]);
    expect((await adminGet(server, `${ApiPaths.adminDevices}/${a.deviceId}/events?before=4&after=1`)).statusCode).toBe(400);
    expect((await adminGet(server, `${ApiPaths.adminDevices}/dev_${'0'.repeat(32)}`)).statusCode).toBe(404);
    expect((await adminGet(server, `${ApiPaths.adminDevices}/dev_${'0'.repeat(32)}/usb-devices`)).statusCode).toBe(404);
  });
});

describe('recovery, decoded before it is answered', () => {
  it('decodes a challenge and lists the matching terminals with no response and no trail row', async () => {
    server = await bootServer();
    const enrolled = await enrolDevice(server, { hostname: 'soumu-pc-001' });
    const terminal = new RecoveryTerminal(enrolled.deviceId, enrolled.recoveryKey, enrolled.recoveryKeyEpoch);
    const challenge = terminal.challenge('tanaka', Date.now());
    const decoded = await server.app.inject({
      method: 'POST',
      url: AdminPaths.recoveryDecode,
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ challenge }),
    });
    expect(decoded.statusCode, decoded.body).toBe(200);
    expect(decoded.json()).toMatchObject({ decoded: { action: 'unlock' }, matches: [{ deviceId: enrolled.deviceId, hostname: 'soumu-pc-001' }], response: null });
    expect((await adminGet(server, ApiPaths.adminActions)).json()).toEqual({ actions: [] });
    const typo = await server.app.inject({
      method: 'POST',
      url: AdminPaths.recoveryDecode,
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ challenge: challenge.replace(/^(\d{5}-\d{5}-)(\d)/, (_m, head: string, digit: string) => `${head}${(Number(digit) + 1) % 10}`) }),
    });
    expect(typo.statusCode).toBe(400);
    expect(typo.json()).toMatchObject({ error: { groups: [3] } });
  });
});
