import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AgentStatus, CommandAck, CommandState, DeviceSummary } from '../shared/api.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { GENESIS_HASH, type JournalEntry } from '../shared/journal.js';
import { TierSchema, type Tier } from '../shared/policy.js';
import { planBatch } from './chain.js';
import { sha256Hex } from './crypto.js';
import { migrate, SchemaTooNewError } from './migrations.js';
import { SqliteAdminTables } from './sqlite-admin.js';
import { SqliteEnrollmentTables } from './sqlite-enrollment.js';
import { SqliteRequestTables } from './sqlite-requests.js';
import { SqliteSelfcheckTables } from './sqlite-selfcheck.js';
import { SqliteViolationTables } from './sqlite-violations.js';
import { SqliteGroupPolicyTables } from './sqlite-group-policies.js';
import {
  DEFAULT_DEVICE_TIER,
  MAX_TAMPER_RECORDS_PER_DEVICE,
  TAMPER_EVENT_TYPES,
  VIOLATION_EVENT_TYPES,
  isTamperRecordKind,
  type AdminSessionRecord,
  type AppendOutcome,
  type ChainHead,
  type ChainRejection,
  type HeartbeatRecord,
  type DeviceRecoveryKeys,
  type EnrollmentTokenRecord,
  type EnrollmentTokenSummary,
  type LoginThrottleRecord,
  type NewAdminAccount,
  type NewAdminAction,
  type NewAdminSession,
  type NewDeviceRequest,
  type DeviceRequestDecision,
  type DeviceRequestQuery,
  type StoredDeviceRequest,
  type NewCommand,
  type NewDevice,
  type PolicyHead,
  type SelfcheckReportQuery,
  type SelfcheckReportSource,
  type StoredSelfcheckRun,
  type NewViolationAck,
  type StoredViolationAck,
  type ViolationAckOutcome,
  type DevicePolicyContext,
  type GroupPolicyDeletion,
  type GroupPolicyHead,
  type GroupPolicyHistoryEntry,
  type StoredGroupPolicy,
  type RecoveryCandidate,
  type SealedRecoveryKey,
  type Store,
  type StoredAdminAccount,
  type StoredAdminAction,
  type StoredCommand,
  type StoredPolicy,
  type TamperRecord,
  type TerminalQuery,
  type TerminalRecord,
  type UserCredentialsRecord,
  type UserCredentialsSummary,
  type UserResetRequest,
} from './store.js';

/** The database file inside the data directory. */
export const DATABASE_FILE = 'sekimori.db';

/**
 * How long a statement waits for another connection's write lock, in ms. The CLI writes
 * (enrolment tokens) while the server runs; with WAL only writers contend, and briefly.
 */
const BUSY_TIMEOUT_MS = 5000;

/** Expected failure to open the database (missing, not a database, unreadable, too new): message for people. */
export class StoreOpenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreOpenError';
  }
}

export interface SqliteStoreOptions {
  /** Create the database file when it does not exist (the server); false for CLI tools, so a mistyped --data is an error, not a new empty database. */
  readonly create: boolean;
}

interface DeviceHeadRow {
  ack_seq: number;
  ack_hash: string;
}

/** A heartbeat waiting for the next group commit (`recordHeartbeat`). */
interface PendingHeartbeat {
  readonly deviceId: string;
  readonly status: AgentStatus;
  readonly seenAt: string;
  /** Take up to this many commands to deliver in the same transaction; null: none. */
  readonly deliverLimit: number | null;
  resolve(record: HeartbeatRecord | null): void;
  reject(error: Error): void;
}

interface DeviceSummaryRow {
  id: string;
  hostname: string;
  os: string;
  agent_version: string;
  enrolled_at: string;
  last_seen_at: string | null;
  enforcement: string | null;
  lock_state: string | null;
  ack_seq: number;
  event_count: number;
  tamper_count: number;
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

interface PolicyHeadRow {
  tier: string;
  version: number;
  key_id: string;
  created_at: string;
  created_by: string;
}

interface PolicyRow extends PolicyHeadRow {
  payload: string;
  signature: string;
}

interface CommandRow {
  id: string;
  device_id: string;
  type: string;
  params_json: string | null;
  created_at: string;
  created_by: string;
  delivered_at: string | null;
  acked_at: string | null;
  ok: number | null;
  detail: string | null;
  cancelled_at: string | null;
}

interface RecoveryKeyRow {
  slot: string;
  epoch: number;
  sealed_key: string;
  command_id: string | null;
  created_at: string;
  delivered_at: string | null;
}

interface AdminActionRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  device_id: string | null;
  user_name: string | null;
  detail_json: string;
}

interface UserCredentialsRow {
  tier: string;
  user_name: string;
  sealed_bundle: string;
  enrolled_at: string;
  device_id: string;
}

const COMMAND_COLUMNS = 'id, device_id, type, params_json, created_at, created_by, delivered_at, acked_at, ok, detail, cancelled_at';

interface UserCredentialsSummaryRow {
  tier: string;
  user_name: string;
  enrolled_at: string;
  device_id: string;
  hostname: string;
}

interface TamperRow {
  kind: string;
  seq: number;
  detail_json: string;
  detected_at: string;
}

/**
 * `Store` on one SQLite file, `DIR/sekimori.db`, through better-sqlite3.
 *
 * - WAL: readers (dashboard, CLI) never block the writer, and the CLI can write while the server runs.
 * - synchronous=FULL: in WAL mode NORMAL survives a process crash but may lose the last commits
 *   on power loss. The server acknowledges events so that the agent can prune them; an
 *   acknowledged audit event lost to a power cut is lost for good. FULL costs one fsync per
 *   commit, and a whole batch (up to MAX_BATCH_ENTRIES entries) is one commit.
 * - foreign_keys=ON (SQLite's default is off), busy_timeout for concurrent processes.
 */
export class SqliteStore implements Store {
  private closed = false;
  private readonly statements;
  private readonly admin: SqliteAdminTables;
  private readonly requests: SqliteRequestTables;
  private readonly selfcheck: SqliteSelfcheckTables;
  private readonly violations: SqliteViolationTables;
  private readonly groupPolicies: SqliteGroupPolicyTables;
  private readonly enrollment: SqliteEnrollmentTables;
  private readonly pendingHeartbeats: PendingHeartbeat[] = [];
  // What a heartbeat would otherwise query every time, remembered by this connection. Kept right
  // without knowing the writers: TEMP triggers of this connection see every row any statement of
  // it writes (`sekimori_*_written` below), and a commit by another connection (a CLI process:
  // `policy set`) changes `PRAGMA data_version`, which every use checks first (`noteOtherWriters`):
  // then both are dropped and re-read from the database.
  /**
   * Devices that may have open commands: a superset, so a heartbeat of any other device skips the
   * commands query (nearly every heartbeat). Every inserted or updated `commands` row adds its
   * device; a device leaves only when a delivery finds it has no open command. Null: to be loaded.
   */
  private openCommandDevices: Set<string> | null = null;
  /** The newest policy of each tier asked for (null: none published); any write to `policies` clears it. */
  private readonly policyHeads = new Map<Tier, PolicyHead | null>();
  /** `PRAGMA data_version` at the last check; null: never checked. */
  private seenDataVersion: number | null = null;

  private constructor(private readonly db: Database.Database) {
    // Before any statement is prepared, so none is compiled without the triggers.
    db.function('sekimori_command_written', { deterministic: false }, (deviceId: unknown) => {
      if (typeof deviceId === 'string') this.openCommandDevices?.add(deviceId);
      return null;
    });
    db.function('sekimori_policy_written', { deterministic: false }, () => {
      this.policyHeads.clear();
      return null;
    });
    db.exec(`
      CREATE TEMP TRIGGER IF NOT EXISTS sekimori_command_inserted AFTER INSERT ON main.commands
      BEGIN SELECT sekimori_command_written(NEW.device_id); END;
      CREATE TEMP TRIGGER IF NOT EXISTS sekimori_command_updated AFTER UPDATE ON main.commands
      BEGIN SELECT sekimori_command_written(NEW.device_id); END;
      CREATE TEMP TRIGGER IF NOT EXISTS sekimori_policy_inserted AFTER INSERT ON main.policies
      BEGIN SELECT sekimori_policy_written(); END;
      CREATE TEMP TRIGGER IF NOT EXISTS sekimori_policy_updated AFTER UPDATE ON main.policies
      BEGIN SELECT sekimori_policy_written(); END;
      CREATE TEMP TRIGGER IF NOT EXISTS sekimori_policy_deleted AFTER DELETE ON main.policies
      BEGIN SELECT sekimori_policy_written(); END;
    `);
    this.admin = new SqliteAdminTables(db);
    this.requests = new SqliteRequestTables(db);
    this.selfcheck = new SqliteSelfcheckTables(db);
    this.violations = new SqliteViolationTables(db);
    this.groupPolicies = new SqliteGroupPolicyTables(db);
    this.enrollment = new SqliteEnrollmentTables(db);
    this.statements = {
      insertDevice: db.prepare<Omit<NewDevice, 'recoveryKey'> & { genesis: string }>(
        `INSERT INTO devices (id, hostname, os, arch, hardware_id, agent_version, credential_hash, enrolled_at, ack_seq, ack_hash, recovery_tag)
         VALUES (@id, @hostname, @os, @arch, @hardwareId, @agentVersion, @credentialHash, @enrolledAt, 0, @genesis, @recoveryTag)`,
      ),
      insertRecoveryKey: db.prepare<{ deviceId: string; slot: string; epoch: number; sealedKey: string; commandId: string | null; createdAt: string }>(
        `INSERT INTO recovery_keys (device_id, slot, epoch, sealed_key, command_id, created_at)
         VALUES (@deviceId, @slot, @epoch, @sealedKey, @commandId, @createdAt)`,
      ),
      recoveryKeys: db.prepare<[string], RecoveryKeyRow>(
        `SELECT k.slot, k.epoch, k.sealed_key, k.command_id, k.created_at, c.delivered_at
         FROM recovery_keys k LEFT JOIN commands c ON c.id = k.command_id WHERE k.device_id = ?`,
      ),
      deviceExists: db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE id = ?'),
      advanceRecoveryKey: db.prepare<{ deviceId: string; fromEpoch: number; epoch: number; sealedKey: string; createdAt: string }>(
        `UPDATE recovery_keys SET epoch = @epoch, sealed_key = @sealedKey, created_at = @createdAt
         WHERE device_id = @deviceId AND slot = 'current' AND epoch = @fromEpoch`,
      ),
      pendingRecoveryKey: db.prepare<[string], { command_id: string }>(
        "SELECT command_id FROM recovery_keys WHERE device_id = ? AND slot = 'pending'",
      ),
      deleteRecoveryKey: db.prepare<[string, string]>('DELETE FROM recovery_keys WHERE device_id = ? AND slot = ?'),
      promotePendingKey: db.prepare<[string]>(
        "UPDATE recovery_keys SET slot = 'current', command_id = NULL WHERE device_id = ? AND slot = 'pending'",
      ),
      setRecoveryTag: db.prepare<[string, string]>('UPDATE devices SET recovery_tag = ? WHERE id = ? AND recovery_tag IS NULL'),
      devicesByRecoveryTag: db.prepare<[string], { id: string; hostname: string }>(
        'SELECT id, hostname FROM devices WHERE recovery_tag = ? ORDER BY enrolled_at, id',
      ),
      knownUsers: db.prepare<{ deviceId: string; limit: number }, { user_name: string }>(
        `SELECT user_name FROM (
           SELECT user_name FROM device_users WHERE device_id = @deviceId
           UNION
           SELECT user_name FROM user_credentials WHERE device_id = @deviceId
           UNION
           SELECT json_extract(data_json, '$.user') FROM events
           WHERE device_id = @deviceId AND (type LIKE 'auth.%' OR type LIKE 'lock.%') AND json_type(data_json, '$.user') = 'text'
         ) ORDER BY user_name LIMIT @limit`,
      ),
      insertCommand: db.prepare<{ id: string; deviceId: string; type: string; paramsJson: string | null; createdAt: string; createdBy: string }>(
        `INSERT INTO commands (id, device_id, type, params_json, created_at, created_by)
         VALUES (@id, @deviceId, @type, @paramsJson, @createdAt, @createdBy)`,
      ),
      openCommands: db.prepare<[string, number], CommandRow>(
        `SELECT ${COMMAND_COLUMNS} FROM commands
         WHERE device_id = ? AND acked_at IS NULL AND cancelled_at IS NULL ORDER BY seq LIMIT ?`,
      ),
      markDelivered: db.prepare<[string, string]>('UPDATE commands SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL'),
      dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
      openCommandDevices: db.prepare<[], string>('SELECT DISTINCT device_id FROM commands WHERE acked_at IS NULL AND cancelled_at IS NULL').pluck(),
      ackCommand: db.prepare<{ id: string; deviceId: string; at: string; ok: number; detail: string | null }, CommandRow>(
        `UPDATE commands SET acked_at = @at, ok = @ok, detail = @detail
         WHERE id = @id AND device_id = @deviceId AND acked_at IS NULL AND cancelled_at IS NULL
         RETURNING ${COMMAND_COLUMNS}`,
      ),
      cancelCommand: db.prepare<[string, string]>('UPDATE commands SET cancelled_at = ? WHERE id = ? AND acked_at IS NULL AND cancelled_at IS NULL'),
      listCommands: db.prepare<[string, number], CommandRow>(
        `SELECT ${COMMAND_COLUMNS} FROM commands WHERE device_id = ? ORDER BY seq DESC LIMIT ?`,
      ),
      insertAdminAction: db.prepare<{ at: string; actor: string; action: string; deviceId: string | null; user: string | null; detailJson: string }>(
        `INSERT INTO admin_actions (at, actor, action, device_id, user_name, detail_json)
         VALUES (@at, @actor, @action, @deviceId, @user, @detailJson)`,
      ),
      listAdminActions: db.prepare<[number, number], AdminActionRow>(
        'SELECT id, at, actor, action, device_id, user_name, detail_json FROM admin_actions WHERE id < ? ORDER BY id DESC LIMIT ?',
      ),
      userCredentials: db.prepare<[string, string], UserCredentialsRow>(
        'SELECT tier, user_name, sealed_bundle, enrolled_at, device_id FROM user_credentials WHERE tier = ? AND user_name = ?',
      ),
      upsertUserCredentials: db.prepare<UserCredentialsRecord>(
        `INSERT INTO user_credentials (tier, user_name, sealed_bundle, enrolled_at, device_id)
         VALUES (@tier, @user, @sealedBundle, @enrolledAt, @deviceId)
         ON CONFLICT (tier, user_name) DO UPDATE SET
           sealed_bundle = excluded.sealed_bundle, enrolled_at = excluded.enrolled_at, device_id = excluded.device_id`,
      ),
      noteDeviceUser: db.prepare<{ deviceId: string; user: string; source: string; at: string }>(
        `INSERT INTO device_users (device_id, user_name, source, first_seen_at, last_seen_at)
         VALUES (@deviceId, @user, @source, @at, @at)
         ON CONFLICT (device_id, user_name) DO UPDATE SET last_seen_at = excluded.last_seen_at`,
      ),
      listUserCredentials: db.prepare<{ tier: string | null }, UserCredentialsSummaryRow>(
        `SELECT u.tier, u.user_name, u.enrolled_at, u.device_id, d.hostname FROM user_credentials u
         JOIN devices d ON d.id = u.device_id
         WHERE @tier IS NULL OR u.tier = @tier ORDER BY u.user_name, u.tier`,
      ),
      deleteUserCredentials: db.prepare<[string, string], { tier: string }>(
        'DELETE FROM user_credentials WHERE user_name = ? AND tier IN (SELECT value FROM json_each(?)) RETURNING tier',
      ),
      devicesInTiers: db.prepare<[string], { id: string }>(
        `SELECT id FROM devices WHERE coalesce(tier, '${DEFAULT_DEVICE_TIER}') IN (SELECT value FROM json_each(?)) ORDER BY enrolled_at, id`,
      ),
      userKnownInTiers: db.prepare<{ user: string; tiers: string }, { found: number }>(
        `SELECT EXISTS (
           SELECT 1 FROM user_credentials WHERE user_name = @user AND tier IN (SELECT value FROM json_each(@tiers))
           UNION ALL
           SELECT 1 FROM device_users u JOIN devices d ON d.id = u.device_id
           WHERE u.user_name = @user AND coalesce(d.tier, '${DEFAULT_DEVICE_TIER}') IN (SELECT value FROM json_each(@tiers))
         ) AS found`,
      ),
      credentialHash: db.prepare<[string], { credential_hash: string }>('SELECT credential_hash FROM devices WHERE id = ?'),
      // The tier is set apart, only when it changed: writing the same value still moves its two
      // index entries (devices_by_tier, devices_list_by_tier_hostname), two more pages per heartbeat
      // to write to the WAL and check-point back.
      heartbeat: db.prepare<[string, string, string, string], DeviceHeadRow & { tier: string | null }>(
        `UPDATE devices SET status_json = ?, last_seen_at = ?, agent_version = ? WHERE id = ?
         RETURNING ack_seq, ack_hash, tier`,
      ),
      // Only the first report sets the tier (migration 10): after that it is the stored one, changed
      // by an administrator only (server/sqlite-group-policies.ts), never by what a device claims.
      setTier: db.prepare<[Tier, string]>('UPDATE devices SET tier = ? WHERE id = ? AND tier IS NULL'),
      deviceTier: db.prepare<[string], { tier: string | null }>('SELECT tier FROM devices WHERE id = ?'),
      // Inserts only above every stored version of the tier: versions strictly increase.
      addPolicy: db.prepare<StoredPolicy>(
        `INSERT INTO policies (tier, version, payload, signature, key_id, created_at, created_by)
         SELECT @tier, @version, @payload, @signature, @keyId, @createdAt, @createdBy
         WHERE NOT EXISTS (SELECT 1 FROM policies WHERE tier = @tier AND version >= @version)
           AND NOT EXISTS (SELECT 1 FROM group_policies WHERE tier = @tier AND version >= @version)`,
      ),
      policyHead: db.prepare<[string], PolicyHeadRow>(
        'SELECT tier, version, key_id, created_at, created_by FROM policies WHERE tier = ? ORDER BY version DESC LIMIT 1',
      ),
      currentPolicy: db.prepare<[string], PolicyRow>(
        `SELECT tier, version, key_id, created_at, created_by, payload, signature FROM policies
         WHERE tier = ? ORDER BY version DESC LIMIT 1`,
      ),
      policyHistory: db.prepare<[string], PolicyHeadRow>(
        'SELECT tier, version, key_id, created_at, created_by FROM policies WHERE tier = ? ORDER BY version DESC',
      ),
      head: db.prepare<[string], DeviceHeadRow>('SELECT ack_seq, ack_hash FROM devices WHERE id = ?'),
      setHead: db.prepare<[number, string, string]>('UPDATE devices SET ack_seq = ?, ack_hash = ? WHERE id = ?'),
      addCounts: db.prepare<{ id: string; violations: number; tamper: number }>(
        'UPDATE devices SET violation_count = violation_count + @violations, tamper_flag_count = tamper_flag_count + @tamper WHERE id = @id',
      ),
      eventHash: db.prepare<[string, number], { hash: string }>('SELECT hash FROM events WHERE device_id = ? AND seq = ?'),
      insertEvent: db.prepare<[string, number, string, string, string, string, string, string, string]>(
        `INSERT INTO events (device_id, seq, time, tz, type, data_json, prev, hash, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      eventsAfter: db.prepare<[string, number, number], EventRow>(
        `SELECT seq, time, tz, type, data_json, prev, hash FROM events
         WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
      ),
      countEvents: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM events WHERE device_id = ?'),
      countTamper: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM tamper_events WHERE device_id = ?'),
      insertTamper: db.prepare<[string, string, number, string, string]>(
        `INSERT INTO tamper_events (device_id, kind, seq, detail_json, detected_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (device_id, kind, seq) DO NOTHING`,
      ),
      tamper: db.prepare<[string], TamperRow>(
        'SELECT kind, seq, detail_json, detected_at FROM tamper_events WHERE device_id = ? ORDER BY id',
      ),
      // Counts are exact (not ack_seq) so a row deleted behind the server's back shows. The
      // dashboard's 100k-terminal list pages with counters instead (listTerminals, migration 5).
      listDevices: db.prepare<[], DeviceSummaryRow>(
        `SELECT d.id, d.hostname, d.os, d.agent_version, d.enrolled_at, d.last_seen_at,
                json_extract(d.status_json, '$.enforcement.state') AS enforcement,
                json_extract(d.status_json, '$.lockState') AS lock_state,
                d.ack_seq,
                -- The server stores a device's events contiguously from seq 1 (gaps are refused),
                -- so their count is ack_seq; counting rows took 40 s at 10 million events.
                d.ack_seq AS event_count,
                (SELECT COUNT(*) FROM tamper_events t WHERE t.device_id = d.id) AS tamper_count
         FROM devices d ORDER BY d.enrolled_at, d.id`,
      ),
    };
  }

  /**
   * Opens (and migrates) `DIR/sekimori.db`. Throws StoreOpenError for the expected failures: no
   * database and `create` false, a file that is not a database, no permission, a schema from a
   * newer server.
   */
  static open(dataDir: string, options: SqliteStoreOptions): SqliteStore {
    const file = path.join(dataDir, DATABASE_FILE);
    const existed = fs.existsSync(file);
    if (!existed && !options.create) {
      throw new StoreOpenError(`no database at ${file} (start the server once with --data ${dataDir})`);
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { fileMustExist: !options.create, timeout: BUSY_TIMEOUT_MS });
      // The data directory is 0700 already; the file is 0600 too, so a later move keeps it private.
      if (!existed) fs.chmodSync(file, 0o600);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new StoreOpenError(`${file}: cannot switch to WAL journal mode (got ${String(mode)})`);
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      // 128 MiB of page cache (the default is 16): at 100,000 terminals `devices` and its indexes are
      // about 105 MB, and heartbeats read and rewrite them all in turn, so with less nearly every
      // heartbeat reads its row and index pages from the file again.
      db.pragma('cache_size = -131072');
      migrate(db);
      return new SqliteStore(db);
    } catch (error) {
      db?.close();
      if (error instanceof StoreOpenError) throw error;
      if (error instanceof SchemaTooNewError) throw new StoreOpenError(`${file}: ${error.message}`, { cause: error });
      if (error instanceof Database.SqliteError || isFileSystemError(error)) {
        throw new StoreOpenError(`cannot open database ${file}: ${error.message}`, { cause: error });
      }
      throw error;
    }
  }

  addEnrollmentToken(token: EnrollmentTokenRecord): Promise<void> {
    return this.run(() => this.enrollment.add(token));
  }

  enrollDevice(tokenHash: string, device: NewDevice): Promise<boolean> {
    return this.run(() =>
      this.db
        .transaction(() => {
          // Spend first: the conditional decrement is the atomic check-and-set, so a token's uses
          // are spent at most once each however many requests race for them.
          const tokenId = this.enrollment.spend(tokenHash, device.enrolledAt);
          if (tokenId === null) return false;
          const { recoveryKey, ...row } = device;
          this.statements.insertDevice.run({ ...row, genesis: GENESIS_HASH });
          this.statements.insertRecoveryKey.run({ deviceId: device.id, slot: 'current', commandId: null, ...recoveryKey });
          this.enrollment.markDevice(device.id, tokenId);
          return true;
        })
        .immediate(),
    );
  }

  listEnrollmentTokens(): Promise<EnrollmentTokenSummary[]> {
    return this.run(() => this.enrollment.list());
  }

  revokeEnrollmentToken(id: string, at: string): Promise<EnrollmentTokenSummary | null> {
    return this.run(() => this.db.transaction(() => this.enrollment.revoke(id, at)).immediate());
  }

  deviceCredentialHash(deviceId: string): Promise<string | null> {
    return this.run(() => this.statements.credentialHash.get(deviceId)?.credential_hash ?? null);
  }

  /**
   * Heartbeats are group-committed: every heartbeat that arrives in one turn of the event loop is
   * written in one transaction (one fsync), and each caller is answered after that commit. With many
   * terminals beating at once this turns N commits into a few; a lone heartbeat waits one tick.
   * With `deliver`, the heartbeat's commands are taken in that transaction too (their delivery
   * marks ride on the same commit, and the heartbeat needs no second statement after it).
   */
  recordHeartbeat(deviceId: string, status: AgentStatus, seenAt: string, deliver?: { readonly limit: number }): Promise<HeartbeatRecord | null> {
    if (this.closed) return Promise.reject(new Error('SqliteStore used after close()'));
    return new Promise((resolve, reject) => {
      this.pendingHeartbeats.push({ deviceId, status, seenAt, deliverLimit: deliver?.limit ?? null, resolve, reject });
      if (this.pendingHeartbeats.length === 1) setImmediate(() => this.flushHeartbeats());
    });
  }

  private flushHeartbeats(): void {
    const batch = this.pendingHeartbeats.splice(0);
    if (batch.length === 0) return;
    if (this.closed) {
      for (const item of batch) item.reject(new Error('SqliteStore used after close()'));
      return;
    }
    try {
      // IMMEDIATE: the write lock from the start, so no other connection commits between the
      // check of data_version and the reads it vouches for.
      const records = this.db.transaction(() => {
        this.noteOtherWriters();
        return batch.map((item): HeartbeatRecord | null => {
          const row = this.statements.heartbeat.get(JSON.stringify(item.status), item.seenAt, item.status.agentVersion, item.deviceId);
          if (!row) return null;
          const tier = item.status.tier ?? DEFAULT_DEVICE_TIER;
          if (row.tier !== tier) this.statements.setTier.run(tier, item.deviceId);
          const head = toHead(row);
          return item.deliverLimit === null ? head : { ...head, commands: this.deliverCommands(item.deviceId, item.deliverLimit, item.seenAt, true) };
        });
      }).immediate();
      batch.forEach((item, index) => item.resolve(records[index] ?? null));
    } catch (error) {
      for (const item of batch) item.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  appendEvents(deviceId: string, entries: readonly JournalEntry[], receivedAt: string): Promise<AppendOutcome> {
    return this.run(() =>
      this.db
        .transaction((): AppendOutcome => {
          const row = this.statements.head.get(deviceId);
          if (!row) return { status: 'unknown-device' };
          const plan = planBatch(
            toHead(row),
            entries,
            (seq) => this.statements.eventHash.get(deviceId, seq)?.hash,
            sha256Hex,
          );
          for (const entry of plan.accepted) {
            this.statements.insertEvent.run(
              deviceId,
              entry.seq,
              entry.time,
              entry.tz,
              entry.type,
              // Canonical form: re-reading it gives back the same values, hence the same hash.
              canonicalJson(entry.data),
              entry.prev,
              entry.hash,
              receivedAt,
            );
          }
          if (plan.accepted.length > 0) this.statements.setHead.run(plan.head.seq, plan.head.hash, deviceId);
          const violations = plan.accepted.filter((entry) => VIOLATIONS.has(entry.type)).length;
          const tamper = plan.accepted.filter((entry) => TAMPER_TYPES.has(entry.type)).length;
          if (violations + tamper > 0) this.statements.addCounts.run({ id: deviceId, violations, tamper });
          // Self-inspection runs: stored with their events or not at all (same transaction).
          const selfcheck = this.selfcheck.ingest(deviceId, plan.accepted, receivedAt);
          const accepted = plan.accepted.length;
          const extra = selfcheck === undefined ? {} : { selfcheck };
          if (!plan.rejection) return { status: 'accepted', head: plan.head, accepted, ...extra };
          this.recordTamper(deviceId, plan.rejection, receivedAt);
          return { status: 'rejected', head: plan.head, accepted, rejection: plan.rejection, ...extra };
        })
        // IMMEDIATE: the head is read and then moved; taking the write lock up front means a
        // concurrent writer waits (busy_timeout) instead of failing on lock upgrade.
        .immediate(),
    );
  }

  listDevices(): Promise<DeviceSummary[]> {
    return this.run(() =>
      this.statements.listDevices.all().map((row) => ({
        deviceId: row.id,
        hostname: row.hostname,
        os: row.os,
        agentVersion: row.agent_version,
        enrolledAt: row.enrolled_at,
        lastSeenAt: row.last_seen_at,
        enforcement: row.enforcement,
        lockState: row.lock_state,
        ackSeq: row.ack_seq,
        eventCount: row.event_count,
        tamperCount: row.tamper_count,
      })),
    );
  }

  chainHead(deviceId: string): Promise<ChainHead | null> {
    return this.run(() => {
      const row = this.statements.head.get(deviceId);
      return row ? toHead(row) : null;
    });
  }

  eventsAfter(deviceId: string, afterSeq: number, limit: number): Promise<JournalEntry[]> {
    return this.run(() =>
      this.statements.eventsAfter.all(deviceId, afterSeq, limit).map((row) => ({
        seq: row.seq,
        time: row.time,
        tz: row.tz,
        type: row.type,
        data: JSON.parse(row.data_json) as JournalEntry['data'],
        prev: row.prev,
        hash: row.hash,
      })),
    );
  }

  countEvents(deviceId: string): Promise<number> {
    return this.run(() => this.statements.countEvents.get(deviceId)?.n ?? 0);
  }

  tamperRecords(deviceId: string): Promise<TamperRecord[]> {
    return this.run(() =>
      this.statements.tamper.all(deviceId).map((row) => {
        if (!isTamperRecordKind(row.kind)) throw new Error(`tamper record with unknown kind ${JSON.stringify(row.kind)}`);
        return {
          kind: row.kind,
          seq: row.seq,
          detail: JSON.parse(row.detail_json) as TamperRecord['detail'],
          detectedAt: row.detected_at,
        };
      }),
    );
  }

  deviceTier(deviceId: string): Promise<Tier | null> {
    return this.run(() => {
      const row = this.statements.deviceTier.get(deviceId);
      if (!row) return null;
      return row.tier === null ? DEFAULT_DEVICE_TIER : TierSchema.parse(row.tier);
    });
  }

  addPolicy(policy: StoredPolicy): Promise<boolean> {
    return this.run(() =>
      // IMMEDIATE: the "no version at or above" check and the insert are one atomic step.
      this.db.transaction(() => this.statements.addPolicy.run(policy).changes === 1).immediate(),
    );
  }

  policyHead(tier: Tier): Promise<PolicyHead | null> {
    return this.run(() => {
      // Every heartbeat asks (its policy etag): remembered until `policies` changes (see policyHeads).
      this.noteOtherWriters();
      const known = this.policyHeads.get(tier);
      if (known !== undefined) return known;
      const row = this.statements.policyHead.get(tier);
      const head = row ? Object.freeze(toPolicyHead(row)) : null;
      this.policyHeads.set(tier, head);
      return head;
    });
  }

  currentPolicy(tier: Tier): Promise<StoredPolicy | null> {
    return this.run(() => {
      const row = this.statements.currentPolicy.get(tier);
      return row ? { ...toPolicyHead(row), payload: row.payload, signature: row.signature } : null;
    });
  }

  policyHistory(tier: Tier): Promise<PolicyHead[]> {
    return this.run(() => this.statements.policyHistory.all(tier).map(toPolicyHead));
  }

  recoveryKeys(deviceId: string): Promise<DeviceRecoveryKeys | null> {
    return this.run(() =>
      this.db.transaction(() => {
        if (!this.statements.deviceExists.get(deviceId)) return null;
        let current: DeviceRecoveryKeys['current'] = null;
        let pending: DeviceRecoveryKeys['pending'] = null;
        for (const row of this.statements.recoveryKeys.all(deviceId)) {
          const key: SealedRecoveryKey = { epoch: row.epoch, sealedKey: row.sealed_key, createdAt: row.created_at };
          if (row.slot === 'current') current = key;
          else if (row.command_id !== null) pending = { ...key, commandId: row.command_id, delivered: row.delivered_at !== null };
        }
        return { current, pending };
      })(),
    );
  }

  advanceRecoveryKey(deviceId: string, fromEpoch: number, next: SealedRecoveryKey): Promise<boolean> {
    return this.run(() => this.statements.advanceRecoveryKey.run({ deviceId, fromEpoch, ...next }).changes === 1);
  }

  setPendingRecoveryKey(deviceId: string, recoveryTag: string, pending: SealedRecoveryKey, command: NewCommand): Promise<boolean> {
    return this.run(() =>
      this.db
        .transaction(() => {
          if (!this.statements.deviceExists.get(deviceId)) return false;
          this.statements.setRecoveryTag.run(recoveryTag, deviceId);
          const earlier = this.statements.pendingRecoveryKey.get(deviceId);
          if (earlier) {
            this.statements.deleteRecoveryKey.run(deviceId, 'pending');
            this.statements.cancelCommand.run(command.createdAt, earlier.command_id);
          }
          this.insertCommand(command);
          this.statements.insertRecoveryKey.run({ deviceId, slot: 'pending', commandId: command.id, ...pending });
          return true;
        })
        .immediate(),
    );
  }

  devicesByRecoveryTag(tag: string): Promise<RecoveryCandidate[]> {
    return this.run(() => this.statements.devicesByRecoveryTag.all(tag).map((row) => ({ deviceId: row.id, hostname: row.hostname })));
  }

  knownUsers(deviceId: string, limit: number): Promise<string[]> {
    return this.run(() => this.statements.knownUsers.all({ deviceId, limit }).map((row) => row.user_name));
  }

  addCommands(commands: readonly NewCommand[]): Promise<void> {
    return this.run(() => {
      this.db.transaction(() => {
        for (const command of commands) this.insertCommand(command);
      })();
    });
  }

  takeCommandsToDeliver(deviceId: string, limit: number, at: string): Promise<StoredCommand[]> {
    return this.run(() => {
      if (!this.mayHaveOpenCommands(deviceId)) return [];
      // Nearly every heartbeat has nothing new to deliver: answered from one read, without taking
      // the write lock (the answer the transaction below would give at this instant).
      const open = this.statements.openCommands.all(deviceId, limit);
      if (open.length === 0) this.openCommandDevices?.delete(deviceId);
      if (open.every((row) => row.delivered_at !== null)) return open.map(toCommand);
      return this.db.transaction(() => this.deliverCommands(deviceId, limit, at)).immediate();
    });
  }

  /**
   * The device's open commands, oldest first, those not yet delivered marked delivered at `at`
   * (inside a write transaction). `othersNoted`: `noteOtherWriters` ran in this transaction already.
   */
  private deliverCommands(deviceId: string, limit: number, at: string, othersNoted = false): StoredCommand[] {
    if (!this.mayHaveOpenCommands(deviceId, othersNoted)) return [];
    const open = this.statements.openCommands.all(deviceId, limit);
    if (open.length === 0) this.openCommandDevices?.delete(deviceId);
    return open.map((row) => {
      if (row.delivered_at !== null) return toCommand(row);
      this.statements.markDelivered.run(at, row.id);
      return toCommand({ ...row, delivered_at: at });
    });
  }

  /** False only when the device certainly has no open command (see `openCommandDevices`). */
  private mayHaveOpenCommands(deviceId: string, othersNoted = false): boolean {
    if (!othersNoted) this.noteOtherWriters();
    this.openCommandDevices ??= new Set(this.statements.openCommandDevices.all());
    return this.openCommandDevices.has(deviceId);
  }

  /**
   * Drops what this connection remembers (open-command devices, policy heads) when another
   * connection has committed since the last check. The version is read before anything is
   * re-read, so a commit racing with the re-read is caught by the next check.
   */
  private noteOtherWriters(): void {
    const version = this.statements.dataVersion.get() ?? null;
    if (version === this.seenDataVersion) return;
    this.seenDataVersion = version;
    this.openCommandDevices = null;
    this.policyHeads.clear();
  }

  acknowledgeCommands(deviceId: string, acks: readonly CommandAck[], at: string): Promise<StoredCommand[]> {
    return this.run(() =>
      this.db
        .transaction(() => {
          const closed: StoredCommand[] = [];
          for (const ack of acks) {
            const row = this.statements.ackCommand.get({ id: ack.id, deviceId, at, ok: ack.ok ? 1 : 0, detail: ack.detail ?? null });
            if (!row) continue;
            closed.push(toCommand(row));
            if (row.type !== 'set-recovery-key' || this.statements.pendingRecoveryKey.get(deviceId)?.command_id !== row.id) continue;
            if (ack.ok) {
              this.statements.deleteRecoveryKey.run(deviceId, 'current');
              this.statements.promotePendingKey.run(deviceId);
            } else {
              this.statements.deleteRecoveryKey.run(deviceId, 'pending');
            }
          }
          return closed;
        })
        .immediate(),
    );
  }

  listCommands(deviceId: string, limit: number): Promise<StoredCommand[]> {
    return this.run(() => this.statements.listCommands.all(deviceId, limit).map(toCommand));
  }

  addAdminAction(action: NewAdminAction): Promise<void> {
    return this.run(() => {
      this.statements.insertAdminAction.run({ ...action, detailJson: JSON.stringify(action.detail) });
    });
  }

  listAdminActions(limit: number, beforeId?: number): Promise<StoredAdminAction[]> {
    return this.run(() =>
      this.statements.listAdminActions.all(beforeId ?? Number.MAX_SAFE_INTEGER, limit).map((row) => ({
        id: row.id,
        at: row.at,
        actor: row.actor,
        action: row.action,
        deviceId: row.device_id,
        user: row.user_name,
        detail: JSON.parse(row.detail_json) as Record<string, unknown>,
      })),
    );
  }

  putUserCredentials(record: UserCredentialsRecord): Promise<{ replaced: boolean }> {
    return this.run(() =>
      this.db
        .transaction(() => {
          const replaced = this.statements.userCredentials.get(record.tier, record.user) !== undefined;
          this.statements.upsertUserCredentials.run(record);
          return { replaced };
        })
        .immediate(),
    );
  }

  userCredentials(tier: Tier, user: string): Promise<UserCredentialsRecord | null> {
    return this.run(() => {
      const row = this.statements.userCredentials.get(tier, user);
      return row
        ? { tier: TierSchema.parse(row.tier), user: row.user_name, sealedBundle: row.sealed_bundle, enrolledAt: row.enrolled_at, deviceId: row.device_id }
        : null;
    });
  }

  noteDeviceUser(deviceId: string, user: string, source: 'enrolled' | 'fetched', at: string): Promise<void> {
    return this.run(() => {
      this.statements.noteDeviceUser.run({ deviceId, user, source, at });
    });
  }

  listUserCredentials(tier?: Tier): Promise<UserCredentialsSummary[]> {
    return this.run(() =>
      this.statements.listUserCredentials.all({ tier: tier ?? null }).map((row) => ({
        tier: TierSchema.parse(row.tier),
        user: row.user_name,
        enrolledAt: row.enrolled_at,
        deviceId: row.device_id,
        hostname: row.hostname,
      })),
    );
  }

  resetUserCredentials(request: UserResetRequest): Promise<{ deletedTiers: Tier[]; commands: number }> {
    return this.run(() =>
      this.db
        .transaction(() => {
          const tiers = JSON.stringify(request.tiers);
          const deletedTiers = this.statements.deleteUserCredentials.all(request.user, tiers).map((row) => TierSchema.parse(row.tier));
          const devices = this.statements.devicesInTiers.all(tiers);
          for (const device of devices) {
            this.insertCommand({
              id: request.newCommandId(),
              deviceId: device.id,
              type: 'reset-factors',
              params: { user: request.user },
              createdAt: request.at,
              createdBy: request.createdBy,
            });
          }
          return { deletedTiers: deletedTiers.sort(), commands: devices.length };
        })
        .immediate(),
    );
  }

  userKnownInTiers(user: string, tiers: readonly Tier[]): Promise<boolean> {
    return this.run(() => this.statements.userKnownInTiers.get({ user, tiers: JSON.stringify(tiers) })?.found === 1);
  }

  addAdminAccount(account: NewAdminAccount): Promise<boolean> {
    return this.run(() => this.admin.addAccount(account));
  }

  adminAccount(name: string): Promise<StoredAdminAccount | null> {
    return this.run(() => this.admin.account(name));
  }

  listAdminAccounts(): Promise<StoredAdminAccount[]> {
    return this.run(() => this.admin.accounts());
  }

  acceptAdminLogin(accountId: number, step: number, at: string): Promise<boolean> {
    return this.run(() => this.admin.acceptLogin(accountId, step, at));
  }

  setAdminPassword(accountId: number, passwordJson: string, mustChangePassword: boolean): Promise<void> {
    return this.run(() => this.admin.setPassword(accountId, passwordJson, mustChangePassword));
  }

  addAdminSession(session: NewAdminSession): Promise<void> {
    return this.run(() => this.admin.addSession(session));
  }

  adminSession(idHash: string): Promise<AdminSessionRecord | null> {
    return this.run(() => this.admin.session(idHash));
  }

  touchAdminSession(idHash: string, at: string): Promise<void> {
    return this.run(() => this.admin.touchSession(idHash, at));
  }

  deleteAdminSession(idHash: string): Promise<void> {
    return this.run(() => this.admin.deleteSession(idHash));
  }

  deleteAdminSessionsOf(accountId: number, keepIdHash: string | null): Promise<void> {
    return this.run(() => this.admin.deleteSessionsOf(accountId, keepIdHash));
  }

  pruneAdminSessions(idleBefore: string, createdBefore: string): Promise<void> {
    return this.run(() => this.admin.pruneSessions(idleBefore, createdBefore));
  }

  loginThrottle(subjects: readonly string[]): Promise<LoginThrottleRecord[]> {
    return this.run(() => this.admin.throttle(subjects));
  }

  recordLoginFailure(subjects: readonly string[], at: string, forgetBefore: string, blockUntil: (subject: string, failures: number) => string | null): Promise<LoginThrottleRecord[]> {
    return this.run(() => this.admin.recordFailure(subjects, at, forgetBefore, blockUntil));
  }

  clearLoginThrottle(subject: string): Promise<void> {
    return this.run(() => this.admin.clearThrottle(subject));
  }

  listTerminals(query: TerminalQuery): Promise<{ rows: TerminalRecord[]; more: boolean }> {
    return this.run(() => this.admin.listTerminals(query));
  }

  terminalCounts(onlineSince: string): Promise<{ total: number; online: number }> {
    return this.run(() => this.admin.counts(onlineSince));
  }

  terminal(deviceId: string): Promise<(TerminalRecord & { arch: string; ackSeq: number; status: Record<string, unknown> | null; department: string | null }) | null> {
    return this.run(() => this.admin.terminal(deviceId));
  }

  eventsBefore(deviceId: string, beforeSeq: number, limit: number): Promise<JournalEntry[]> {
    return this.run(() => this.admin.eventsBefore(deviceId, beforeSeq, limit));
  }

  eventsOfTypes(deviceId: string, types: readonly string[], limit: number): Promise<JournalEntry[]> {
    return this.run(() => this.admin.eventsOfTypes(deviceId, types, limit));
  }

  close(): Promise<void> {
    if (!this.closed) {
      // Heartbeats queued for the next group commit are written first, not dropped.
      this.flushHeartbeats();
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }

  private insertCommand(command: NewCommand): void {
    this.statements.insertCommand.run({
      id: command.id,
      deviceId: command.deviceId,
      type: command.type,
      paramsJson: command.params === null ? null : JSON.stringify(command.params),
      createdAt: command.createdAt,
      createdBy: command.createdBy,
    });
  }

  private recordTamper(deviceId: string, rejection: ChainRejection, detectedAt: string): void {
    const held = this.statements.countTamper.get(deviceId)?.n ?? 0;
    if (held >= MAX_TAMPER_RECORDS_PER_DEVICE) return;
    const inserted = this.statements.insertTamper.run(deviceId, rejection.kind, rejection.seq, JSON.stringify(rejection.detail), detectedAt);
    if (inserted.changes === 1) this.statements.addCounts.run({ id: deviceId, violations: 0, tamper: 1 });
  }

  addDeviceRequest(request: NewDeviceRequest): Promise<'added' | 'exists' | 'conflict'> {
    return this.run(() => this.requests.add(request));
  }

  deviceRequest(id: string): Promise<StoredDeviceRequest | null> {
    return this.run(() => this.requests.byId(id));
  }

  listDeviceRequests(query: DeviceRequestQuery): Promise<StoredDeviceRequest[]> {
    return this.run(() => this.requests.list(query));
  }

  decideDeviceRequest(decision: DeviceRequestDecision): Promise<StoredDeviceRequest | null> {
    return this.run(() => this.requests.decide(decision));
  }

  devicePolicyRevision(deviceId: string): Promise<{ rev: number; at: string | null } | null> {
    return this.run(() => this.requests.policyRevision(deviceId));
  }

  approvedDeviceRequests(deviceId: string, after: string): Promise<StoredDeviceRequest[]> {
    return this.run(() => this.requests.approvedAfter(deviceId, after));
  }

  selfcheckRuns(deviceId: string, limit: number): Promise<StoredSelfcheckRun[] | null> {
    return this.run(() => this.selfcheck.latest(deviceId, limit));
  }

  setDeviceDepartment(deviceId: string, department: string | null): Promise<{ previous: string | null } | null> {
    return this.run(() => this.selfcheck.setDepartment(deviceId, department));
  }

  selfcheckReportSources(query: SelfcheckReportQuery): Promise<SelfcheckReportSource[]> {
    return this.run(() => this.selfcheck.reportSources(query));
  }

  countSelfcheckRuns(query: SelfcheckReportQuery): Promise<number> {
    return this.run(() => this.selfcheck.countRuns(query));
  }

  acknowledgeViolations(request: NewViolationAck): Promise<ViolationAckOutcome | null> {
    return this.run(() => this.violations.acknowledge(request));
  }

  lastPolicyVersion(tier: Tier): Promise<number> {
    return this.run(() => this.groupPolicies.lastVersion(tier));
  }

  addGroupPolicy(policy: StoredGroupPolicy | GroupPolicyDeletion): Promise<boolean> {
    return this.run(() => this.groupPolicies.add(policy));
  }

  currentGroupPolicy(tier: Tier, department: string): Promise<StoredGroupPolicy | null> {
    return this.run(() => this.groupPolicies.current(tier, department));
  }

  groupPolicyHead(tier: Tier, department: string): Promise<GroupPolicyHead | null> {
    return this.run(() => this.groupPolicies.head(tier, department));
  }

  listGroupPolicies(tier: Tier): Promise<GroupPolicyHead[]> {
    return this.run(() => this.groupPolicies.list(tier));
  }

  groupPolicyHistory(tier: Tier, department: string): Promise<GroupPolicyHistoryEntry[]> {
    return this.run(() => this.groupPolicies.history(tier, department));
  }

  devicePolicyContext(deviceId: string): Promise<DevicePolicyContext | null> {
    return this.run(() => this.groupPolicies.context(deviceId));
  }

  deliveredPolicyVersion(deviceId: string, basis: string, natural: number): Promise<number | null> {
    return this.run(() => this.groupPolicies.deliveredVersion(deviceId, basis, natural));
  }

  setDeviceTier(deviceId: string, tier: Tier): Promise<{ previous: Tier } | null> {
    return this.run(() => this.groupPolicies.setTier(deviceId, tier));
  }

  recordTierMismatch(deviceId: string, stored: Tier, reported: Tier, seq: number, at: string): Promise<boolean> {
    return this.run(() => this.groupPolicies.recordMismatch(deviceId, stored, reported, seq, at));
  }

  clearTierMismatch(deviceId: string): Promise<void> {
    return this.run(() => this.groupPolicies.clearMismatch(deviceId));
  }

  violationAcks(deviceId: string, limit: number): Promise<StoredViolationAck[] | null> {
    return this.run(() => this.violations.list(deviceId, limit));
  }

  /** Runs a synchronous database call behind the asynchronous interface; a throw becomes a rejection. */
  private run<T>(work: () => T): Promise<T> {
    return new Promise((resolve) => {
      if (this.closed) throw new Error('SqliteStore used after close()');
      resolve(work());
    });
  }
}

const VIOLATIONS: ReadonlySet<string> = new Set(VIOLATION_EVENT_TYPES);
const TAMPER_TYPES: ReadonlySet<string> = new Set(TAMPER_EVENT_TYPES);

function toHead(row: DeviceHeadRow): ChainHead {
  return { seq: row.ack_seq, hash: row.ack_hash };
}

function toCommand(row: CommandRow): StoredCommand {
  return {
    id: row.id,
    deviceId: row.device_id,
    type: row.type,
    params: row.params_json === null ? null : (JSON.parse(row.params_json) as Record<string, unknown>),
    createdAt: row.created_at,
    createdBy: row.created_by,
    state: commandState(row),
    deliveredAt: row.delivered_at,
    ackedAt: row.acked_at,
    ok: row.ok === null ? null : row.ok === 1,
    detail: row.detail,
  };
}

function commandState(row: CommandRow): CommandState {
  if (row.cancelled_at !== null) return 'cancelled';
  if (row.acked_at !== null) return row.ok === 1 ? 'succeeded' : 'failed';
  return row.delivered_at === null ? 'queued' : 'delivered';
}

function toPolicyHead(row: PolicyHeadRow): PolicyHead {
  return { tier: TierSchema.parse(row.tier), version: row.version, keyId: row.key_id, createdAt: row.created_at, createdBy: row.created_by };
}

function isFileSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && 'syscall' in error;
}
