import type Database from 'better-sqlite3';

/**
 * Versioned schema migrations for the SQLite store. The list is ordered and append-only: a
 * released migration is never edited (a database in the field has already run it); a change is a
 * new migration with the next version.
 *
 * `schema_migrations(version, applied_at)` records what ran. Each migration runs in its own
 * transaction together with its row there, so a failure leaves the database at the previous
 * version, never half-migrated.
 */
export interface Migration {
  /** 1, 2, 3, … without holes. */
  readonly version: number;
  /** What it does, for people reading `schema_migrations`. */
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'devices, enrolment tokens, events, tamper records',
    // STRICT tables: SQLite refuses a value of the wrong type instead of storing it anyway.
    sql: `
      CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        hostname TEXT NOT NULL,
        os TEXT NOT NULL,
        arch TEXT NOT NULL,
        hardware_id TEXT NOT NULL,
        agent_version TEXT NOT NULL,
        credential_hash TEXT NOT NULL,
        enrolled_at TEXT NOT NULL,
        last_seen_at TEXT,
        status_json TEXT,
        ack_seq INTEGER NOT NULL DEFAULT 0,
        ack_hash TEXT NOT NULL
      ) STRICT;

      CREATE TABLE enrollment_tokens (
        token_hash TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT,
        used_by_device TEXT REFERENCES devices(id)
      ) STRICT;

      -- Clustered by (device, seq): a device's chain is one contiguous range of the b-tree.
      CREATE TABLE events (
        device_id TEXT NOT NULL REFERENCES devices(id),
        seq INTEGER NOT NULL,
        time TEXT NOT NULL,
        tz TEXT NOT NULL,
        type TEXT NOT NULL,
        data_json TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (device_id, seq)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE tamper_events (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES devices(id),
        kind TEXT NOT NULL,
        seq INTEGER NOT NULL,
        detail_json TEXT NOT NULL,
        detected_at TEXT NOT NULL,
        UNIQUE (device_id, kind, seq)
      ) STRICT;
    `,
  },
  {
    version: 2,
    name: 'indexes for the dashboard: devices by last contact, enrolment tokens by expiry',
    sql: `
      CREATE INDEX devices_by_last_seen ON devices (last_seen_at);
      CREATE INDEX enrollment_tokens_by_expiry ON enrollment_tokens (expires_at);
    `,
  },
  {
    version: 3,
    name: 'signed policies per tier (with their history), the tier each device reports',
    // UNIQUE (tier, version) is also the index behind "newest version of a tier".
    sql: `
      CREATE TABLE policies (
        id INTEGER PRIMARY KEY,
        tier TEXT NOT NULL CHECK (tier IN ('mynumber', 'lgwan', 'internet')),
        version INTEGER NOT NULL CHECK (version >= 2),
        payload TEXT NOT NULL,
        signature TEXT NOT NULL,
        key_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        UNIQUE (tier, version)
      ) STRICT;

      -- NULL until the device's first heartbeat: treated as 'mynumber', the fail-closed tier.
      ALTER TABLE devices ADD COLUMN tier TEXT CHECK (tier IN ('mynumber', 'lgwan', 'internet'));
    `,
  },
  {
    version: 4,
    name: 'commands, administrator recovery keys (sealed), roaming user credentials (sealed), admin audit trail',
    // Secrets are stored only sealed (AES-256-GCM, server/data-key.ts): recovery_keys.sealed_key,
    // user_credentials.sealed_bundle. commands.params_json never holds one.
    sql: `
      -- The 6-digit device tag of recovery challenges; NULL for devices enrolled before this version
      -- until the server gives them a key.
      ALTER TABLE devices ADD COLUMN recovery_tag TEXT;
      CREATE INDEX devices_by_recovery_tag ON devices (recovery_tag) WHERE recovery_tag IS NOT NULL;
      CREATE INDEX devices_by_tier ON devices (tier);

      -- seq: creation order (delivery order); id: what the agent acknowledges.
      CREATE TABLE commands (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        device_id TEXT NOT NULL REFERENCES devices(id),
        type TEXT NOT NULL,
        params_json TEXT,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        delivered_at TEXT,
        acked_at TEXT,
        ok INTEGER CHECK (ok IN (0, 1)),
        detail TEXT,
        cancelled_at TEXT
      ) STRICT;
      CREATE INDEX commands_by_device ON commands (device_id, seq);
      CREATE INDEX commands_open_by_device ON commands (device_id, seq) WHERE acked_at IS NULL AND cancelled_at IS NULL;

      -- At most one current and one pending key per device; a pending key names its command.
      CREATE TABLE recovery_keys (
        device_id TEXT NOT NULL REFERENCES devices(id),
        slot TEXT NOT NULL CHECK (slot IN ('current', 'pending')),
        epoch INTEGER NOT NULL CHECK (epoch >= 0),
        sealed_key TEXT NOT NULL,
        command_id TEXT REFERENCES commands(id),
        created_at TEXT NOT NULL,
        PRIMARY KEY (device_id, slot),
        CHECK ((slot = 'pending') = (command_id IS NOT NULL))
      ) STRICT, WITHOUT ROWID;

      -- No foreign key on device_id: the trail outlives what it names.
      CREATE TABLE admin_actions (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        device_id TEXT,
        user_name TEXT,
        detail_json TEXT NOT NULL
      ) STRICT;

      CREATE TABLE user_credentials (
        tier TEXT NOT NULL CHECK (tier IN ('mynumber', 'lgwan', 'internet')),
        user_name TEXT NOT NULL,
        sealed_bundle TEXT NOT NULL,
        enrolled_at TEXT NOT NULL,
        device_id TEXT NOT NULL REFERENCES devices(id),
        PRIMARY KEY (tier, user_name)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX user_credentials_by_device ON user_credentials (device_id);

      -- Who used which terminal (uploaded or fetched a bundle there): recovery lists them.
      CREATE TABLE device_users (
        device_id TEXT NOT NULL REFERENCES devices(id),
        user_name TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('enrolled', 'fetched')),
        first_seen_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        PRIMARY KEY (device_id, user_name)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX device_users_by_user ON device_users (user_name);
    `,
  },
  {
    version: 5,
    name: 'administrator accounts, sessions, login throttling; terminal list counters and keyset indexes',
    // Passwords: scrypt JSON (parameters kept). TOTP secrets: sealed (AES-256-GCM, data key).
    // Sessions: only the SHA-256 of the cookie's random id. Counters: see VIOLATION_EVENT_TYPES and
    // TAMPER_EVENT_TYPES in sqlite-store.ts (the same lists as the backfill below).
    sql: `
      CREATE TABLE admin_accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'auditor')),
        password_json TEXT NOT NULL,
        must_change_password INTEGER NOT NULL CHECK (must_change_password IN (0, 1)),
        sealed_totp TEXT NOT NULL,
        totp_last_step INTEGER,
        created_at TEXT NOT NULL,
        last_login_at TEXT
      ) STRICT;

      CREATE TABLE admin_sessions (
        id_hash TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES admin_accounts(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        ip TEXT NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX admin_sessions_by_account ON admin_sessions (account_id);
      CREATE INDEX admin_sessions_by_last_seen ON admin_sessions (last_seen_at);

      -- subject: 'account:<name, lower case>' or 'ip:<address>'.
      CREATE TABLE login_throttle (
        subject TEXT PRIMARY KEY,
        failures INTEGER NOT NULL CHECK (failures >= 0),
        last_failure_at TEXT NOT NULL,
        blocked_until TEXT
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX login_throttle_by_last_failure ON login_throttle (last_failure_at);

      ALTER TABLE devices ADD COLUMN violation_count INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE devices ADD COLUMN tamper_flag_count INTEGER NOT NULL DEFAULT 0;
      UPDATE devices SET
        violation_count = (SELECT COUNT(*) FROM events e
                           WHERE e.device_id = devices.id AND e.type IN ('device.blocked', 'export.blocked', 'network.violation')),
        tamper_flag_count = (SELECT COUNT(*) FROM tamper_events t WHERE t.device_id = devices.id)
                          + (SELECT COUNT(*) FROM events e WHERE e.device_id = devices.id AND e.type = 'tamper.detected');

      -- The terminal list pages by keyset (sort key, id) in these indexes' order: a page reads its
      -- rows and stops, whatever the page number. The expressions are the list query's, verbatim.
      CREATE INDEX devices_list_by_hostname ON devices (hostname, id);
      CREATE INDEX devices_list_by_last_seen ON devices (coalesce(last_seen_at, ''), id);
      CREATE INDEX devices_list_by_tier_hostname ON devices (coalesce(tier, 'mynumber'), hostname, id);
      CREATE INDEX devices_list_by_tier_last_seen ON devices (coalesce(tier, 'mynumber'), coalesce(last_seen_at, ''), id);
    `,
  },
  {
    version: 6,
    name: 'device requests (申請/承認) and per-device policy revisions',
    // An approved request becomes an exception in that terminal's next signed policy; the device's
    // policy_rev counts approvals and revocations so its policy version keeps increasing.
    sql: `
      CREATE TABLE device_requests (
        id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES devices(id),
        user_name TEXT NOT NULL,
        device_json TEXT NOT NULL,
        rule TEXT NOT NULL,
        purpose TEXT NOT NULL,
        window_from TEXT NOT NULL,
        window_until TEXT NOT NULL,
        access TEXT NOT NULL CHECK (access IN ('read-only', 'read-write')),
        state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'revoked')),
        submitted_at TEXT NOT NULL,
        received_at TEXT NOT NULL,
        decided_at TEXT,
        decided_by TEXT,
        approved_until TEXT,
        approved_access TEXT CHECK (approved_access IS NULL OR approved_access IN ('read-only', 'read-write')),
        reason TEXT
      ) STRICT;
      -- The dashboard lists by state, newest first; a terminal's own requests by device.
      CREATE INDEX device_requests_by_state ON device_requests (state, received_at, id);
      CREATE INDEX device_requests_by_device ON device_requests (device_id, received_at, id);
      ALTER TABLE devices ADD COLUMN policy_rev INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE devices ADD COLUMN policy_rev_at TEXT;
    `,
  },
  {
    version: 7,
    name: 'self-inspection runs (自己点検) and the department of each terminal',
    // A selfcheck_runs row is a projection of one stored selfcheck.result event whose data validated
    // (SelfcheckRunSchema), written in the same transaction as the event (server/sqlite-selfcheck.ts).
    // finished_at is the run's finishedAt normalised to UTC ISO with milliseconds, so it sorts as text.
    sql: `
      ALTER TABLE devices ADD COLUMN department TEXT;
      CREATE INDEX devices_by_department ON devices (department, id) WHERE department IS NOT NULL;

      CREATE TABLE selfcheck_runs (
        device_id TEXT NOT NULL REFERENCES devices(id),
        seq INTEGER NOT NULL,
        run_id TEXT NOT NULL,
        trigger TEXT NOT NULL CHECK (trigger IN ('start', 'daily', 'command')),
        command_id TEXT,
        finished_at TEXT NOT NULL,
        overall TEXT NOT NULL CHECK (overall IN ('pass', 'fail', 'unknown')),
        data_json TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (device_id, seq)
      ) STRICT, WITHOUT ROWID;
      -- A terminal's runs of a fiscal year are one range of this index.
      CREATE INDEX selfcheck_runs_by_device_finished ON selfcheck_runs (device_id, finished_at, seq);
    `,
  },
  {
    version: 8,
    name: 'acknowledged violations: per-terminal acknowledged count and seq, and the acknowledgements',
    // Open violations = violation_count (kept at ingest since migration 5) − violations_acked_count:
    // ingest writes nothing new, an acknowledgement moves the two columns (server/sqlite-violations.ts).
    sql: `
      ALTER TABLE devices ADD COLUMN violations_acked_count INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE devices ADD COLUMN violations_acked_seq INTEGER NOT NULL DEFAULT 0;

      -- One row per acknowledgement: the violations with seq in (from_seq, up_to_seq], who, when, why.
      CREATE TABLE violation_acks (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES devices(id),
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        comment TEXT NOT NULL,
        from_seq INTEGER NOT NULL CHECK (from_seq >= 0),
        up_to_seq INTEGER NOT NULL CHECK (up_to_seq > from_seq),
        violations INTEGER NOT NULL CHECK (violations >= 1)
      ) STRICT;
      CREATE INDEX violation_acks_by_device ON violation_acks (device_id, id);
    `,
  },
  {
    version: 9,
    name: 'enrolment tokens with a use limit, an id, revocation; the token id each device enrolled with',
    // Multi-use tokens (one installer config for every PC of a rollout): max_uses and uses_left,
    // spent by a conditional decrement (server/sqlite-enrollment.ts). The table is rebuilt: SQLite
    // cannot add a NOT NULL UNIQUE column. Tokens from before keep their state (one use; spent when
    // used_at was set) and get a random id; devices get the id of the token that enrolled them
    // (from used_by_device, which goes: a multi-use token enrols many). No foreign key from devices,
    // so the record outlives what it names (like admin_actions).
    sql: `
      CREATE TABLE enrollment_tokens_v9 (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        max_uses INTEGER NOT NULL CHECK (max_uses >= 1),
        uses_left INTEGER NOT NULL CHECK (uses_left >= 0 AND uses_left <= max_uses),
        last_used_at TEXT,
        revoked_at TEXT
      ) STRICT;
      INSERT INTO enrollment_tokens_v9 (id, token_hash, created_at, created_by, expires_at, max_uses, uses_left, last_used_at)
        SELECT 'enr_' || lower(hex(randomblob(12))), token_hash, created_at, 'cli', expires_at, 1,
               CASE WHEN used_at IS NULL THEN 1 ELSE 0 END, used_at
        FROM enrollment_tokens;

      ALTER TABLE devices ADD COLUMN enrollment_token_id TEXT;
      UPDATE devices SET enrollment_token_id =
        (SELECT n.id FROM enrollment_tokens o JOIN enrollment_tokens_v9 n ON n.token_hash = o.token_hash
         WHERE o.used_by_device = devices.id);

      DROP TABLE enrollment_tokens;
      ALTER TABLE enrollment_tokens_v9 RENAME TO enrollment_tokens;
      CREATE INDEX enrollment_tokens_by_expiry ON enrollment_tokens (expires_at);
      CREATE INDEX devices_by_enrollment_token ON devices (enrollment_token_id) WHERE enrollment_token_id IS NOT NULL;
    `,
  },
  {
    version: 10,
    name: 'policies per group of terminals (tier, department); the version delivered to each device; the tier an administrator assigns',
    // group_policies: every version of a (tier, department) document, and a row with a NULL payload
    // where the group policy was deleted. Versions share the tier's sequence with policies (each
    // insert checks both tables, server/sqlite-group-policies.ts), so (tier, version) names one
    // document. devices.policy_basis/policy_version: the etag of the document last composed for the
    // device and the version it was given, so a device's version never goes backwards
    // (server/requests.ts). devices.tier is no longer the last heartbeat's: set by the first one
    // (while NULL) or by an administrator; tier_mismatch is the differing tier last reported and
    // recorded as tamper (NULL: the reports match).
    sql: `
      CREATE TABLE group_policies (
        id INTEGER PRIMARY KEY,
        tier TEXT NOT NULL,
        department TEXT NOT NULL,
        version INTEGER NOT NULL,
        payload TEXT,
        signature TEXT,
        key_id TEXT,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        UNIQUE (tier, version),
        CHECK ((payload IS NULL) = (signature IS NULL) AND (payload IS NULL) = (key_id IS NULL))
      ) STRICT;
      CREATE INDEX group_policies_by_group ON group_policies (tier, department, version);

      ALTER TABLE devices ADD COLUMN policy_basis TEXT;
      ALTER TABLE devices ADD COLUMN policy_version INTEGER;
      ALTER TABLE devices ADD COLUMN tier_mismatch TEXT;
    `,
  },
];

/** What `migrate` did. */
export interface MigrationReport {
  readonly from: number;
  readonly to: number;
  readonly applied: readonly number[];
}

/** Thrown when the database was written by a newer server than this one. */
export class SchemaTooNewError extends Error {
  constructor(
    readonly found: number,
    readonly supported: number,
  ) {
    super(`database schema version ${found} is newer than this server supports (${supported}); upgrade the server`);
    this.name = 'SchemaTooNewError';
  }
}

/**
 * Brings `db` up to the last of `migrations`. Re-running on an up-to-date database changes
 * nothing. Refuses (SchemaTooNewError) a database from a newer server rather than running against
 * a schema it does not know.
 *
 * @param migrations ordered by version from 1 without holes (checked); tests pass a prefix to build an old database.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS, now: () => Date = () => new Date()): MigrationReport {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) throw new Error(`migration #${index} has version ${migration.version}, expected ${index + 1}`);
  });
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL) STRICT');
  const currentVersion = (): number =>
    db.prepare<[], { version: number | null }>('SELECT MAX(version) AS version FROM schema_migrations').get()?.version ?? 0;

  const from = currentVersion();
  const latest = migrations.length;
  if (from > latest) throw new SchemaTooNewError(from, latest);

  const record = db.prepare<[number, string]>('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)');
  const applied: number[] = [];
  for (const migration of migrations.slice(from)) {
    // IMMEDIATE: take the write lock first, then re-check, so two processes opening the same
    // database at once (server and CLI) cannot both apply a migration.
    const ran = db
      .transaction(() => {
        if (currentVersion() >= migration.version) return false;
        db.exec(migration.sql);
        record.run(migration.version, now().toISOString());
        return true;
      })
      .immediate();
    if (ran) applied.push(migration.version);
  }
  return { from, to: currentVersion(), applied };
}
