import fs from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, SchemaTooNewError, migrate, type Migration } from '../../server/migrations.js';
import { DATABASE_FILE, SqliteStore, StoreOpenError } from '../../server/sqlite-store.js';
import { makeTempDir } from './helpers.js';

describe('schema migrations', () => {
  let dir: string;
  let file: string;
  const open: Database.Database[] = [];
  const connect = (): Database.Database => {
    const db = new Database(file);
    open.push(db);
    return db;
  };
  const versions = (db: Database.Database) =>
    db.prepare<[], { version: number; applied_at: string }>('SELECT version, applied_at FROM schema_migrations ORDER BY version').all();

  beforeEach(async () => {
    dir = await makeTempDir();
    file = path.join(dir, DATABASE_FILE);
  });
  afterEach(async () => {
    for (const db of open.splice(0)) db.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('are numbered 1, 2, 3, … without holes', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_m, i) => i + 1));
  });

  it('bring a new database to the latest version', () => {
    const report = migrate(connect());
    expect(report).toEqual({ from: 0, to: MIGRATIONS.length, applied: MIGRATIONS.map((m) => m.version) });
  });

  it('migrate a database at version 1 forward, keeping its data', async () => {
    const old = connect();
    migrate(old, MIGRATIONS.slice(0, 1));
    old.prepare(
      `INSERT INTO devices (id, hostname, os, arch, hardware_id, agent_version, credential_hash, enrolled_at, ack_hash)
       VALUES ('dev_${'a'.repeat(32)}', 'pc', 'linux', 'x64', 'hw', '0.1.0', '${'0'.repeat(64)}', '2026-01-01T00:00:00.000Z', '${'0'.repeat(64)}')`,
    ).run();
    old.close();

    const store = SqliteStore.open(dir, { create: false });
    try {
      expect(await store.listDevices()).toMatchObject([{ deviceId: `dev_${'a'.repeat(32)}`, hostname: 'pc' }]);
    } finally {
      await store.close();
    }
    expect(versions(connect()).map((v) => v.version)).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it('apply nothing and change nothing when the database is already up to date', async () => {
    (await SqliteStore.open(dir, { create: true }).close());
    const before = versions(connect());
    (await SqliteStore.open(dir, { create: false }).close());
    const db = connect();
    expect(versions(db)).toEqual(before);
    expect(migrate(db, MIGRATIONS, () => new Date('2030-01-01T00:00:00.000Z'))).toEqual({
      from: MIGRATIONS.length,
      to: MIGRATIONS.length,
      applied: [],
    });
  });

  it('leave the database at the previous version when a migration fails part-way', () => {
    const db = connect();
    const broken: Migration = {
      version: MIGRATIONS.length + 1,
      name: 'fails after creating a table',
      sql: 'CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);',
    };
    expect(() => migrate(db, [...MIGRATIONS, broken])).toThrow(/no_such_table/);
    expect(versions(db).at(-1)?.version).toBe(MIGRATIONS.length);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half_done'").get()).toBeUndefined();
  });

  it('refuse a database written by a newer server', () => {
    const db = connect();
    migrate(db);
    db.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (99, '2030-01-01T00:00:00.000Z')").run();
    expect(() => migrate(db)).toThrow(SchemaTooNewError);
    expect(() => SqliteStore.open(dir, { create: false })).toThrow(/schema version 99 is newer/);
  });

  it('refuse migration lists with holes', () => {
    expect(() => migrate(connect(), [{ ...MIGRATIONS[0]!, version: 2 }])).toThrow(/expected 1/);
  });
});

describe('SqliteStore.open', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('puts the database in WAL mode, private to its owner', async () => {
    await SqliteStore.open(dir, { create: true }).close();
    const db = new Database(path.join(dir, DATABASE_FILE), { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
    expect((await fs.stat(path.join(dir, DATABASE_FILE))).mode & 0o777).toBe(0o600);
  });

  it('does not create a database when asked only to open one', async () => {
    expect(() => SqliteStore.open(dir, { create: false })).toThrow(StoreOpenError);
    await expect(fs.readdir(dir)).resolves.toEqual([]);
  });

  it('refuses a file that is not a database with a clear message', async () => {
    await fs.writeFile(path.join(dir, DATABASE_FILE), 'this is not sqlite, it is a text file that is long enough to have a header');
    expect(() => SqliteStore.open(dir, { create: false })).toThrow(/cannot open database .*not a database/);
  });
});
