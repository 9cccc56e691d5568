import type Database from 'better-sqlite3';
import { VIOLATION_EVENT_TYPES, type NewViolationAck, type StoredViolationAck, type ViolationAckOutcome } from './store.js';

/**
 * The SQLite side of acknowledged violations (migration 8). Synchronous; `SqliteStore` wraps each
 * call behind the asynchronous `Store` interface.
 *
 * Open violations are a difference of two columns of `devices`: `violation_count` (every violation
 * received, kept by `appendEvents` in the batch's transaction since migration 5) minus
 * `violations_acked_count` (those acknowledged). Ingest writes nothing more than before, and the
 * terminal list reads the open count from the row it already reads — no event is counted per row.
 * An acknowledgement moves `violations_acked_seq` and `violations_acked_count` together and adds a
 * `violation_acks` row, in one transaction.
 */

interface DeviceAckRow {
  ack_seq: number;
  violation_count: number;
  violations_acked_count: number;
  violations_acked_seq: number;
}

interface AckRow {
  id: number;
  device_id: string;
  at: string;
  actor: string;
  comment: string;
  from_seq: number;
  up_to_seq: number;
  violations: number;
}

const ACK_COLUMNS = 'id, device_id, at, actor, comment, from_seq, up_to_seq, violations';

export class SqliteViolationTables {
  private readonly statements;

  constructor(private readonly db: Database.Database) {
    this.statements = {
      device: db.prepare<[string], DeviceAckRow>('SELECT ack_seq, violation_count, violations_acked_count, violations_acked_seq FROM devices WHERE id = ?'),
      // One range of the events' primary key (device, seq): only used when the administrator
      // acknowledges up to a seq below the head (violations arrived after the page was loaded).
      countInRange: db.prepare<{ deviceId: string; fromSeq: number; upToSeq: number; types: string }, { n: number }>(
        `SELECT COUNT(*) AS n FROM events
         WHERE device_id = @deviceId AND seq > @fromSeq AND seq <= @upToSeq AND type IN (SELECT value FROM json_each(@types))`,
      ),
      setAcked: db.prepare<{ deviceId: string; seq: number; count: number }>(
        'UPDATE devices SET violations_acked_seq = @seq, violations_acked_count = @count WHERE id = @deviceId',
      ),
      insert: db.prepare<Omit<AckRow, 'id'>, AckRow>(
        `INSERT INTO violation_acks (device_id, at, actor, comment, from_seq, up_to_seq, violations)
         VALUES (@device_id, @at, @actor, @comment, @from_seq, @up_to_seq, @violations) RETURNING ${ACK_COLUMNS}`,
      ),
      list: db.prepare<[string, number], AckRow>(`SELECT ${ACK_COLUMNS} FROM violation_acks WHERE device_id = ? ORDER BY id DESC LIMIT ?`),
    };
  }

  acknowledge(request: NewViolationAck): ViolationAckOutcome | null {
    return this.db
      .transaction((): ViolationAckOutcome | null => {
        const device = this.statements.device.get(request.deviceId);
        if (!device) return null;
        const open = Math.max(0, device.violation_count - device.violations_acked_count);
        const fromSeq = device.violations_acked_seq;
        const upToSeq = request.upToSeq === null ? device.ack_seq : Math.min(request.upToSeq, device.ack_seq);
        if (upToSeq <= fromSeq) return { status: 'nothing', ackedSeq: fromSeq, open };
        const violations =
          upToSeq === device.ack_seq
            ? open
            : (this.statements.countInRange.get({ deviceId: request.deviceId, fromSeq, upToSeq, types: JSON.stringify(VIOLATION_EVENT_TYPES) })?.n ?? 0);
        if (violations === 0) return { status: 'nothing', ackedSeq: fromSeq, open };
        const acked = Math.min(device.violation_count, device.violations_acked_count + violations);
        this.statements.setAcked.run({ deviceId: request.deviceId, seq: upToSeq, count: acked });
        const row = this.statements.insert.get({
          device_id: request.deviceId,
          at: request.at,
          actor: request.actor,
          comment: request.comment,
          from_seq: fromSeq,
          up_to_seq: upToSeq,
          violations,
        });
        if (!row) throw new Error('violation_acks insert returned no row');
        return { status: 'acknowledged', ack: toAck(row), open: device.violation_count - acked };
      })
      .immediate();
  }

  list(deviceId: string, limit: number): StoredViolationAck[] | null {
    if (!this.statements.device.get(deviceId)) return null;
    return this.statements.list.all(deviceId, limit).map(toAck);
  }
}

function toAck(row: AckRow): StoredViolationAck {
  return {
    id: row.id,
    deviceId: row.device_id,
    at: row.at,
    actor: row.actor,
    comment: row.comment,
    fromSeq: row.from_seq,
    upToSeq: row.up_to_seq,
    violations: row.violations,
  };
}
