import path from 'node:path';
import Database from 'better-sqlite3';
import { DATABASE_FILE } from '../sqlite-store.js';

/**
 * The operations features' own read-only view of the SQLite database (`DIR/sekimori.db`): the
 * counts behind `/metrics`, hostnames for SIEM forwarding, and the audit export's event pages.
 * These queries are not part of the `Store` interface (they serve operators, not the API's
 * domain); a PostgreSQL deployment implements `OpsQueries` the same way.
 *
 * It opens its own connection, read-only (`readonly: true`: it cannot write even by mistake).
 * With WAL, its reads never block the server's writer. Every method runs one short statement or
 * one short read transaction: the audit export pages by key instead of holding one cursor open
 * (an open cursor would keep a read transaction, and with it the WAL, alive for the whole export).
 */

/** The counts `/metrics` exposes. */
export interface OpsStats {
  /** Enrolled terminals. */
  readonly terminals: number;
  /** Terminals whose last heartbeat is at or after `onlineSince`. */
  readonly terminalsOnline: number;
  readonly tamperRecords: number;
  readonly terminalsWithTamper: number;
  /** Commands neither acknowledged nor cancelled. */
  readonly commandsPending: number;
}

/** One stored event with its terminal's hostname, as the audit export reads it. */
export interface AuditEventRow {
  readonly deviceId: string;
  /** Null when the device row is gone (events outlive nothing today, but the export must not crash). */
  readonly hostname: string | null;
  readonly seq: number;
  /** Agent's clock, UTC ISO with ms. */
  readonly time: string;
  readonly tz: string;
  readonly type: string;
  /** Canonical JSON of the event's data. */
  readonly dataJson: string;
  readonly prev: string;
  readonly hash: string;
  /** Server's clock at upload, UTC ISO with ms. */
  readonly receivedAt: string;
}

/** Position after the last event read: (device id, seq), exclusive. */
export interface EventCursor {
  readonly deviceId: string;
  readonly seq: number;
}

/** Events whose `time` is in [from, to): UTC ISO strings with ms (they compare as text). */
export interface TimeRange {
  readonly from: string;
  readonly to: string;
}

/** The queries of the operations features (metrics, forwarding, audit export). */
export interface OpsQueries {
  stats(onlineSince: string): OpsStats;
  /** The terminal's hostname as it enrolled, or null for an unknown device. */
  hostnameOf(deviceId: string): string | null;
  /** Ids of the terminals whose hostname starts with `prefix` (case-sensitive), sorted. */
  deviceIdsByHostnamePrefix(prefix: string): string[];
  /** Which of `ids` exist, sorted. */
  existingDeviceIds(ids: readonly string[]): string[];
  /** Ids of the terminals assigned to `department` (exact name), sorted. */
  deviceIdsByDepartment(department: string): string[];
  /**
   * The events in `range` among the next `windowRows` events (in (device, seq) order) after
   * `after`, restricted to one device when `deviceId` is given. The work per call is bounded by
   * `windowRows` whatever the range, so a narrow period over 10M events never blocks the event
   * loop for long. `next` is where to continue, null when nothing is left.
   */
  eventWindow(after: EventCursor, range: TimeRange, windowRows: number, deviceId?: string): { rows: AuditEventRow[]; next: EventCursor | null };
  close(): void;
}

interface EventRowDb {
  device_id: string;
  hostname: string | null;
  seq: number;
  time: string;
  tz: string;
  type: string;
  data_json: string;
  prev: string;
  hash: string;
  received_at: string;
}

const EVENT_COLUMNS = `e.device_id, d.hostname, e.seq, e.time, e.tz, e.type, e.data_json, e.prev, e.hash, e.received_at
  FROM events e LEFT JOIN devices d ON d.id = e.device_id`;

/** Largest seq SQLite can hold: the open upper bound of a device's last window. */
const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** `OpsQueries` on SQLite through better-sqlite3. */
export class SqliteOpsQueries implements OpsQueries {
  private readonly statements;
  private closed = false;

  /** Uses `db` as given (tests and the benchmark pass their own handle); `close` closes it. */
  constructor(private readonly db: Database.Database) {
    this.statements = {
      terminals: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM devices'),
      online: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM devices WHERE last_seen_at >= ?'),
      tamper: db.prepare<[], { n: number; devices: number }>('SELECT COUNT(*) AS n, COUNT(DISTINCT device_id) AS devices FROM tamper_events'),
      pending: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM commands WHERE acked_at IS NULL AND cancelled_at IS NULL'),
      hostname: db.prepare<[string], { hostname: string }>('SELECT hostname FROM devices WHERE id = ?'),
      byPrefix: db.prepare<[string, string], { id: string }>('SELECT id FROM devices WHERE substr(hostname, 1, length(?)) = ? ORDER BY id'),
      existing: db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id'),
      // One range of devices_by_department (department, id), migration 7.
      byDepartment: db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE department = ? ORDER BY id'),
      // The (window)th key after the cursor: the inclusive upper bound of this window.
      boundary: db.prepare<[string, number, number], { device_id: string; seq: number }>(
        'SELECT device_id, seq FROM events WHERE (device_id, seq) > (?, ?) ORDER BY device_id, seq LIMIT 1 OFFSET ?',
      ),
      window: db.prepare<{ fromDevice: string; fromSeq: number; toDevice: string; toSeq: number; from: string; to: string }, EventRowDb>(
        `SELECT ${EVENT_COLUMNS}
         WHERE (e.device_id, e.seq) > (@fromDevice, @fromSeq) AND (e.device_id, e.seq) <= (@toDevice, @toSeq)
           AND e.time >= @from AND e.time < @to
         ORDER BY e.device_id, e.seq`,
      ),
      tail: db.prepare<{ fromDevice: string; fromSeq: number; from: string; to: string }, EventRowDb>(
        `SELECT ${EVENT_COLUMNS}
         WHERE (e.device_id, e.seq) > (@fromDevice, @fromSeq) AND e.time >= @from AND e.time < @to
         ORDER BY e.device_id, e.seq`,
      ),
      deviceBoundary: db.prepare<[string, number, number], { seq: number }>(
        'SELECT seq FROM events WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT 1 OFFSET ?',
      ),
      deviceWindow: db.prepare<{ deviceId: string; fromSeq: number; toSeq: number; from: string; to: string }, EventRowDb>(
        `SELECT ${EVENT_COLUMNS}
         WHERE e.device_id = @deviceId AND e.seq > @fromSeq AND e.seq <= @toSeq AND e.time >= @from AND e.time < @to
         ORDER BY e.seq`,
      ),
    };
  }

  /** Opens `DIR/sekimori.db` read-only (it must exist: the server created and migrated it). */
  static open(dataDir: string): SqliteOpsQueries {
    const db = new Database(path.join(dataDir, DATABASE_FILE), { readonly: true, fileMustExist: true, timeout: 5000 });
    return new SqliteOpsQueries(db);
  }

  stats(onlineSince: string): OpsStats {
    this.assertOpen();
    // One read transaction: the numbers of one scrape describe one moment.
    return this.db.transaction(() => {
      const tamper = this.statements.tamper.get();
      return {
        terminals: this.statements.terminals.get()?.n ?? 0,
        terminalsOnline: this.statements.online.get(onlineSince)?.n ?? 0,
        tamperRecords: tamper?.n ?? 0,
        terminalsWithTamper: tamper?.devices ?? 0,
        commandsPending: this.statements.pending.get()?.n ?? 0,
      };
    })();
  }

  hostnameOf(deviceId: string): string | null {
    this.assertOpen();
    return this.statements.hostname.get(deviceId)?.hostname ?? null;
  }

  deviceIdsByHostnamePrefix(prefix: string): string[] {
    this.assertOpen();
    return this.statements.byPrefix.all(prefix, prefix).map((row) => row.id);
  }

  existingDeviceIds(ids: readonly string[]): string[] {
    this.assertOpen();
    return this.statements.existing.all(JSON.stringify(ids)).map((row) => row.id);
  }

  deviceIdsByDepartment(department: string): string[] {
    this.assertOpen();
    return this.statements.byDepartment.all(department).map((row) => row.id);
  }

  eventWindow(after: EventCursor, range: TimeRange, windowRows: number, deviceId?: string): { rows: AuditEventRow[]; next: EventCursor | null } {
    this.assertOpen();
    if (!(windowRows >= 1)) throw new RangeError('windowRows must be at least 1');
    const { from, to } = range;
    if (deviceId !== undefined) {
      const fromSeq = after.deviceId === deviceId ? after.seq : 0;
      const boundary = this.statements.deviceBoundary.get(deviceId, fromSeq, windowRows - 1)?.seq;
      const rows = this.statements.deviceWindow.all({ deviceId, fromSeq, toSeq: boundary ?? MAX_SEQ, from, to }).map(toAuditRow);
      return { rows, next: boundary === undefined ? null : { deviceId, seq: boundary } };
    }
    const boundary = this.statements.boundary.get(after.deviceId, after.seq, windowRows - 1);
    if (boundary === undefined) {
      return { rows: this.statements.tail.all({ fromDevice: after.deviceId, fromSeq: after.seq, from, to }).map(toAuditRow), next: null };
    }
    const rows = this.statements.window
      .all({ fromDevice: after.deviceId, fromSeq: after.seq, toDevice: boundary.device_id, toSeq: boundary.seq, from, to })
      .map(toAuditRow);
    return { rows, next: { deviceId: boundary.device_id, seq: boundary.seq } };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('SqliteOpsQueries used after close()');
  }
}

/** Before every event: (device id, seq) > ('', 0) holds for every stored event. */
export const START_CURSOR: EventCursor = { deviceId: '', seq: 0 };

function toAuditRow(row: EventRowDb): AuditEventRow {
  return {
    deviceId: row.device_id,
    hostname: row.hostname,
    seq: row.seq,
    time: row.time,
    tz: row.tz,
    type: row.type,
    dataJson: row.data_json,
    prev: row.prev,
    hash: row.hash,
    receivedAt: row.received_at,
  };
}
