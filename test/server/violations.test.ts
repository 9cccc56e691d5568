import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminDeviceDetailSchema, AdminPaths, AdminTerminalsResponseSchema, ApiPaths } from '../../shared/api.js';
import { EMPTY_HEAD, chainEntry, type JournalEntry } from '../../shared/journal.js';
import { sha256Hex } from '../../server/crypto.js';
import { MIGRATIONS, migrate } from '../../server/migrations.js';
import { ViolationAckResponseSchema, ViolationAcksResponseSchema } from '../../server/routes/admin-violations.js';
import { terminalListSql } from '../../server/sqlite-admin.js';
import { DATABASE_FILE, SqliteStore } from '../../server/sqlite-store.js';
import { asSession, readySession, steppingClock, type Session } from './admin-helpers.js';
import { adminGet, bootServer, enrolDevice, makeTempDir, postJson, type TestServer } from './helpers.js';

/**
 * Acknowledging a terminal's violations (違反の確認): an admin acknowledges, with a comment, the
 * violations received up to a seq; the terminal list and detail count only the others as open;
 * each acknowledgement is listed on the terminal and recorded in the admin trail.
 */

let server: TestServer | undefined;
afterEach(async () => {
  await server?.cleanup();
  server = undefined;
});

/** Entries of the given types continuing `from`, as an agent writes them. */
function entries(types: readonly string[], from: { seq: number; hash: string } = EMPTY_HEAD): JournalEntry[] {
  const out: JournalEntry[] = [];
  let head = from;
  for (const type of types) {
    const { entry } = chainEntry(head, { time: new Date(Date.UTC(2026, 10, 25, 0, 0, head.seq + 1)).toISOString(), tz: '+09:00', type, data: {} }, sha256Hex);
    out.push(entry);
    head = entry;
  }
  return out;
}

interface Rig {
  readonly s: TestServer;
  readonly admin: Session;
  readonly auditor: Session;
  readonly deviceId: string;
  readonly credential: string;
  readonly clock: ReturnType<typeof steppingClock>;
}

async function rig(): Promise<Rig> {
  const clock = steppingClock();
  const s = await bootServer({ clock });
  server = s;
  const { deviceId, credential } = await enrolDevice(s, { hostname: 'soumu-pc-001' });
  const admin = await readySession(s, 'tanaka', 'admin', clock, clock.advance);
  const auditor = await readySession(s, 'kansa', 'auditor', clock, clock.advance);
  return { s, admin, auditor, deviceId, credential, clock };
}

async function listed(r: Rig): Promise<number> {
  const page = AdminTerminalsResponseSchema.parse((await asSession(r.s, r.admin, 'GET', AdminPaths.terminals)).json());
  return page.terminals.find((terminal) => terminal.deviceId === r.deviceId)!.violations;
}

async function detail(r: Rig): Promise<{ violations: number; violationsTotal: number; violationsAckedSeq: number; ackSeq: number }> {
  return AdminDeviceDetailSchema.parse((await asSession(r.s, r.admin, 'GET', `${ApiPaths.adminDevices}/${r.deviceId}`)).json());
}

const ackUrl = (deviceId: string): string => `${ApiPaths.adminDevices}/${deviceId}/violations/acknowledge`;
const acksUrl = (deviceId: string): string => `${ApiPaths.adminDevices}/${deviceId}/violations/acknowledgements`;

describe('acknowledging violations', () => {
  it('counts only unacknowledged violations as open, in the list and the detail, acknowledging up to the seq the admin saw', async () => {
    const r = await rig();
    // seq 2 blocked, 3 network violation, 5 export blocked: 3 violations.
    const first = entries(['agent.started', 'device.blocked', 'network.violation', 'device.allowed', 'export.blocked']);
    expect((await postJson(r.s.app, ApiPaths.events, { entries: first }, r.credential)).statusCode).toBe(200);
    expect(await listed(r)).toBe(3);
    expect(await detail(r)).toMatchObject({ violations: 3, violationsTotal: 3, violationsAckedSeq: 0, ackSeq: 5 });

    // The admin saw the page up to seq 3: two violations acknowledged, the one at seq 5 stays open.
    const firstAt = r.clock().toISOString();
    const up3 = await asSession(r.s, r.admin, 'POST', ackUrl(r.deviceId), { comment: '  利用者に注意済み  ', upToSeq: 3 });
    expect(up3.statusCode, up3.body).toBe(200);
    const answer = ViolationAckResponseSchema.parse(up3.json());
    expect(answer).toMatchObject({ deviceId: r.deviceId, openViolations: 1, acknowledgement: { actor: 'tanaka', comment: '利用者に注意済み', fromSeq: 0, upToSeq: 3, violations: 2 } });
    expect(await listed(r)).toBe(1);
    expect(await detail(r)).toMatchObject({ violations: 1, violationsTotal: 3, violationsAckedSeq: 3 });

    // More violations arrive: they are open.
    const more = entries(['device.blocked', 'lock.locked', 'device.blocked'], first.at(-1));
    expect((await postJson(r.s.app, ApiPaths.events, { entries: more }, r.credential)).statusCode).toBe(200);
    expect(await listed(r)).toBe(3);

    // Acknowledge everything received (no upToSeq; a seq beyond the head means the head).
    r.clock.advance(60);
    const secondAt = r.clock().toISOString();
    const all = await asSession(r.s, r.admin, 'POST', ackUrl(r.deviceId), { comment: '確認しました', upToSeq: 1000 });
    expect(all.statusCode, all.body).toBe(200);
    expect(ViolationAckResponseSchema.parse(all.json())).toMatchObject({ openViolations: 0, acknowledgement: { fromSeq: 3, upToSeq: 8, violations: 3 } });
    expect(await listed(r)).toBe(0);
    expect(await detail(r)).toMatchObject({ violations: 0, violationsTotal: 5, violationsAckedSeq: 8 });

    // Nothing left: 409, nothing recorded.
    const again = await asSession(r.s, r.admin, 'POST', ackUrl(r.deviceId), { comment: 'もう一度' });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('conflict');

    // Who, when and why, newest first — for an auditor too.
    const history = ViolationAcksResponseSchema.parse((await asSession(r.s, r.auditor, 'GET', acksUrl(r.deviceId))).json());
    expect(history.acknowledgements.map(({ actor, comment, fromSeq, upToSeq, violations, at }) => ({ actor, comment, fromSeq, upToSeq, violations, at }))).toEqual([
      { actor: 'tanaka', comment: '確認しました', fromSeq: 3, upToSeq: 8, violations: 3, at: secondAt },
      { actor: 'tanaka', comment: '利用者に注意済み', fromSeq: 0, upToSeq: 3, violations: 2, at: firstAt },
    ]);

    // The admin trail has both, with the acting account and the comment.
    const trail = (await adminGet(r.s, `${ApiPaths.adminActions}?limit=50`)).json().actions as { actor: string; action: string; deviceId: string; detail: unknown }[];
    expect(trail.filter((action) => action.action === 'violations.acknowledged')).toEqual([
      expect.objectContaining({ actor: 'tanaka', deviceId: r.deviceId, detail: { comment: '確認しました', fromSeq: 3, upToSeq: 8, violations: 3 } }),
      expect.objectContaining({ actor: 'tanaka', deviceId: r.deviceId, detail: { comment: '利用者に注意済み', fromSeq: 0, upToSeq: 3, violations: 2 } }),
    ]);
  });

  it('refuses an auditor (403), a session without its CSRF token (403), a missing or bad comment (400) and an unknown terminal (404), changing nothing', async () => {
    const r = await rig();
    expect((await postJson(r.s.app, ApiPaths.events, { entries: entries(['device.blocked', 'device.blocked']) }, r.credential)).statusCode).toBe(200);
    const auditor = await asSession(r.s, r.auditor, 'POST', ackUrl(r.deviceId), { comment: '監査担当が確認' });
    expect(auditor.statusCode).toBe(403);
    expect(auditor.json().error.message).toMatch(/auditor/);
    expect((await asSession(r.s, r.admin, 'POST', ackUrl(r.deviceId), { comment: '確認' }, { csrf: null })).statusCode).toBe(403);
    for (const body of [{}, { comment: '' }, { comment: '   ' }, { comment: 'x'.repeat(501) }, { comment: '改行\nあり' }, { comment: '確認', extra: 1 }, { comment: '確認', upToSeq: 0 }, { comment: '確認', upToSeq: 1.5 }]) {
      const response = await asSession(r.s, r.admin, 'POST', ackUrl(r.deviceId), body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().error.code).toBe('bad-request');
    }
    const unknown = `dev_${'0'.repeat(32)}`;
    expect((await asSession(r.s, r.admin, 'POST', ackUrl(unknown), { comment: '確認' })).statusCode).toBe(404);
    expect((await asSession(r.s, r.admin, 'GET', acksUrl(unknown))).statusCode).toBe(404);
    expect(await listed(r)).toBe(2);
    expect(ViolationAcksResponseSchema.parse((await asSession(r.s, r.admin, 'GET', acksUrl(r.deviceId))).json()).acknowledgements).toEqual([]);
    expect((await adminGet(r.s, `${ApiPaths.adminActions}?limit=50`)).json().actions.filter((action: { action: string }) => action.action === 'violations.acknowledged')).toEqual([]);
  });

  it('answers 409 when the acknowledged range holds no violation (nothing received, or only other events)', async () => {
    const r = await rig();
    expect((await asSession(r.s, r.admin, 'POST', ackUrl(r.deviceId), { comment: '確認' })).statusCode).toBe(409);
    expect((await postJson(r.s.app, ApiPaths.events, { entries: entries(['agent.started', 'device.blocked']) }, r.credential)).statusCode).toBe(200);
    expect((await asSession(r.s, r.admin, 'POST', ackUrl(r.deviceId), { comment: '確認', upToSeq: 1 })).statusCode).toBe(409);
    expect(await detail(r)).toMatchObject({ violations: 1, violationsAckedSeq: 0 });
  });
});

describe('the open-violation count and the terminal list query', () => {
  it('is read from the devices row: the list query reads no events', () => {
    for (const query of [
      { sort: 'hostname', descending: false, onlineSince: '', limit: 50 },
      { sort: 'lastSeen', descending: true, tier: 'lgwan', online: true, onlineSince: '', text: 'pc', after: { key: 'a', id: 'b' }, limit: 50 },
    ] as const) {
      const { sql } = terminalListSql(query);
      expect(sql).not.toMatch(/\bevents\b/);
      expect(sql).toMatch(/violations_acked_count/);
    }
  });

  it('is migration 8: a database at version 7 keeps its violation counts, all open', async () => {
    expect(MIGRATIONS[7]).toMatchObject({ version: 8 });
    expect(MIGRATIONS[7]!.sql).toMatch(/CREATE TABLE violation_acks/);
    const dir = await makeTempDir();
    const db = new Database(path.join(dir, DATABASE_FILE));
    migrate(db, MIGRATIONS.slice(0, 7));
    db.prepare(
      `INSERT INTO devices (id, hostname, os, arch, hardware_id, agent_version, credential_hash, enrolled_at, ack_seq, ack_hash, violation_count)
       VALUES ('dev_${'a'.repeat(32)}', 'pc', 'linux', 'x64', 'hw', '0.1.0', '${'0'.repeat(64)}', '2026-01-01T00:00:00.000Z', 9, '${'0'.repeat(64)}', 4)`,
    ).run();
    db.close();
    const store = SqliteStore.open(dir, { create: false });
    try {
      expect(await store.terminal(`dev_${'a'.repeat(32)}`)).toMatchObject({ violations: 4, violationsTotal: 4, violationsAckedSeq: 0 });
    } finally {
      await store.close();
    }
  });
});
