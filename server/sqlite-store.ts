import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { AgentStatus, DeviceSummary } from '../shared/api.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { GENESIS_HASH, type JournalEntry } from '../shared/journal.js';
import { TierSchema, type Tier } from '../shared/policy.js';
import { planBatch } from './chain.js';
import { sha256Hex } from './crypto.js';
import { migrate, SchemaTooNewError } from './migrations.js';
import {
  DEFAULT_DEVICE_TIER,
  MAX_TAMPER_RECORDS_PER_DEVICE,
  isTamperKind,
  type AppendOutcome,
  type ChainHead,
  type ChainRejection,
  type EnrollmentTokenRecord,
  type NewDevice,
  type PolicyHead,
  type Store,
  type StoredPolicy,
  type TamperRecord,
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

  private constructor(private readonly db: Database.Database) {
    this.statements = {
      addToken: db.prepare<[string, string, string]>(
        'INSERT INTO enrollment_tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)',
      ),
      consumeToken: db.prepare<{ tokenHash: string; now: string }>(
        'UPDATE enrollment_tokens SET used_at = @now WHERE token_hash = @tokenHash AND used_at IS NULL AND expires_at > @now',
      ),
      markTokenUser: db.prepare<[string, string]>('UPDATE enrollment_tokens SET used_by_device = ? WHERE token_hash = ?'),
      insertDevice: db.prepare<NewDevice & { genesis: string }>(
        `INSERT INTO devices (id, hostname, os, arch, hardware_id, agent_version, credential_hash, enrolled_at, ack_seq, ack_hash)
         VALUES (@id, @hostname, @os, @arch, @hardwareId, @agentVersion, @credentialHash, @enrolledAt, 0, @genesis)`,
      ),
      credentialHash: db.prepare<[string], { credential_hash: string }>('SELECT credential_hash FROM devices WHERE id = ?'),
      heartbeat: db.prepare<[string, string, string, Tier, string], DeviceHeadRow>(
        `UPDATE devices SET status_json = ?, last_seen_at = ?, agent_version = ?, tier = ? WHERE id = ?
         RETURNING ack_seq, ack_hash`,
      ),
      deviceTier: db.prepare<[string], { tier: string | null }>('SELECT tier FROM devices WHERE id = ?'),
      // Inserts only above every stored version of the tier: versions strictly increase.
      addPolicy: db.prepare<StoredPolicy>(
        `INSERT INTO policies (tier, version, payload, signature, key_id, created_at, created_by)
         SELECT @tier, @version, @payload, @signature, @keyId, @createdAt, @createdBy
         WHERE NOT EXISTS (SELECT 1 FROM policies WHERE tier = @tier AND version >= @version)`,
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
      // Counts are exact (not ack_seq) so a row deleted behind the server's back shows. Paging and
      // cached counters come with the dashboard's 100k-terminal list.
      listDevices: db.prepare<[], DeviceSummaryRow>(
        `SELECT d.id, d.hostname, d.os, d.agent_version, d.enrolled_at, d.last_seen_at,
                json_extract(d.status_json, '$.enforcement.state') AS enforcement,
                json_extract(d.status_json, '$.lockState') AS lock_state,
                d.ack_seq,
                (SELECT COUNT(*) FROM events e WHERE e.device_id = d.id) AS event_count,
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
    return this.run(() => {
      this.statements.addToken.run(token.tokenHash, token.createdAt, token.expiresAt);
    });
  }

  enrollDevice(tokenHash: string, device: NewDevice): Promise<boolean> {
    return this.run(() =>
      this.db
        .transaction(() => {
          // Consume first: the conditional UPDATE is the atomic check-and-set, so a token can be
          // spent once however many requests race for it.
          const consumed = this.statements.consumeToken.run({ tokenHash, now: device.enrolledAt });
          if (consumed.changes !== 1) return false;
          this.statements.insertDevice.run({ ...device, genesis: GENESIS_HASH });
          this.statements.markTokenUser.run(device.id, tokenHash);
          return true;
        })
        .immediate(),
    );
  }

  deviceCredentialHash(deviceId: string): Promise<string | null> {
    return this.run(() => this.statements.credentialHash.get(deviceId)?.credential_hash ?? null);
  }

  recordHeartbeat(deviceId: string, status: AgentStatus, seenAt: string): Promise<ChainHead | null> {
    return this.run(() => {
      const tier = status.tier ?? DEFAULT_DEVICE_TIER;
      const row = this.statements.heartbeat.get(JSON.stringify(status), seenAt, status.agentVersion, tier, deviceId);
      return row ? toHead(row) : null;
    });
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
          const accepted = plan.accepted.length;
          if (!plan.rejection) return { status: 'accepted', head: plan.head, accepted };
          this.recordTamper(deviceId, plan.rejection, receivedAt);
          return { status: 'rejected', head: plan.head, accepted, rejection: plan.rejection };
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
        if (!isTamperKind(row.kind)) throw new Error(`tamper record with unknown kind ${JSON.stringify(row.kind)}`);
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
      const row = this.statements.policyHead.get(tier);
      return row ? toPolicyHead(row) : null;
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

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }

  private recordTamper(deviceId: string, rejection: ChainRejection, detectedAt: string): void {
    const held = this.statements.countTamper.get(deviceId)?.n ?? 0;
    if (held >= MAX_TAMPER_RECORDS_PER_DEVICE) return;
    this.statements.insertTamper.run(deviceId, rejection.kind, rejection.seq, JSON.stringify(rejection.detail), detectedAt);
  }

  /** Runs a synchronous database call behind the asynchronous interface; a throw becomes a rejection. */
  private run<T>(work: () => T): Promise<T> {
    return new Promise((resolve) => {
      if (this.closed) throw new Error('SqliteStore used after close()');
      resolve(work());
    });
  }
}

function toHead(row: DeviceHeadRow): ChainHead {
  return { seq: row.ack_seq, hash: row.ack_hash };
}

function toPolicyHead(row: PolicyHeadRow): PolicyHead {
  return { tier: TierSchema.parse(row.tier), version: row.version, keyId: row.key_id, createdAt: row.created_at, createdBy: row.created_by };
}

function isFileSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && 'syscall' in error;
}
