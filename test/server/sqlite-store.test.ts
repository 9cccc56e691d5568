import fs from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GENESIS_HASH } from '../../shared/journal.js';
import { DATABASE_FILE, SqliteStore } from '../../server/sqlite-store.js';
import { MAX_TAMPER_RECORDS_PER_DEVICE, type StoredPolicy } from '../../server/store.js';
import { journal, makeTempDir } from './helpers.js';

/** What enrolment adds to a device since recovery keys exist (a sealed placeholder: this store never opens it). */
const recoveryFields = { recoveryTag: '123456', recoveryKey: { epoch: 0, sealedKey: 'sealed', createdAt: '2026-11-25T00:00:00.000Z' } };

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
      ...recoveryFields,
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
      ...recoveryFields,
    });
    expect(again).toBe(false);
    expect(await store.listDevices()).toHaveLength(1);
  });

  it('refuses to be used after close', async () => {
    await store.close();
    await expect(store.countEvents(deviceId)).rejects.toThrow(/after close/);
  });
});

describe('SqliteStore policies', () => {
  let dir: string;
  let store: SqliteStore;
  const policy = (tier: StoredPolicy['tier'], version: number): StoredPolicy => ({
    tier,
    version,
    keyId: '0123456789abcdef',
    createdAt: `2026-11-25T00:00:0${version % 10}.000Z`,
    createdBy: 'admin',
    payload: `{"tier":"${tier}","version":${version}}`,
    signature: 's'.repeat(86) + '==',
  });

  beforeEach(async () => {
    dir = await makeTempDir();
    store = SqliteStore.open(dir, { create: true });
  });
  afterEach(async () => {
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('has nothing before a policy is published', async () => {
    expect(await store.policyHead('mynumber')).toBeNull();
    expect(await store.currentPolicy('mynumber')).toBeNull();
    expect(await store.policyHistory('mynumber')).toEqual([]);
  });

  it('keeps every version, answers the newest, per tier', async () => {
    expect(await store.addPolicy(policy('mynumber', 2))).toBe(true);
    expect(await store.addPolicy(policy('mynumber', 3))).toBe(true);
    expect(await store.addPolicy(policy('lgwan', 2))).toBe(true);
    expect(await store.currentPolicy('mynumber')).toEqual(policy('mynumber', 3));
    const { payload: _payload, signature: _signature, ...head } = policy('lgwan', 2);
    expect(await store.policyHead('lgwan')).toEqual(head);
    expect((await store.policyHistory('mynumber')).map((p) => p.version)).toEqual([3, 2]);
    expect(await store.policyHistory('internet')).toEqual([]);
  });

  it('refuses a version at or below the newest: versions only increase', async () => {
    expect(await store.addPolicy(policy('mynumber', 5))).toBe(true);
    expect(await store.addPolicy(policy('mynumber', 5))).toBe(false);
    expect(await store.addPolicy(policy('mynumber', 4))).toBe(false);
    expect((await store.policyHistory('mynumber')).map((p) => p.version)).toEqual([5]);
  });

  it('refuses version 1 (the built-in profile) and an unknown tier at the schema level', async () => {
    await expect(store.addPolicy(policy('mynumber', 1))).rejects.toThrow(/CHECK constraint/);
    await expect(store.addPolicy(policy('secret' as StoredPolicy['tier'], 2))).rejects.toThrow(/CHECK constraint/);
  });

  it('takes the tier of the first heartbeat, then keeps it (only an administrator changes it); mynumber until then; null for an unknown device', async () => {
    const deviceId = `dev_${'c'.repeat(32)}`;
    const now = '2026-11-25T00:00:00.000Z';
    await store.addEnrollmentToken({ tokenHash: 't'.repeat(64), createdAt: now, expiresAt: '2026-12-01T00:00:00.000Z' });
    await store.enrollDevice('t'.repeat(64), {
      id: deviceId,
      hostname: 'pc',
      os: 'linux',
      arch: 'x64',
      hardwareId: 'hw',
      agentVersion: '0.1.0',
      credentialHash: 'c'.repeat(64),
      enrolledAt: now,
      ...recoveryFields,
    });
    expect(await store.deviceTier(deviceId)).toBe('mynumber');
    const status = { agentVersion: '0.1.0', enforcement: { state: 'enforced' as const }, lockState: 'unlocked' as const, policyVersion: null, journal: { length: 0, headHash: GENESIS_HASH } };
    await store.recordHeartbeat(deviceId, { ...status, tier: 'internet' }, now);
    expect(await store.deviceTier(deviceId)).toBe('internet');
    // A later heartbeat cannot change it (no tier reported, or another one).
    await store.recordHeartbeat(deviceId, status, now);
    expect(await store.deviceTier(deviceId)).toBe('internet');
    await store.recordHeartbeat(deviceId, { ...status, tier: 'lgwan' }, now);
    expect(await store.deviceTier(deviceId)).toBe('internet');
    expect(await store.setDeviceTier(deviceId, 'lgwan')).toEqual({ previous: 'internet' });
    expect(await store.deviceTier(deviceId)).toBe('lgwan');
    expect(await store.setDeviceTier(`dev_${'0'.repeat(32)}`, 'lgwan')).toBeNull();
    expect(await store.deviceTier(`dev_${'0'.repeat(32)}`)).toBeNull();
  });
});
