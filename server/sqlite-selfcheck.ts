import type Database from 'better-sqlite3';
import { canonicalJson } from '../shared/canonical-json.js';
import type { JournalEntry } from '../shared/journal.js';
import { TierSchema } from '../shared/policy.js';
import { SelfcheckResultSchema, SelfcheckRunSchema } from '../shared/selfcheck.js';
import { SELFCHECK_EVENT_TYPE, compactForReport, normalisedInstant, selfcheckRunOf } from './selfcheck-runs.js';
import { DEFAULT_DEVICE_TIER, type SelfcheckIngest, type SelfcheckReportQuery, type SelfcheckReportSource, type StoredSelfcheckRun } from './store.js';

/**
 * The SQLite side of self-inspection runs and terminals' departments (migration 7). Synchronous;
 * `SqliteStore` wraps each call behind the asynchronous `Store` interface, and calls `ingest`
 * inside `appendEvents`' transaction, so a run is stored exactly when its event is.
 */

interface RunRow {
  device_id: string;
  seq: number;
  run_id: string;
  trigger: string;
  command_id: string | null;
  finished_at: string;
  overall: string;
  data_json: string;
  received_at: string;
}

interface DeviceRow {
  id: string;
  hostname: string;
  department: string | null;
  tier: string;
}

const RUN_COLUMNS = 'device_id, seq, run_id, trigger, command_id, finished_at, overall, data_json, received_at';

export class SqliteSelfcheckTables {
  private readonly statements;

  constructor(private readonly db: Database.Database) {
    this.statements = {
      insert: db.prepare<{ deviceId: string; seq: number; runId: string; trigger: string; commandId: string | null; finishedAt: string; overall: string; dataJson: string; receivedAt: string }>(
        `INSERT INTO selfcheck_runs (device_id, seq, run_id, trigger, command_id, finished_at, overall, data_json, received_at)
         VALUES (@deviceId, @seq, @runId, @trigger, @commandId, @finishedAt, @overall, @dataJson, @receivedAt)
         ON CONFLICT (device_id, seq) DO NOTHING`,
      ),
      latest: db.prepare<[string, number], RunRow>(`SELECT ${RUN_COLUMNS} FROM selfcheck_runs WHERE device_id = ? ORDER BY seq DESC LIMIT ?`),
      deviceExists: db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE id = ?'),
      department: db.prepare<[string], { department: string | null }>('SELECT department FROM devices WHERE id = ?'),
      setDepartment: db.prepare<[string | null, string]>('UPDATE devices SET department = ? WHERE id = ?'),
      devices: db.prepare<[], DeviceRow>(
        `SELECT id, hostname, department, coalesce(tier, '${DEFAULT_DEVICE_TIER}') AS tier FROM devices ORDER BY coalesce(department, ''), hostname, id`,
      ),
      devicesOf: db.prepare<[string], DeviceRow>(
        `SELECT id, hostname, department, coalesce(tier, '${DEFAULT_DEVICE_TIER}') AS tier FROM devices WHERE department = ? ORDER BY hostname, id`,
      ),
      countAll: db.prepare<[string, string], { n: number }>('SELECT COUNT(*) AS n FROM selfcheck_runs WHERE finished_at >= ? AND finished_at < ?'),
      countOf: db.prepare<[string, string, string], { n: number }>(
        `SELECT COUNT(*) AS n FROM devices d JOIN selfcheck_runs r ON r.device_id = d.id
         WHERE d.department = ? AND r.finished_at >= ? AND r.finished_at < ?`,
      ),
      runsIn: db.prepare<[string, string, string], { data_json: string }>(
        'SELECT data_json FROM selfcheck_runs WHERE device_id = ? AND finished_at >= ? AND finished_at < ? ORDER BY finished_at, seq',
      ),
    };
  }

  /**
   * Stores the runs among newly accepted entries (call inside the batch's transaction). Entries
   * whose data does not validate stay events only and are reported by seq. Returns undefined when
   * the batch held no `selfcheck.result` entry.
   */
  ingest(deviceId: string, entries: readonly JournalEntry[], receivedAt: string): SelfcheckIngest | undefined {
    let stored = 0;
    const invalidSeqs: number[] = [];
    let seen = false;
    for (const entry of entries) {
      if (entry.type !== SELFCHECK_EVENT_TYPE) continue;
      seen = true;
      const run = selfcheckRunOf(entry);
      if (run === null) {
        invalidSeqs.push(entry.seq);
        continue;
      }
      const changes = this.statements.insert.run({
        deviceId,
        seq: entry.seq,
        runId: run.runId,
        trigger: run.trigger,
        commandId: run.commandId ?? null,
        finishedAt: normalisedInstant(run.finishedAt),
        overall: run.summary.overall,
        dataJson: canonicalJson(run),
        receivedAt,
      }).changes;
      stored += changes;
    }
    return seen ? { stored, invalidSeqs } : undefined;
  }

  latest(deviceId: string, limit: number): StoredSelfcheckRun[] | null {
    if (!this.statements.deviceExists.get(deviceId)) return null;
    // Validated when stored; a row that no longer validates (damaged) is left out.
    return this.statements.latest.all(deviceId, limit).flatMap(toStoredRun);
  }

  setDepartment(deviceId: string, department: string | null): { previous: string | null } | null {
    return this.db.transaction(() => {
      const row = this.statements.department.get(deviceId);
      if (!row) return null;
      this.statements.setDepartment.run(department, deviceId);
      return { previous: row.department };
    })();
  }

  countRuns(query: SelfcheckReportQuery): number {
    const row = query.department === null ? this.statements.countAll.get(query.from, query.until) : this.statements.countOf.get(query.department, query.from, query.until);
    return row?.n ?? 0;
  }

  /**
   * The report's input, one terminal at a time: each terminal's runs of the period are read from
   * one index range and compacted before the next terminal is read, so memory holds the year's
   * runs without their evidence (see `compactForReport`).
   */
  reportSources(query: SelfcheckReportQuery): SelfcheckReportSource[] {
    const read = () => {
      const devices = query.department === null ? this.statements.devices.all() : this.statements.devicesOf.all(query.department);
      return devices.map((device) => {
        // Validated when stored; the report validates again (and counts a damaged row as invalid).
        const runs = this.statements.runsIn.all(device.id, query.from, query.until).map((row) => JSON.parse(row.data_json) as unknown);
        return { deviceId: device.id, hostname: device.hostname, department: device.department, tier: TierSchema.parse(device.tier), runs: compactForReport(runs) };
      });
    };
    // One read transaction: every terminal is read from the same snapshot.
    return this.db.transaction(read)();
  }
}

function toStoredRun(row: RunRow): StoredSelfcheckRun[] {
  const parsed = SelfcheckRunSchema.safeParse(JSON.parse(row.data_json));
  const overall = SelfcheckResultSchema.safeParse(row.overall);
  if (!parsed.success || !overall.success) return [];
  const run = parsed.data;
  return [{
    deviceId: row.device_id,
    seq: row.seq,
    runId: row.run_id,
    trigger: run.trigger,
    commandId: row.command_id,
    finishedAt: row.finished_at,
    overall: overall.data,
    receivedAt: row.received_at,
    run,
  }];
}
