import type Database from 'better-sqlite3';
import { UsbDeviceIdentitySchema } from '../shared/usb-rules/index.js';
import type { RequestAccess } from '../shared/requests.js';
import type { DeviceRequestDecision, DeviceRequestQuery, NewDeviceRequest, StoredDeviceRequest } from './store.js';

/**
 * The SQLite side of device requests (migration 6). Synchronous; `SqliteStore` wraps each call
 * behind the asynchronous `Store` interface. A decision that changes what a terminal may use
 * (approve, revoke) bumps that terminal's `policy_rev` in the same transaction, so its next signed
 * policy carries a higher version.
 */

interface RequestRow {
  id: string;
  device_id: string;
  hostname: string;
  user_name: string;
  device_json: string;
  rule: string;
  purpose: string;
  window_from: string;
  window_until: string;
  access: string;
  state: string;
  submitted_at: string;
  received_at: string;
  decided_at: string | null;
  decided_by: string | null;
  approved_until: string | null;
  approved_access: string | null;
  reason: string | null;
}

const COLUMNS = `r.id, r.device_id, d.hostname, r.user_name, r.device_json, r.rule, r.purpose, r.window_from, r.window_until, r.access, r.state,
  r.submitted_at, r.received_at, r.decided_at, r.decided_by, r.approved_until, r.approved_access, r.reason`;

function toRequest(row: RequestRow): StoredDeviceRequest {
  return {
    id: row.id,
    deviceId: row.device_id,
    hostname: row.hostname,
    user: row.user_name,
    // Validated when it was received; parsed again so a damaged row fails loudly, not silently.
    device: UsbDeviceIdentitySchema.parse(JSON.parse(row.device_json)),
    rule: row.rule,
    purpose: row.purpose,
    from: row.window_from,
    until: row.window_until,
    access: row.access as RequestAccess,
    state: row.state as StoredDeviceRequest['state'],
    submittedAt: row.submitted_at,
    receivedAt: row.received_at,
    decidedAt: row.decided_at,
    decidedBy: row.decided_by,
    approvedUntil: row.approved_until,
    approvedAccess: row.approved_access as RequestAccess | null,
    reason: row.reason,
  };
}

export class SqliteRequestTables {
  private readonly statements;

  constructor(private readonly db: Database.Database) {
    this.statements = {
      insert: db.prepare<NewDeviceRequest & { deviceJson: string }>(
        `INSERT INTO device_requests (id, device_id, user_name, device_json, rule, purpose, window_from, window_until, access, state, submitted_at, received_at)
         VALUES (@id, @deviceId, @user, @deviceJson, @rule, @purpose, @from, @until, @access, 'pending', @submittedAt, @receivedAt)
         ON CONFLICT (id) DO NOTHING`,
      ),
      byId: db.prepare<[string], RequestRow>(`SELECT ${COLUMNS} FROM device_requests r JOIN devices d ON d.id = r.device_id WHERE r.id = ?`),
      list: db.prepare<{ state: string | null; deviceId: string | null; before: string | null; limit: number }, RequestRow>(
        `SELECT ${COLUMNS} FROM device_requests r JOIN devices d ON d.id = r.device_id
         WHERE (@state IS NULL OR r.state = @state) AND (@deviceId IS NULL OR r.device_id = @deviceId)
           AND (@before IS NULL OR r.received_at || '|' || r.id < @before)
         ORDER BY r.received_at DESC, r.id DESC LIMIT @limit`,
      ),
      decide: db.prepare<{ id: string; expect: string; state: string; at: string; by: string; approvedUntil: string | null; approvedAccess: string | null; reason: string | null }>(
        `UPDATE device_requests SET state = @state, decided_at = @at, decided_by = @by,
           approved_until = coalesce(@approvedUntil, approved_until), approved_access = coalesce(@approvedAccess, approved_access), reason = coalesce(@reason, reason)
         WHERE id = @id AND state = @expect`,
      ),
      bumpRev: db.prepare<[string, string]>('UPDATE devices SET policy_rev = policy_rev + 1, policy_rev_at = ? WHERE id = ?'),
      rev: db.prepare<[string], { policy_rev: number; policy_rev_at: string | null }>('SELECT policy_rev, policy_rev_at FROM devices WHERE id = ?'),
      approved: db.prepare<[string, string], RequestRow>(
        `SELECT ${COLUMNS} FROM device_requests r JOIN devices d ON d.id = r.device_id
         WHERE r.device_id = ? AND r.state = 'approved' AND r.approved_until > ? ORDER BY r.decided_at, r.id`,
      ),
    };
  }

  /** Stores a new request; `exists` when that id is already stored for this device (a resend), `conflict` for another device. */
  add(request: NewDeviceRequest): 'added' | 'exists' | 'conflict' {
    const inserted = this.statements.insert.run({ ...request, deviceJson: JSON.stringify(request.device) }).changes === 1;
    if (inserted) return 'added';
    return this.statements.byId.get(request.id)?.device_id === request.deviceId ? 'exists' : 'conflict';
  }

  byId(id: string): StoredDeviceRequest | null {
    const row = this.statements.byId.get(id);
    return row ? toRequest(row) : null;
  }

  list(query: DeviceRequestQuery): StoredDeviceRequest[] {
    return this.statements.list.all({ state: query.state ?? null, deviceId: query.deviceId ?? null, before: query.before ?? null, limit: query.limit }).map(toRequest);
  }

  /** Applies a decision if the request is still in `expect`; approve and revoke bump the device's policy revision. */
  decide(decision: DeviceRequestDecision): StoredDeviceRequest | null {
    return this.db.transaction(() => {
      const changed = this.statements.decide.run({
        id: decision.id,
        expect: decision.expect,
        state: decision.state,
        at: decision.at,
        by: decision.by,
        approvedUntil: decision.approvedUntil ?? null,
        approvedAccess: decision.approvedAccess ?? null,
        reason: decision.reason ?? null,
      }).changes;
      if (changed !== 1) return null;
      const stored = this.byId(decision.id)!;
      if (decision.state === 'approved' || decision.state === 'revoked') this.statements.bumpRev.run(decision.at, stored.deviceId);
      return stored;
    })();
  }

  policyRevision(deviceId: string): { rev: number; at: string | null } | null {
    const row = this.statements.rev.get(deviceId);
    return row ? { rev: row.policy_rev, at: row.policy_rev_at } : null;
  }

  /** Approved, unrevoked requests of a device whose window ends after `after`. */
  approvedAfter(deviceId: string, after: string): StoredDeviceRequest[] {
    return this.statements.approved.all(deviceId, after).map(toRequest);
  }
}
