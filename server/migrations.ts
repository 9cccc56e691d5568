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
