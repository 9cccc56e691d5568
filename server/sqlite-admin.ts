import type Database from 'better-sqlite3';
import type { JournalEntry } from '../shared/journal.js';
import { TierSchema } from '../shared/policy.js';
import { AdminRoleSchema } from '../shared/api.js';
import {
  DEFAULT_DEVICE_TIER,
  type AdminSessionRecord,
  type LoginThrottleRecord,
  type NewAdminAccount,
  type NewAdminSession,
  type StoredAdminAccount,
  type TerminalQuery,
  type TerminalRecord,
} from './store.js';

/**
 * The SQLite side of administrator accounts, sessions, login throttling and the dashboard's
 * terminal queries (tables and indexes: migration 5). Synchronous; `SqliteStore` wraps each call
 * behind the asynchronous `Store` interface.
 */

interface AccountRow {
  id: number;
  name: string;
  role: string;
  password_json: string;
  must_change_password: number;
  sealed_totp: string;
  totp_last_step: number | null;
  created_at: string;
  last_login_at: string | null;
}

interface SessionRow {
  id_hash: string;
  account_id: number;
  created_at: string;
  last_seen_at: string;
  ip: string;
  name: string;
  role: string;
  must_change_password: number;
}

interface ThrottleRow {
  subject: string;
  failures: number;
  last_failure_at: string;
  blocked_until: string | null;
}

interface TerminalRow {
  id: string;
  hostname: string;
  os: string;
  arch: string;
  agent_version: string;
  tier: string;
  enrolled_at: string;
  last_seen_at: string | null;
  lock_state: string | null;
  policy_version: number | null;
  enforcement: string | null;
  violation_count: number;
  violations_acked_count: number;
  violations_acked_seq: number;
  tamper_flag_count: number;
  ack_seq: number;
  status_json: string | null;
}

interface EventRow {
  seq: number;
  time: string;
  tz: string;
  type: string;
  data_json: string;
  prev: string;
  hash: string;
}

const ACCOUNT_COLUMNS = 'id, name, role, password_json, must_change_password, sealed_totp, totp_last_step, created_at, last_login_at';

const TIER_EXPRESSION = `coalesce(d.tier, '${DEFAULT_DEVICE_TIER}')`;
const LAST_SEEN_EXPRESSION = "coalesce(d.last_seen_at, '')";

const TERMINAL_COLUMNS = `d.id, d.hostname, d.os, d.arch, d.agent_version, ${TIER_EXPRESSION} AS tier, d.enrolled_at, d.last_seen_at,
  json_extract(d.status_json, '$.lockState') AS lock_state,
  json_extract(d.status_json, '$.policyVersion') AS policy_version,
  json_extract(d.status_json, '$.enforcement.state') AS enforcement,
  d.violation_count, d.violations_acked_count, d.violations_acked_seq, d.tamper_flag_count, d.ack_seq`;

export class SqliteAdminTables {
  private readonly statements;
  /** Prepared list queries, by shape (sort, direction, filters present). */
  private readonly listQueries = new Map<string, Database.Statement<Record<string, unknown>, TerminalRow>>();

  constructor(private readonly db: Database.Database) {
    this.statements = {
      insertAccount: db.prepare<NewAdminAccount & { mustChange: number }>(
        `INSERT INTO admin_accounts (name, role, password_json, must_change_password, sealed_totp, created_at)
         VALUES (@name, @role, @passwordJson, @mustChange, @sealedTotp, @createdAt) ON CONFLICT (name) DO NOTHING`,
      ),
      account: db.prepare<[string], AccountRow>(`SELECT ${ACCOUNT_COLUMNS} FROM admin_accounts WHERE name = ?`),
      accounts: db.prepare<[], AccountRow>(`SELECT ${ACCOUNT_COLUMNS} FROM admin_accounts ORDER BY name`),
      acceptLogin: db.prepare<{ id: number; step: number; at: string }>(
        `UPDATE admin_accounts SET totp_last_step = @step, last_login_at = @at
         WHERE id = @id AND (totp_last_step IS NULL OR totp_last_step < @step)`,
      ),
      setPassword: db.prepare<[string, number, number]>('UPDATE admin_accounts SET password_json = ?, must_change_password = ? WHERE id = ?'),
      insertSession: db.prepare<NewAdminSession>(
        'INSERT INTO admin_sessions (id_hash, account_id, created_at, last_seen_at, ip) VALUES (@idHash, @accountId, @createdAt, @lastSeenAt, @ip)',
      ),
      session: db.prepare<[string], SessionRow>(
        `SELECT s.id_hash, s.account_id, s.created_at, s.last_seen_at, s.ip, a.name, a.role, a.must_change_password
         FROM admin_sessions s JOIN admin_accounts a ON a.id = s.account_id WHERE s.id_hash = ?`,
      ),
      touchSession: db.prepare<[string, string]>('UPDATE admin_sessions SET last_seen_at = ? WHERE id_hash = ?'),
      deleteSession: db.prepare<[string]>('DELETE FROM admin_sessions WHERE id_hash = ?'),
      deleteSessionsOf: db.prepare<[number, string]>('DELETE FROM admin_sessions WHERE account_id = ? AND id_hash <> ?'),
      pruneSessions: db.prepare<[string, string]>('DELETE FROM admin_sessions WHERE last_seen_at < ? OR created_at < ?'),
      throttle: db.prepare<[string], ThrottleRow>('SELECT subject, failures, last_failure_at, blocked_until FROM login_throttle WHERE subject = ?'),
      countFailure: db.prepare<{ subject: string; at: string; forgetBefore: string }, ThrottleRow>(
        `INSERT INTO login_throttle (subject, failures, last_failure_at) VALUES (@subject, 1, @at)
         ON CONFLICT (subject) DO UPDATE SET
           failures = CASE WHEN last_failure_at < @forgetBefore THEN 1 ELSE failures + 1 END,
           last_failure_at = @at
         RETURNING subject, failures, last_failure_at, blocked_until`,
      ),
      block: db.prepare<[string | null, string]>('UPDATE login_throttle SET blocked_until = ? WHERE subject = ?'),
      pruneThrottle: db.prepare<[string, string]>(
        'DELETE FROM login_throttle WHERE last_failure_at < ? AND (blocked_until IS NULL OR blocked_until < ?)',
      ),
      clearThrottle: db.prepare<[string]>('DELETE FROM login_throttle WHERE subject = ?'),
      countAll: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM devices'),
      countOnline: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM devices WHERE last_seen_at >= ?'),
      terminal: db.prepare<[string], TerminalRow & { department: string | null }>(`SELECT ${TERMINAL_COLUMNS}, d.status_json, d.department FROM devices d WHERE d.id = ?`),
      eventsBefore: db.prepare<[string, number, number], EventRow>(
        `SELECT seq, time, tz, type, data_json, prev, hash FROM events
         WHERE device_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
      ),
      eventsOfTypes: db.prepare<[string, string, number], EventRow>(
        `SELECT seq, time, tz, type, data_json, prev, hash FROM events
         WHERE device_id = ? AND type IN (SELECT value FROM json_each(?)) ORDER BY seq DESC LIMIT ?`,
      ),
    };
  }

  addAccount(account: NewAdminAccount): boolean {
    return this.statements.insertAccount.run({ ...account, mustChange: account.mustChangePassword ? 1 : 0 }).changes === 1;
  }

  account(name: string): StoredAdminAccount | null {
    const row = this.statements.account.get(name);
    return row ? toAccount(row) : null;
  }

  accounts(): StoredAdminAccount[] {
    return this.statements.accounts.all().map(toAccount);
  }

  acceptLogin(id: number, step: number, at: string): boolean {
    return this.statements.acceptLogin.run({ id, step, at }).changes === 1;
  }

  setPassword(id: number, passwordJson: string, mustChange: boolean): void {
    this.statements.setPassword.run(passwordJson, mustChange ? 1 : 0, id);
  }

  addSession(session: NewAdminSession): void {
    this.statements.insertSession.run(session);
  }

  session(idHash: string): AdminSessionRecord | null {
    const row = this.statements.session.get(idHash);
    if (!row) return null;
    return {
      idHash: row.id_hash,
      accountId: row.account_id,
      createdAt: row.created_at,
      lastSeenAt: row.last_seen_at,
      ip: row.ip,
      user: row.name,
      role: AdminRoleSchema.parse(row.role),
      mustChangePassword: row.must_change_password === 1,
    };
  }

  touchSession(idHash: string, at: string): void {
    this.statements.touchSession.run(at, idHash);
  }

  deleteSession(idHash: string): void {
    this.statements.deleteSession.run(idHash);
  }

  deleteSessionsOf(accountId: number, keepIdHash: string | null): void {
    this.statements.deleteSessionsOf.run(accountId, keepIdHash ?? '');
  }

  pruneSessions(idleBefore: string, createdBefore: string): void {
    this.statements.pruneSessions.run(idleBefore, createdBefore);
  }

  throttle(subjects: readonly string[]): LoginThrottleRecord[] {
    return subjects.flatMap((subject) => {
      const row = this.statements.throttle.get(subject);
      return row ? [toThrottle(row)] : [];
    });
  }

  recordFailure(subjects: readonly string[], at: string, forgetBefore: string, blockUntil: (subject: string, failures: number) => string | null): LoginThrottleRecord[] {
    return this.db
      .transaction(() => {
        this.statements.pruneThrottle.run(forgetBefore, at);
        return subjects.map((subject) => {
          const row = this.statements.countFailure.get({ subject, at, forgetBefore });
          if (!row) throw new Error('login_throttle upsert returned no row');
          const until = blockUntil(subject, row.failures);
          // A block only ever grows: a later, shorter one never shortens a running one.
          const blockedUntil = until !== null && (row.blocked_until === null || until > row.blocked_until) ? until : row.blocked_until;
          if (blockedUntil !== row.blocked_until) this.statements.block.run(blockedUntil, subject);
          return toThrottle({ ...row, blocked_until: blockedUntil });
        });
      })
      .immediate();
  }

  clearThrottle(subject: string): void {
    this.statements.clearThrottle.run(subject);
  }

  listTerminals(query: TerminalQuery): { rows: TerminalRecord[]; more: boolean } {
    const { sql, params } = terminalListSql(query);
    let statement = this.listQueries.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare<Record<string, unknown>, TerminalRow>(sql);
      this.listQueries.set(sql, statement);
    }
    const rows = statement.all(params);
    return { rows: rows.slice(0, query.limit).map(toTerminal), more: rows.length > query.limit };
  }

  counts(onlineSince: string): { total: number; online: number } {
    return { total: this.statements.countAll.get()?.n ?? 0, online: this.statements.countOnline.get(onlineSince)?.n ?? 0 };
  }

  terminal(deviceId: string): (TerminalRecord & { arch: string; ackSeq: number; status: Record<string, unknown> | null; department: string | null }) | null {
    const row = this.statements.terminal.get(deviceId);
    if (!row) return null;
    return {
      ...toTerminal(row),
      arch: row.arch,
      ackSeq: row.ack_seq,
      status: row.status_json === null ? null : (JSON.parse(row.status_json) as Record<string, unknown>),
      department: row.department,
    };
  }

  eventsBefore(deviceId: string, beforeSeq: number, limit: number): JournalEntry[] {
    return this.statements.eventsBefore.all(deviceId, beforeSeq, limit).map(toEntry);
  }

  eventsOfTypes(deviceId: string, types: readonly string[], limit: number): JournalEntry[] {
    return this.statements.eventsOfTypes.all(deviceId, JSON.stringify(types), limit).map(toEntry);
  }
}

/**
 * The list query for one shape of `query`. `INDEXED BY` pins the index whose order is the page's
 * order, so SQLite walks it and stops after `limit + 1` matches instead of sorting every match
 * (its planner, without statistics, may otherwise prefer the last-seen range and a temporary
 * sort). Filters that the index does not cover (text, online with the hostname order) are checked
 * row by row during the walk: fast when matches are common, a walk of the whole index when they
 * are rare (see server/README.md).
 */
export function terminalListSql(query: TerminalQuery): { sql: string; params: Record<string, unknown> } {
  const byTier = query.tier !== undefined;
  const key = query.sort === 'hostname' ? 'd.hostname' : LAST_SEEN_EXPRESSION;
  const index =
    query.sort === 'hostname'
      ? byTier
        ? 'devices_list_by_tier_hostname'
        : 'devices_list_by_hostname'
      : byTier
        ? 'devices_list_by_tier_last_seen'
        : 'devices_list_by_last_seen';
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: query.limit + 1 };
  if (byTier) {
    where.push(`${TIER_EXPRESSION} = @tier`);
    params.tier = query.tier;
  }
  if (query.online === true) {
    where.push('d.last_seen_at >= @onlineSince');
    params.onlineSince = query.onlineSince;
  } else if (query.online === false) {
    where.push('(d.last_seen_at IS NULL OR d.last_seen_at < @onlineSince)');
    params.onlineSince = query.onlineSince;
  }
  if (query.text !== undefined && query.text !== '') {
    where.push('(instr(lower(d.hostname), lower(@text)) > 0 OR d.id = @text)');
    params.text = query.text;
  }
  const order = query.descending ? 'DESC' : 'ASC';
  if (query.after !== undefined) {
    // Spelled out rather than as a row value `(key, id) < (?, ?)`: SQLite cannot use an expression
    // index for the row-value form and walked the index from its start on every page (p95 32 ms at
    // 100,000 terminals by last seen; 5.7 ms this way — build/bench-server.ts).
    const [lt, le] = query.descending ? ['<', '<='] : ['>', '>='];
    where.push(`(${key} ${le} @afterKey AND (${key} ${lt} @afterKey OR d.id ${lt} @afterId))`);
    params.afterKey = query.after.key;
    params.afterId = query.after.id;
  }
  // With the tier fixed by equality, the tier indexes are in (key, id) order already. (Naming the
  // tier expression in ORDER BY too would make SQLite sort in a temporary b-tree.)
  const orderBy = `${key} ${order}, d.id ${order}`;
  const sql = `SELECT ${TERMINAL_COLUMNS} FROM devices d INDEXED BY ${index}
    ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY ${orderBy} LIMIT @limit`;
  return { sql, params };
}

function toAccount(row: AccountRow): StoredAdminAccount {
  return {
    id: row.id,
    name: row.name,
    role: AdminRoleSchema.parse(row.role),
    passwordJson: row.password_json,
    mustChangePassword: row.must_change_password === 1,
    sealedTotp: row.sealed_totp,
    totpLastStep: row.totp_last_step,
    createdAt: row.created_at,
    lastLoginAt: row.last_login_at,
  };
}

function toThrottle(row: ThrottleRow): LoginThrottleRecord {
  return { subject: row.subject, failures: row.failures, lastFailureAt: row.last_failure_at, blockedUntil: row.blocked_until };
}

function toTerminal(row: TerminalRow): TerminalRecord {
  return {
    id: row.id,
    hostname: row.hostname,
    os: row.os,
    agentVersion: row.agent_version,
    tier: TierSchema.parse(row.tier),
    enrolledAt: row.enrolled_at,
    lastSeenAt: row.last_seen_at,
    lockState: typeof row.lock_state === 'string' ? row.lock_state : null,
    policyVersion: typeof row.policy_version === 'number' && Number.isInteger(row.policy_version) ? row.policy_version : null,
    enforcement: typeof row.enforcement === 'string' ? row.enforcement : null,
    // Open violations: a counter difference read from the row (migration 8), never a count of events.
    violations: Math.max(0, row.violation_count - row.violations_acked_count),
    violationsTotal: row.violation_count,
    violationsAckedSeq: row.violations_acked_seq,
    tamperFlags: row.tamper_flag_count,
  };
}

function toEntry(row: EventRow): JournalEntry {
  return { seq: row.seq, time: row.time, tz: row.tz, type: row.type, data: JSON.parse(row.data_json) as JournalEntry['data'], prev: row.prev, hash: row.hash };
}
