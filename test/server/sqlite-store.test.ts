import fs from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GENESIS_HASH } from '../../shared/journal.js';
import { DATABASE_FILE, SqliteStore } from '../../server/sqlite-store.js';
import { MAX_TAMPER_RECORDS_PER_DEVICE } from '../../server/store.js';
import { journal, makeTempDir } from './helpers.js';

describe('SqliteStore', () => {
  let dir: string;
  let store: SqliteStore;
  const deviceId = `dev_${'b'.repeat(32)}`;
  const now = '2026-11-25T00:00:00.000Z';

  beforeEach(async () => {
    dir = await makeTempDir();
    store = SqliteStore.open(dir, { create: true });
    await store.addEnrollmentToken({ tokenHash: 'h'.repeat(64), createdAt: now, expiresAt: '2026-12-01T00:00:00.000Z' });
    const enrolled = await store.enrollDevice('h'.repeat(64), {
      id: deviceId,
      hostname: 'pc',
      os: 'linux',
      arch: 'x64',
      hardwareId: 'hw',
      agentVersion: '0.1.0',
      credentialHash: 'c'.repeat(64),
      enrolledAt: now,
    });
    expect(enrolled).toBe(true);
  });
  afterEach(async () => {
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('stops recording tamper for a device once it holds the maximum, but still refuses the batch', async () => {
    const db = new Database(path.join(dir, DATABASE_FILE));
    try {
      const insert = db.prepare("INSERT INTO tamper_events (device_id, kind, seq, detail_json, detected_at) VALUES (?, 'gap', ?, '{}', ?)");
      db.transaction(() => {
        for (let seq = 1; seq <= MAX_TAMPER_RECORDS_PER_DEVICE; seq += 1) insert.run(deviceId, 1000 + seq, now);
      })();
    } finally {
      db.close();
    }
    const outcome = await store.appendEvents(deviceId, journal(1, { seq: 50, hash: GENESIS_HASH }), now);
    expect(outcome).toMatchObject({ status: 'rejected', rejection: { kind: 'gap', seq: 51 } });
    expect(await store.tamperRecords(deviceId)).toHaveLength(MAX_TAMPER_RECORDS_PER_DEVICE);
  });

  it('answers unknown-device for a batch from a device it does not hold', async () => {
    expect(await store.appendEvents(`dev_${'9'.repeat(32)}`, journal(1), now)).toEqual({ status: 'unknown-device' });
  });

  it('does not spend a token twice even when asked for two devices', async () => {
    const again = await store.enrollDevice('h'.repeat(64), {
      id: `dev_${'d'.repeat(32)}`,
      hostname: 'pc2',
      os: 'linux',
      arch: 'x64',
      hardwareId: 'hw',
      agentVersion: '0.1.0',
      credentialHash: 'c'.repeat(64),
      enrolledAt: now,
    });
    expect(again).toBe(false);
    expect(await store.listDevices()).toHaveLength(1);
  });

  it('refuses to be used after close', async () => {
    await store.close();
    await expect(store.countEvents(deviceId)).rejects.toThrow(/after close/);
  });
});
