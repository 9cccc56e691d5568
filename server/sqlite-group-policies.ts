import type Database from 'better-sqlite3';
import { TierSchema, type Tier } from '../shared/policy.js';
import {
  DEFAULT_DEVICE_TIER,
  MAX_TAMPER_RECORDS_PER_DEVICE,
  type DevicePolicyContext,
  type GroupPolicyDeletion,
  type GroupPolicyHead,
  type GroupPolicyHistoryEntry,
  type StoredGroupPolicy,
} from './store.js';

/**
 * The SQLite side of policies per group of terminals, of the version each device was given, and of
 * the tier an administrator assigns (migration 10). Synchronous; `SqliteStore` wraps each call
 * behind the asynchronous `Store` interface.
 *
 * - `group_policies` holds every version of a (tier, department) document and, with a NULL
 *   payload, each deletion. Its versions come from the tier's sequence, shared with `policies`: an
 *   insert happens only above every version of the tier in BOTH tables (and `policies`' insert
 *   checks this table too), so (tier, version) names exactly one document.
 * - `devices.policy_basis` / `policy_version`: the etag of the document last composed for the
 *   device and the version it was delivered with (see server/requests.ts).
 * - `devices.tier_mismatch`: the tier the agent reports that differs from the stored one, once
 *   recorded as a `tier-mismatch` tamper record (so each change is recorded once).
 */

interface GroupRow {
  tier: string;
  department: string;
  version: number;
  key_id: string | null;
  created_at: string;
  created_by: string;
  payload: string | null;
  signature: string | null;
}

interface ContextRow {
  tier: string;
  department: string | null;
  policy_rev: number;
  policy_rev_at: string | null;
  tier_mismatch: string | null;
}

const HEAD_COLUMNS = 'tier, department, version, key_id, created_at, created_by';

export class SqliteGroupPolicyTables {
  private readonly statements;

  constructor(private readonly db: Database.Database) {
    this.statements = {
      lastVersion: db.prepare<{ tier: string }, { v: number | null }>(
        `SELECT max(coalesce((SELECT max(version) FROM policies WHERE tier = @tier), 0),
                    coalesce((SELECT max(version) FROM group_policies WHERE tier = @tier), 0)) AS v`,
      ),
      insert: db.prepare<{ tier: string; department: string; version: number; payload: string | null; signature: string | null; keyId: string | null; createdAt: string; createdBy: string }>(
        `INSERT INTO group_policies (tier, department, version, payload, signature, key_id, created_at, created_by)
         SELECT @tier, @department, @version, @payload, @signature, @keyId, @createdAt, @createdBy
         WHERE NOT EXISTS (SELECT 1 FROM group_policies WHERE tier = @tier AND version >= @version)
           AND NOT EXISTS (SELECT 1 FROM policies WHERE tier = @tier AND version >= @version)`,
      ),
      newest: db.prepare<[string, string], GroupRow>(
        `SELECT ${HEAD_COLUMNS}, payload, signature FROM group_policies WHERE tier = ? AND department = ? ORDER BY version DESC LIMIT 1`,
      ),
      newestHead: db.prepare<[string, string], GroupRow>(
        `SELECT ${HEAD_COLUMNS}, NULL AS payload, CASE WHEN payload IS NULL THEN NULL ELSE '' END AS signature
         FROM group_policies WHERE tier = ? AND department = ? ORDER BY version DESC LIMIT 1`,
      ),
      list: db.prepare<[string], GroupRow>(
        `SELECT ${HEAD_COLUMNS}, NULL AS payload, NULL AS signature FROM group_policies g
         WHERE g.tier = ? AND g.payload IS NOT NULL
           AND g.version = (SELECT max(version) FROM group_policies h WHERE h.tier = g.tier AND h.department = g.department)
         ORDER BY g.department`,
      ),
      history: db.prepare<[string, string], GroupRow>(
        `SELECT ${HEAD_COLUMNS}, NULL AS payload, CASE WHEN payload IS NULL THEN NULL ELSE '' END AS signature
         FROM group_policies WHERE tier = ? AND department = ? ORDER BY version DESC`,
      ),
      context: db.prepare<[string], ContextRow>(
        `SELECT coalesce(tier, '${DEFAULT_DEVICE_TIER}') AS tier, department, policy_rev, policy_rev_at, tier_mismatch FROM devices WHERE id = ?`,
      ),
      delivered: db.prepare<[string], { policy_basis: string | null; policy_version: number | null }>('SELECT policy_basis, policy_version FROM devices WHERE id = ?'),
      setDelivered: db.prepare<[string, number, string]>('UPDATE devices SET policy_basis = ?, policy_version = ? WHERE id = ?'),
      tierOf: db.prepare<[string], { tier: string; reported: string | null }>(
        `SELECT coalesce(tier, '${DEFAULT_DEVICE_TIER}') AS tier, json_extract(status_json, '$.tier') AS reported FROM devices WHERE id = ?`,
      ),
      setTier: db.prepare<[string, string | null, string]>('UPDATE devices SET tier = ?, tier_mismatch = ? WHERE id = ?'),
      setMismatch: db.prepare<[string, string, string]>('UPDATE devices SET tier_mismatch = ? WHERE id = ? AND tier_mismatch IS NOT ?'),
      clearMismatch: db.prepare<[string]>('UPDATE devices SET tier_mismatch = NULL WHERE id = ? AND tier_mismatch IS NOT NULL'),
      countTamper: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM tamper_events WHERE device_id = ?'),
      insertTamper: db.prepare<[string, number, string, string]>(
        `INSERT INTO tamper_events (device_id, kind, seq, detail_json, detected_at) VALUES (?, 'tier-mismatch', ?, ?, ?)
         ON CONFLICT (device_id, kind, seq) DO NOTHING`,
      ),
      countFlag: db.prepare<[string]>('UPDATE devices SET tamper_flag_count = tamper_flag_count + 1 WHERE id = ?'),
    };
  }

  lastVersion(tier: Tier): number {
    return this.statements.lastVersion.get({ tier })?.v ?? 0;
  }

  /** Inside an IMMEDIATE transaction, so the check of both tables and the insert are one step. */
  add(policy: StoredGroupPolicy | GroupPolicyDeletion): boolean {
    const row =
      policy.payload === null
        ? { tier: policy.tier, department: policy.department, version: policy.version, payload: null, signature: null, keyId: null, createdAt: policy.createdAt, createdBy: policy.createdBy }
        : { tier: policy.tier, department: policy.department, version: policy.version, payload: policy.payload, signature: policy.signature, keyId: policy.keyId, createdAt: policy.createdAt, createdBy: policy.createdBy };
    return this.db.transaction(() => this.statements.insert.run(row).changes === 1).immediate();
  }

  current(tier: Tier, department: string): StoredGroupPolicy | null {
    const row = this.statements.newest.get(tier, department);
    if (!row || row.payload === null || row.signature === null) return null;
    return { ...toHead(row), payload: row.payload, signature: row.signature };
  }

  head(tier: Tier, department: string): GroupPolicyHead | null {
    const row = this.statements.newestHead.get(tier, department);
    return row && row.signature !== null ? toHead(row) : null;
  }

  list(tier: Tier): GroupPolicyHead[] {
    return this.statements.list.all(tier).map(toHead);
  }

  history(tier: Tier, department: string): GroupPolicyHistoryEntry[] {
    return this.statements.history.all(tier, department).map((row) => ({
      version: row.version,
      keyId: row.key_id,
      deleted: row.signature === null,
      createdAt: row.created_at,
      createdBy: row.created_by,
    }));
  }

  context(deviceId: string): DevicePolicyContext | null {
    const row = this.statements.context.get(deviceId);
    if (!row) return null;
    const mismatch = row.tier_mismatch === null ? null : TierSchema.safeParse(row.tier_mismatch);
    return {
      tier: TierSchema.parse(row.tier),
      department: row.department,
      rev: row.policy_rev,
      revAt: row.policy_rev_at,
      tierMismatch: mismatch?.success === true ? mismatch.data : null,
    };
  }

  deliveredVersion(deviceId: string, basis: string, natural: number): number | null {
    return this.db
      .transaction((): number | null => {
        const row = this.statements.delivered.get(deviceId);
        if (!row) return null;
        if (row.policy_basis === basis && row.policy_version !== null) return row.policy_version;
        const version = row.policy_version === null ? natural : Math.max(row.policy_version + 1, natural);
        this.statements.setDelivered.run(basis, version, deviceId);
        return version;
      })
      .immediate();
  }

  setTier(deviceId: string, tier: Tier): { previous: Tier } | null {
    return this.db
      .transaction((): { previous: Tier } | null => {
        const row = this.statements.tierOf.get(deviceId);
        if (!row) return null;
        const reported = row.reported === null ? null : TierSchema.safeParse(row.reported);
        // The agent keeps reporting its installer's tier until that is changed too: known, not recorded again.
        const knownMismatch = reported?.success === true && reported.data !== tier ? reported.data : null;
        this.statements.setTier.run(tier, knownMismatch, deviceId);
        return { previous: TierSchema.parse(row.tier) };
      })
      .immediate();
  }

  recordMismatch(deviceId: string, stored: Tier, reported: Tier, seq: number, at: string): boolean {
    return this.db
      .transaction((): boolean => {
        if (this.statements.setMismatch.run(reported, deviceId, reported).changes !== 1) return false;
        if ((this.statements.countTamper.get(deviceId)?.n ?? 0) >= MAX_TAMPER_RECORDS_PER_DEVICE) return false;
        const inserted = this.statements.insertTamper.run(deviceId, seq, JSON.stringify({ reported, stored }), at);
        if (inserted.changes !== 1) return false;
        this.statements.countFlag.run(deviceId);
        return true;
      })
      .immediate();
  }

  clearMismatch(deviceId: string): void {
    this.statements.clearMismatch.run(deviceId);
  }
}

function toHead(row: GroupRow): GroupPolicyHead {
  return {
    tier: TierSchema.parse(row.tier),
    department: row.department,
    version: row.version,
    keyId: row.key_id ?? '',
    createdAt: row.created_at,
    createdBy: row.created_by,
  };
}
