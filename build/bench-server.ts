/**
 * The central server at municipal scale (issue 5, "Benchmark"): 100,000 terminals and 10 million
 * journal events in a real SQLite file, then
 *
 *   terminal list page (keyset, 100 per page) p50/p95/p99  vs  the same 101 rows read by a primary-key range scan
 *   heartbeats/s through the real app over HTTP              vs  raw SQLite UPDATE commits/s, and an empty fastify route
 *
 * each next to its ceiling measured in the same run. Prints the numbers; asserts nothing.
 *
 *   npm run build && node dist/build/bench-server.js [--dir DIR] [--keep] [--terminals N] [--events N] [--only list|heartbeats]
 *
 * The machine must be otherwise idle: on 2 cores a concurrent test run halves every number.
 *
 * `--dir DIR --keep` leaves the seeded database there; a later run with the same `--dir` and sizes
 * reuses it (seeding takes minutes). Seeding stops at `--seed-budget-seconds` (default 600) and
 * then says so and extrapolates: the queries run on what was seeded.
 *
 * Seeding writes straight into the schema the server migrates to (server/migrations.ts), with
 * bulk inserts (prepared multi-row INSERTs, one transaction per 100,000 rows, journal off) in
 * (device, seq) order; journal hashes are random hex of the right shape (the chain is not
 * verified here: `npm run bench` measures verification and ingest). Device credentials are real
 * (`<id>.<secret>`, SHA-256 stored), derived from the terminal's index so the load clients can
 * recompute them.
 */
import { fork } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import type { AgentStatus } from '../shared/api.js';
import { createServer } from '../server/app.js';
import { MAX_COMMANDS_PER_HEARTBEAT, commandsForHeartbeat } from '../server/commands.js';
import { authenticateDevice } from '../server/credentials.js';
import { loadOrCreateDataKey } from '../server/data-key.js';
import { heartbeatPolicyEtag } from '../server/requests.js';
import { SqliteOpsQueries } from '../server/ops/ops-db.js';
import { terminalListSql } from '../server/sqlite-admin.js';
import { auditCsvChunks } from '../server/ops/audit-export.js';
import { DATABASE_FILE, SqliteStore } from '../server/sqlite-store.js';
import type { TerminalQuery } from '../server/store.js';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    /** `list` or `heartbeats`: run one part only (after seeding or reusing). */
    only: { type: 'string' },
    terminals: { type: 'string', default: '100000' },
    events: { type: 'string', default: '10000000' },
    'seed-budget-seconds': { type: 'string', default: '600' },
    pages: { type: 'string', default: '400' },
    'duration-seconds': { type: 'string', default: '15' },
    clients: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '64' },
    // Internal: this script forked as a load client.
    client: { type: 'boolean', default: false },
    url: { type: 'string' },
    mode: { type: 'string' },
    'warmup-ms': { type: 'string' },
    'duration-ms': { type: 'string' },
    offset: { type: 'string' },
  },
  strict: true,
});

const TERMINALS = Number(args.terminals);
const EVENTS = Number(args.events);
type Tier = 'mynumber' | 'lgwan' | 'internet';
const DEPARTMENTS = ['soumu', 'kikaku', 'zaimu', 'shimin', 'fukushi', 'kenko', 'kankyo', 'toshi', 'kyoiku', 'gikai', 'shobo', 'suido'];
const NOW = Date.now();

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ms = (n: number): string => `${fmt(n, n < 10 ? 2 : 1)} ms`;

// --- the terminals, derived from their index (the load clients recompute credentials) -------------

function deviceIdOf(index: number): string {
  return `dev_${crypto.createHash('sha256').update(`bench-device:${index}`).digest('hex').slice(0, 32)}`;
}
function credentialOf(index: number): string {
  return `${deviceIdOf(index)}.${crypto.createHash('sha256').update(`bench-secret:${index}`).digest('base64url')}`;
}
function tierOf(index: number): Tier {
  const r = index % 10;
  return r < 3 ? 'mynumber' : r < 8 ? 'lgwan' : 'internet';
}
function hostnameOf(index: number): string {
  return `${DEPARTMENTS[index % DEPARTMENTS.length]}-pc-${String(index).padStart(6, '0')}`;
}
function statusJson(index: number, length: number, headHash: string): string {
  return JSON.stringify({
    agentVersion: '0.1.0',
    enforcement: { state: index % 50 === 0 ? 'unenforced' : 'enforced' },
    lockState: index % 3 === 0 ? 'locked' : 'unlocked',
    tier: tierOf(index),
    policyVersion: 2 + (index % 3),
    journal: { length, headHash },
  });
}

/** A small deterministic PRNG (mulberry32): the same database for the same sizes. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EVENT_TEMPLATES: readonly { type: string; data: string; violation: boolean }[] = [
  { type: 'device.attached', data: '{"device":{"connectType":"hotplug","hash":"h","id":"0930:6545","interfaces":["08:06:50"],"manufacturer":"TOSHIBA","name":"TransMemory","serial":"A1B2C3D4E5"},"key":"1-2","via":"event"}', violation: false },
  { type: 'device.blocked', data: '{"audit":false,"decision":"block","device":{"id":"0930:6545","manufacturer":"TOSHIBA","name":"TransMemory","serial":"A1B2C3D4E5"},"enforced":{"ok":true,"target":"block"},"flags":[],"key":"1-2","rule":{"exceptionId":null,"kind":"implicit","label":null,"line":null,"text":null},"via":"event"}', violation: true },
  { type: 'device.allowed', data: '{"audit":false,"decision":"allow","device":{"id":"046d:c52b","manufacturer":"Logitech","name":"USB Receiver","serial":""},"enforced":{"ok":true,"target":"allow"},"flags":[],"key":"1-3","rule":{"exceptionId":null,"kind":"rule","label":null,"line":1,"text":"allow with-interface equals { 03:*:* }"},"via":"reconcile"}', violation: false },
  { type: 'lock.locked', data: '{"from":"unlocked","to":"locked","trigger":"idle","user":"tanaka"}', violation: false },
  { type: 'lock.unlocked', data: '{"from":"second-factor","to":"unlocked","trigger":"totp","user":"tanaka"}', violation: false },
  { type: 'auth.verified', data: '{"service":"gdm-password","user":"tanaka","via":"pam"}', violation: false },
  { type: 'auth.failed', data: '{"code":"wrong-pin","factor":"pin","remaining":4,"user":"tanaka","via":"lock-screen"}', violation: false },
  { type: 'network.violation', data: '{"local":"10.20.3.4","remote":"203.0.113.9:443","rule":"allowedCidrs"}', violation: true },
  { type: 'agent.started', data: '{"enforcement":{"state":"enforced"},"pid":1234,"platform":"linux","tier":"lgwan","version":"0.1.0"}', violation: false },
];
const TEMPLATE_WEIGHTS = [10, 4, 10, 20, 20, 20, 4, 1, 2];
const TEMPLATE_PICK: number[] = TEMPLATE_WEIGHTS.flatMap((weight, index) => new Array<number>(weight).fill(index));

// --- seeding -----------------------------------------------------------------------------------

interface SeedReport {
  readonly terminals: number;
  readonly events: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
  readonly complete: boolean;
  readonly bytes: number;
  readonly reused: boolean;
}

async function seed(dataDir: string): Promise<SeedReport> {
  const file = path.join(dataDir, DATABASE_FILE);
  const marker = path.join(dataDir, 'bench-seed.json');
  if (fs.existsSync(marker)) {
    const previous = JSON.parse(fs.readFileSync(marker, 'utf8')) as SeedReport & { target: { terminals: number; events: number } };
    if (previous.target.terminals === TERMINALS && previous.target.events === EVENTS) {
      console.log(`reusing the seeded database in ${dataDir} (${fmt(previous.terminals)} terminals, ${fmt(previous.events)} events)`);
      return { ...previous, reused: true };
    }
    throw new Error(`${dataDir} holds a database seeded with other sizes: use another --dir`);
  }
  // The real server creates the data directory, keys and the migrated schema.
  const server = await createServer({ dataDir });
  await server.close();

  const budgetMs = Number(args['seed-budget-seconds']) * 1000;
  const db = new Database(file);
  // Bulk load: no rollback journal, no fsync, a large page cache. The server's own settings (WAL,
  // synchronous=FULL) are restored below and used for every measurement.
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -524288');
  db.pragma('foreign_keys = OFF');
  const deviceColumns = new Set(db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('devices')").all().map((row) => row.name));

  console.log(`seeding ${fmt(TERMINALS)} terminals and ${fmt(EVENTS)} events into ${file} (budget ${fmt(budgetMs / 1000)} s) …`);
  const started = performance.now();
  const random = prng(42);
  // Events per terminal: uneven (a few busy terminals, many quiet ones), summing to EVENTS.
  const weights = Array.from({ length: TERMINALS }, () => 0.2 + random() * random() * 4);
  const scale = EVENTS / weights.reduce((a, b) => a + b, 0);
  const counts = weights.map((weight) => Math.floor(weight * scale));
  let shortfall = EVENTS - counts.reduce((a, b) => a + b, 0);
  for (let i = 0; shortfall > 0; i = (i + 1) % TERMINALS, shortfall -= 1) counts[i] = (counts[i] ?? 0) + 1;

  // Events in (device id, seq) order: the b-tree grows at its end.
  const order = Array.from({ length: TERMINALS }, (_, index) => ({ index, id: deviceIdOf(index) })).sort((a, b) => (a.id < b.id ? -1 : 1));
  const ROWS = 100;
  const insertMany = db.prepare(`INSERT INTO events (device_id, seq, time, tz, type, data_json, prev, hash, received_at) VALUES ${new Array(ROWS).fill('(?,?,?,?,?,?,?,?,?)').join(',')}`);
  const insertOne = db.prepare('INSERT INTO events (device_id, seq, time, tz, type, data_json, prev, hash, received_at) VALUES (?,?,?,?,?,?,?,?,?)');
  const params: unknown[] = [];
  let randomBytes = crypto.randomBytes(1 << 20);
  let offset = 0;
  const hex = (): string => {
    if (offset + 32 > randomBytes.length) {
      randomBytes = crypto.randomBytes(1 << 20);
      offset = 0;
    }
    const text = randomBytes.toString('hex', offset, offset + 32);
    offset += 32;
    return text;
  };
  const heads: { seq: number; hash: string; violations: number }[] = new Array<{ seq: number; hash: string; violations: number }>(TERMINALS);
  let inserted = 0;
  let complete = true;
  const yearMs = 365 * 86_400_000;
  const flush = (): void => {
    while (params.length >= ROWS * 9) insertMany.run(params.splice(0, ROWS * 9));
    while (params.length > 0) insertOne.run(params.splice(0, 9));
  };
  let transactionRows = 0;
  db.exec('BEGIN');
  for (const { index, id } of order) {
    const count = counts[index] ?? 0;
    let prev = '0'.repeat(64);
    let violations = 0;
    let time = NOW - yearMs + Math.floor(random() * 30 * 86_400_000);
    const step = count > 0 ? Math.floor((NOW - time) / (count + 1)) : 0;
    for (let seq = 1; seq <= count; seq += 1) {
      const template = EVENT_TEMPLATES[TEMPLATE_PICK[Math.floor(random() * TEMPLATE_PICK.length)] as number] as (typeof EVENT_TEMPLATES)[number];
      if (template.violation) violations += 1;
      time += step;
      const iso = new Date(time).toISOString();
      const hash = hex();
      params.push(id, seq, iso, '+09:00', template.type, template.data, prev, hash, iso);
      prev = hash;
      if (params.length >= ROWS * 9) insertMany.run(params.splice(0, ROWS * 9));
    }
    inserted += count;
    transactionRows += count;
    heads[index] = { seq: count, hash: prev, violations };
    if (transactionRows >= 100_000) {
      flush();
      db.exec('COMMIT');
      db.exec('BEGIN');
      transactionRows = 0;
      if (performance.now() - started > budgetMs) {
        complete = false;
        break;
      }
    }
  }
  flush();
  db.exec('COMMIT');
  const eventSeconds = (performance.now() - started) / 1000;

  // Terminals: 70% seen within the last 2 minutes, 25% hours to weeks ago, 5% never.
  const insertDevice = db.prepare(
    `INSERT INTO devices (${[...DEVICE_VALUES.keys()].filter((column) => deviceColumns.has(column)).join(', ')})
     VALUES (${[...DEVICE_VALUES.keys()].filter((column) => deviceColumns.has(column)).map((column) => `@${column}`).join(', ')})`,
  );
  const tamper = db.prepare('INSERT INTO tamper_events (device_id, kind, seq, detail_json, detected_at) VALUES (?, ?, ?, ?, ?)');
  const command = db.prepare("INSERT INTO commands (id, device_id, type, params_json, created_at, created_by) VALUES (?, ?, 'lock', '{}', ?, 'bench')");
  db.transaction(() => {
    for (let index = 0; index < TERMINALS; index += 1) {
      const head = heads[index] ?? { seq: 0, hash: '0'.repeat(64), violations: 0 };
      const roll = random();
      const lastSeen = roll < 0.7 ? NOW - Math.floor(random() * 120_000) : roll < 0.95 ? NOW - Math.floor(random() * 30 * 86_400_000) : null;
      const tampered = index % 200 === 7;
      const row: Record<string, unknown> = {};
      for (const [column, value] of DEVICE_VALUES) {
        if (deviceColumns.has(column)) row[column] = value({ index, head, lastSeen, tampered });
      }
      insertDevice.run(row);
      if (tampered) tamper.run(deviceIdOf(index), 'gap', head.seq + 2, '{"expected":1}', new Date(NOW - 86_400_000).toISOString());
      if (index % 50 === 3) command.run(`cmd_${crypto.createHash('sha256').update(`bench-cmd:${index}`).digest('hex').slice(0, 24)}`, deviceIdOf(index), new Date(NOW - 3_600_000).toISOString());
    }
  })();
  db.pragma('journal_mode = WAL');
  db.close();
  const seconds = (performance.now() - started) / 1000;
  const bytes = fs.statSync(file).size;
  const report: SeedReport = { terminals: TERMINALS, events: inserted, seconds, eventsPerSecond: inserted / eventSeconds, complete, bytes, reused: false };
  fs.writeFileSync(marker, JSON.stringify({ ...report, target: { terminals: TERMINALS, events: EVENTS } }));
  return report;
}

type DeviceSeed = { index: number; head: { seq: number; hash: string; violations: number }; lastSeen: number | null; tampered: boolean };
/** Every column of `devices` the seed knows, with its value; columns the schema lacks are skipped. */
const DEVICE_VALUES = new Map<string, (seed: DeviceSeed) => unknown>([
  ['id', ({ index }) => deviceIdOf(index)],
  ['hostname', ({ index }) => hostnameOf(index)],
  ['os', () => 'linux'],
  ['arch', () => 'x64'],
  ['hardware_id', ({ index }) => `machine-id-${index}`],
  ['agent_version', () => '0.1.0'],
  ['credential_hash', ({ index }) => crypto.createHash('sha256').update(credentialOf(index)).digest('hex')],
  ['enrolled_at', ({ index }) => new Date(NOW - 400 * 86_400_000 + index * 1000).toISOString()],
  ['last_seen_at', ({ lastSeen }) => (lastSeen === null ? null : new Date(lastSeen).toISOString())],
  ['status_json', ({ index, head, lastSeen }) => (lastSeen === null ? null : statusJson(index, head.seq, head.hash))],
  ['ack_seq', ({ head }) => head.seq],
  ['ack_hash', ({ head }) => head.hash],
  ['tier', ({ index, lastSeen }) => (lastSeen === null ? null : tierOf(index))],
  ['recovery_tag', () => null],
  ['violation_count', ({ head }) => head.violations],
  ['tamper_flag_count', ({ tampered }) => (tampered ? 1 : 0)],
]);

// --- statistics --------------------------------------------------------------------------------

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}
function summary(samples: number[]): { p50: number; p95: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? NaN };
}
function time<T>(work: () => T): { value: T; ms: number } {
  const start = performance.now();
  const value = work();
  return { value, ms: performance.now() - start };
}
async function timeAsync<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await work();
  return { value, ms: performance.now() - start };
}

// --- the terminal list -------------------------------------------------------------------------

interface Shape {
  readonly name: string;
  readonly query: Omit<TerminalQuery, 'after' | 'limit' | 'onlineSince'>;
  /** Rows the cursors are drawn from (the shape's filter). */
  readonly sample: string;
}

const ONLINE_WINDOW_MS = 300_000;

async function benchList(dataDir: string, rows: string[][]): Promise<void> {
  const pages = Number(args.pages);
  const store = SqliteStore.open(dataDir, { create: false });
  const raw = new Database(path.join(dataDir, DATABASE_FILE), { readonly: true });
  const onlineSince = new Date(NOW - ONLINE_WINDOW_MS).toISOString();
  const shapes: Shape[] = [
    { name: 'all, by hostname', query: { sort: 'hostname', descending: false }, sample: '1' },
    { name: 'all, by last seen (newest first)', query: { sort: 'lastSeen', descending: true }, sample: '1' },
    { name: 'tier lgwan, by last seen (newest first)', query: { sort: 'lastSeen', descending: true, tier: 'lgwan' }, sample: "coalesce(tier, 'mynumber') = 'lgwan'" },
    { name: 'offline, by hostname', query: { sort: 'hostname', descending: false, online: false }, sample: `(last_seen_at IS NULL OR last_seen_at < '${onlineSince}')` },
    { name: 'tier mynumber, text "soumu", by hostname', query: { sort: 'hostname', descending: false, tier: 'mynumber', text: 'soumu' }, sample: "coalesce(tier, 'mynumber') = 'mynumber' AND instr(lower(hostname), 'soumu') > 0" },
  ];
  console.log(`terminal list: ${pages} random pages of 100 per shape (store.listTerminals, the dashboard's query) …`);
  const type = 'list';
  for (const shape of shapes) {
    const cursors = raw
      .prepare<[number], { hostname: string; last_seen: string; id: string }>(`SELECT hostname, coalesce(last_seen_at, '') AS last_seen, id FROM devices WHERE ${shape.sample} ORDER BY random() LIMIT ?`)
      .all(pages);
    const samples: number[] = [];
    const withCounts: number[] = [];
    let returned = 0;
    for (const cursor of cursors) {
      const after = { key: shape.query.sort === 'hostname' ? cursor.hostname : cursor.last_seen, id: cursor.id };
      const { value, ms: took } = await timeAsync(() => store.listTerminals({ ...shape.query, onlineSince, after, limit: 100 }));
      samples.push(took);
      returned += value.rows.length;
      // What the route adds per page: the totals shown above the list.
      const counted = await timeAsync(() => store.terminalCounts(onlineSince));
      withCounts.push(took + counted.ms);
    }
    const s = summary(samples);
    const c = summary(withCounts);
    rows.push([type, `${shape.name}`, ms(s.p50), ms(s.p95), ms(s.p99), ms(c.p95), fmt(returned / Math.max(1, cursors.length), 0)]);
    console.log(`  ${shape.name}: p50 ${ms(s.p50)}  p95 ${ms(s.p95)}  p99 ${ms(s.p99)}  max ${ms(s.max)}  (with terminalCounts p95 ${ms(c.p95)}; ${fmt(returned / Math.max(1, cursors.length))} rows/page)`);
  }

  // The lastSeen keyset: `(coalesce(last_seen_at, ''), id) < (?, ?)` on an expression index is not a
  // range SQLite can seek (EXPLAIN: SCAN … USING INDEX), so a page walks the index from its start to
  // the cursor. The same condition split into a seekable bound plus a tie-break gives the same rows.
  for (const tier of [undefined, 'lgwan'] as const) {
    const { sql, params } = terminalListSql({ sort: 'lastSeen', descending: true, ...(tier ? { tier } : {}), onlineSince, after: { key: '', id: '' }, limit: 100 });
    const rewritten = sql.replace(
      "(coalesce(d.last_seen_at, ''), d.id) < (@afterKey, @afterId)",
      "coalesce(d.last_seen_at, '') <= @afterKey AND (coalesce(d.last_seen_at, '') < @afterKey OR d.id < @afterId)",
    );
    if (rewritten === sql) {
      console.log('  (the lastSeen keyset condition has changed: no rewrite to compare)');
      break;
    }
    const plan = (text: string) => raw.prepare<Record<string, unknown>, { detail: string }>(`EXPLAIN QUERY PLAN ${text}`).all(params).map((row) => row.detail).join('; ');
    const current = raw.prepare<Record<string, unknown>, unknown>(sql);
    const proposed = raw.prepare<Record<string, unknown>, unknown>(rewritten);
    const cursors = raw.prepare<[number], { key: string; id: string }>("SELECT coalesce(last_seen_at, '') AS key, id FROM devices ORDER BY random() LIMIT ?").all(pages);
    const a: number[] = [];
    const b: number[] = [];
    let same = true;
    for (const cursor of cursors) {
      const bound = { ...params, afterKey: cursor.key, afterId: cursor.id };
      const x = time(() => current.all(bound));
      const y = time(() => proposed.all(bound));
      a.push(x.ms);
      b.push(y.ms);
      same &&= JSON.stringify(x.value) === JSON.stringify(y.value);
    }
    const sa = summary(a);
    const sb = summary(b);
    const name = `last seen${tier ? `, tier ${tier}` : ''}: split keyset condition (proposed)`;
    rows.push(['list', name, ms(sb.p50), ms(sb.p95), ms(sb.p99), '', same ? 'same rows' : 'ROWS DIFFER']);
    console.log(`  ${name}: p50 ${ms(sb.p50)}  p95 ${ms(sb.p95)}  vs the current statement p50 ${ms(sa.p50)}  p95 ${ms(sa.p95)} on the same cursors; same rows: ${same}`);
    console.log(`    plan now: ${plan(sql)}\n    proposed: ${plan(rewritten)}`);
  }

  // Worst case of the list's design: a text filter that matches almost nothing walks the whole index.
  const rare = [] as number[];
  for (let i = 0; i < 20; i += 1) {
    const needle = `pc-${String(Math.floor(Math.random() * TERMINALS)).padStart(6, '0')}`;
    rare.push((await timeAsync(() => store.listTerminals({ sort: 'hostname', descending: false, onlineSince, text: needle, limit: 100 }))).ms);
  }
  const r = summary(rare);
  rows.push([type, 'text matching 1 terminal (whole-index walk)', ms(r.p50), ms(r.p95), ms(r.p99), '', '1']);
  console.log(`  text matching one terminal: p50 ${ms(r.p50)}  p95 ${ms(r.p95)}  (walks the whole index: the documented worst case)`);

  // Ceiling: the same 101 rows and columns read by a primary-key range scan from a random id.
  const columns = `d.id, d.hostname, d.os, d.arch, d.agent_version, coalesce(d.tier, 'mynumber') AS tier, d.enrolled_at, d.last_seen_at,
    json_extract(d.status_json, '$.lockState') AS lock_state, json_extract(d.status_json, '$.policyVersion') AS policy_version,
    json_extract(d.status_json, '$.enforcement.state') AS enforcement, d.ack_seq`;
  const pk = raw.prepare<[string], unknown>(`SELECT ${columns} FROM devices d WHERE d.id > ? ORDER BY d.id LIMIT 101`);
  const bare = raw.prepare<[string], unknown>('SELECT id FROM devices WHERE id > ? ORDER BY id LIMIT 101');
  const ids = raw.prepare<[number], { id: string }>('SELECT id FROM devices ORDER BY random() LIMIT ?').all(pages).map((row) => row.id);
  const ceiling = summary(ids.map((id) => time(() => pk.all(id)).ms));
  const bareCeiling = summary(ids.map((id) => time(() => bare.all(id)).ms));
  rows.push(['ceiling', '101 rows, same columns, primary-key range scan', ms(ceiling.p50), ms(ceiling.p95), ms(ceiling.p99), '', '101']);
  rows.push(['ceiling', '101 ids, primary-key range scan', ms(bareCeiling.p50), ms(bareCeiling.p95), ms(bareCeiling.p99), '', '101']);
  console.log(`  ceiling, same 101 rows by primary key: p50 ${ms(ceiling.p50)}  p95 ${ms(ceiling.p95)}  p99 ${ms(ceiling.p99)} (ids only: p95 ${ms(bareCeiling.p95)})`);

  const counts = summary(Array.from({ length: 50 }, () => time(() => raw.prepare('SELECT COUNT(*) FROM devices').get()).ms));
  console.log(`  COUNT(*) of devices alone: p50 ${ms(counts.p50)}`);

  // The older, unpaged list (GET /admin/devices: every terminal with exact event counts). Once.
  const legacy = await timeAsync(() => store.listDevices());
  rows.push(['list', 'GET /admin/devices (store.listDevices: all, unpaged, exact counts), once', ms(legacy.ms), '', '', '', fmt(legacy.value.length)]);
  console.log(`  store.listDevices() (all ${fmt(legacy.value.length)} terminals, COUNT(*) of events each), once: ${fmt(legacy.ms / 1000, 1)} s`);

  // Operations: a metrics scrape's database reads, and the audit export's streaming rate.
  const ops = SqliteOpsQueries.open(dataDir);
  const scrape = summary(Array.from({ length: 20 }, () => time(() => ops.stats(onlineSince)).ms));
  rows.push(['ops', '/metrics database gauges (SqliteOpsQueries.stats)', ms(scrape.p50), ms(scrape.p95), ms(scrape.p99), '', '']);
  console.log(`  /metrics database gauges: p50 ${ms(scrape.p50)}  p95 ${ms(scrape.p95)}`);
  const exportLimitRows = 300_000;
  let exported = 0;
  let bytes = 0;
  const exportStart = performance.now();
  for await (const chunk of auditCsvChunks(ops, { range: { from: '2000-01-01T00:00:00.000Z', to: '2100-01-01T00:00:00.000Z' }, deviceIds: null })) {
    bytes += Buffer.byteLength(chunk);
    exported += chunk.split('\r\n').length - 1;
    if (exported >= exportLimitRows) break;
  }
  const exportSeconds = (performance.now() - exportStart) / 1000;
  rows.push(['ops', 'audit CSV export (all periods, first 300k rows)', `${fmt(exported / exportSeconds)} rows/s`, '', '', '', `${fmt(bytes / exportSeconds / 1e6, 1)} MB/s`]);
  console.log(`  audit CSV export: ${fmt(exported / exportSeconds)} rows/s, ${fmt(bytes / exportSeconds / 1e6, 1)} MB/s (first ${fmt(exported)} rows)`);
  ops.close();
  raw.close();
  await store.close();
}

// --- heartbeats ---------------------------------------------------------------------------------

interface ClientResult {
  readonly ok: number;
  readonly failed: number;
  readonly statuses: Record<string, number>;
  readonly seconds: number;
  readonly cpuSeconds: number;
}

/**
 * The load client (a forked process): `concurrency` keep-alive connections, one request in flight on
 * each. A minimal HTTP/1.1 client over `net` (Content-Length framing): Node's `http` client costs
 * several times the CPU of the server it measures, and on 2 cores it would steal the server's.
 */
async function runClient(): Promise<void> {
  const url = new URL(args.url ?? '');
  const concurrency = Number(args.concurrency);
  const warmupMs = Number(args['warmup-ms']);
  const durationMs = Number(args['duration-ms']);
  const mode = args.mode;
  let next = Number(args.offset);
  // Requests built ahead for every terminal: a SHA-256 per request would spend the client's CPU.
  const requests = Array.from({ length: TERMINALS }, (_, index) => {
    const body = JSON.stringify({
      status: { agentVersion: '0.1.0', enforcement: { state: 'enforced' }, lockState: 'unlocked', tier: mode === 'heartbeat' ? tierOf(index) : 'lgwan', policyVersion: 2, journal: { length: 0, headHash: '0'.repeat(64) } },
    });
    return Buffer.from(
      `POST ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nAuthorization: Bearer ${credentialOf(index)}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: keep-alive\r\n\r\n${body}`,
    );
  });
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  let ok = 0;
  let failed = 0;
  const statuses: Record<string, number> = {};
  const connection = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = net.connect(Number(url.port), url.hostname);
      socket.setNoDelay(true);
      let buffer: Buffer = Buffer.alloc(0);
      const send = (): void => {
        if (performance.now() >= end) {
          socket.end();
          return;
        }
        socket.write(requests[next % TERMINALS] as Buffer);
        next += 7919;
      };
      socket.on('connect', send);
      socket.on('data', (chunk: Buffer) => {
        buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
        for (;;) {
          const headerEnd = buffer.indexOf('\r\n\r\n');
          if (headerEnd < 0) return;
          const head = buffer.subarray(0, headerEnd).toString('latin1');
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (buffer.length < headerEnd + 4 + length) return;
          const status = Number(head.slice(9, 12));
          buffer = buffer.subarray(headerEnd + 4 + length);
          if (performance.now() >= measureFrom && performance.now() < end) {
            if (status === 200) ok += 1;
            else {
              failed += 1;
              statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
            }
          }
          send();
        }
      });
      socket.on('error', () => {
        failed += 1;
        statuses.error = (statuses.error ?? 0) + 1;
      });
      socket.on('close', () => resolve());
    });
  await Promise.all(Array.from({ length: concurrency }, connection));
  const cpu = process.cpuUsage(cpuStart);
  const result: ClientResult = { ok, failed, statuses, seconds: durationMs / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  process.send?.(result);
}

async function load(url: string, mode: 'heartbeat' | 'empty'): Promise<{ perSecond: number; failed: number; statuses: Record<string, number>; clientCpu: number }> {
  const clients = Number(args.clients);
  const durationMs = Number(args['duration-seconds']) * 1000;
  const script = fileURLToPath(import.meta.url);
  const results = await Promise.all(
    Array.from(
      { length: clients },
      (_, client) =>
        new Promise<ClientResult>((resolve, reject) => {
          const child = fork(
            script,
            ['--client', '--url', url, '--mode', mode, '--concurrency', String(args.concurrency), '--warmup-ms', '3000', '--duration-ms', String(durationMs), '--offset', String(client * 104_729), '--terminals', String(TERMINALS)],
            { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
          );
          let result: ClientResult | undefined;
          child.on('message', (message) => {
            result = message as ClientResult;
          });
          child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`load client exited with ${code}`))));
        }),
    ),
  );
  const ok = results.reduce((sum, result) => sum + result.ok, 0);
  const statuses: Record<string, number> = {};
  for (const result of results) for (const [status, n] of Object.entries(result.statuses)) statuses[status] = (statuses[status] ?? 0) + n;
  return {
    perSecond: ok / (durationMs / 1000),
    failed: results.reduce((sum, result) => sum + result.failed, 0),
    statuses,
    clientCpu: results.reduce((sum, result) => sum + result.cpuSeconds, 0) / ((durationMs + 3000) / 1000),
  };
}

async function benchHeartbeats(dataDir: string, rows: string[][]): Promise<void> {
  const inFlight = Number(args.clients) * Number(args.concurrency);
  console.log(`heartbeats: ${args.clients} client processes × ${args.concurrency} requests in flight, keep-alive, ${args['duration-seconds']} s after a 3 s warm-up …`);

  // Ceilings 1: the heartbeat's UPDATE (store.recordHeartbeat's statement; it leaves the tier, written
  // apart and only when it must be) as raw statements with the server's pragmas (WAL,
  // synchronous=FULL: one fsync per commit), on terminals spread over the whole table as the load
  // clients pick them; then the same with NORMAL, in groups of 64 per transaction, and an UPDATE of
  // last_seen_at alone (the least a heartbeat must write).
  const db = new Database(path.join(dataDir, DATABASE_FILE));
  db.pragma('journal_mode = WAL');
  const full = db.prepare<[string, string, string, string]>(
    'UPDATE devices SET status_json = ?, last_seen_at = ?, agent_version = ? WHERE id = ? RETURNING ack_seq, ack_hash, tier',
  );
  const seenOnly = db.prepare<[string, string]>('UPDATE devices SET last_seen_at = ? WHERE id = ?');
  const ids = Array.from({ length: TERMINALS }, (_, i) => deviceIdOf((i * 7919) % TERMINALS));
  const status = statusJson(1, 0, '0'.repeat(64));
  let cursor = 0;
  const one = (statement: 'full' | 'seen'): void => {
    const id = ids[cursor++ % ids.length] as string;
    if (statement === 'full') full.get(status, new Date().toISOString(), '0.1.0', id);
    else seenOnly.run(new Date().toISOString(), id);
  };
  const rate = (synchronous: 'FULL' | 'NORMAL', perTransaction: number, statement: 'full' | 'seen', seconds: number): number => {
    db.pragma(`synchronous = ${synchronous}`);
    const group = db.transaction(() => {
      for (let i = 0; i < perTransaction; i += 1) one(statement);
    });
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) {
      if (perTransaction === 1) one(statement);
      else group();
      n += perTransaction;
    }
    return n / ((performance.now() - start) / 1000);
  };
  const rawFull = rate('FULL', 1, 'full', 5);
  const rawNormal = rate('NORMAL', 1, 'full', 4);
  const rawGrouped = rate('FULL', 64, 'full', 4);
  const seenFull = rate('FULL', 1, 'seen', 4);
  const seenGrouped = rate('FULL', 64, 'seen', 4);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  console.log(`  raw heartbeat UPDATE, autocommit, FULL (the server's): ${fmt(rawFull)} /s; NORMAL: ${fmt(rawNormal)} /s; FULL, 64 per transaction: ${fmt(rawGrouped)} /s`);
  console.log(`  raw UPDATE of last_seen_at only, FULL: ${fmt(seenFull)} /s; 64 per transaction: ${fmt(seenGrouped)} /s`);

  // The heartbeat's store calls in the route's order (server/routes/heartbeat.ts: the status with the
  // commands taken in its group commit, the policy etag), one after another, without HTTP: the database's share.
  const store = SqliteStore.open(dataDir, { create: false });
  const dataKey = loadOrCreateDataKey(dataDir);
  let storeCalls = 0;
  const storeStart = performance.now();
  while (performance.now() - storeStart < 5000) {
    const index = (storeCalls * 7919) % TERMINALS;
    const deviceId = await authenticateDevice(store, `Bearer ${credentialOf(index)}`);
    if (deviceId === null) throw new Error('bench credential refused');
    const now = new Date().toISOString();
    const head = await store.recordHeartbeat(deviceId, JSON.parse(statusJson(index, 0, '0'.repeat(64))) as AgentStatus, now, { limit: MAX_COMMANDS_PER_HEARTBEAT });
    if (head === null) throw new Error('bench device not enrolled');
    await heartbeatPolicyEtag({ store, log: console }, deviceId, tierOf(index), head.seq, now);
    await commandsForHeartbeat(store, dataKey, deviceId, now, head.commands);
    storeCalls += 1;
  }
  const storeRate = storeCalls / ((performance.now() - storeStart) / 1000);
  await store.close();
  console.log(`  the heartbeat's store calls, serial, no HTTP: ${fmt(storeRate)} /s`);

  // Ceiling 2: an empty fastify route, same bodies, same clients.
  const empty = Fastify({ logger: false });
  empty.post('/empty', () => ({ ok: true }));
  await empty.listen({ host: '127.0.0.1', port: 0 });
  const emptyAddress = empty.server.address() as { port: number };
  const emptyLoad = await load(`http://127.0.0.1:${emptyAddress.port}/empty`, 'empty');
  await empty.close();
  console.log(`  empty fastify route: ${fmt(emptyLoad.perSecond)} requests/s (client CPU ${fmt(emptyLoad.clientCpu, 2)} cores)`);

  // The real app: createServer on the seeded database, a real listener.
  const server = await createServer({ dataDir });
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  const address = server.app.server.address() as { port: number };
  const real = await load(`http://127.0.0.1:${address.port}/api/v1/heartbeat`, 'heartbeat');
  await server.close();
  const statuses = Object.keys(real.statuses).length === 0 ? '' : ` (non-200: ${JSON.stringify(real.statuses)})`;
  console.log(`  POST /api/v1/heartbeat, real app: ${fmt(real.perSecond)} /s${statuses} (client CPU ${fmt(real.clientCpu, 2)} cores)`);

  rows.push(['heartbeat', `real app, ${inFlight} in flight`, `${fmt(real.perSecond)} /s`, '', '', '', real.failed === 0 ? '' : `${fmt(real.failed)} failed`]);
  rows.push(['ceiling', "the heartbeat's store calls, serial, no HTTP", `${fmt(storeRate)} /s`, '', '', '', '']);
  rows.push(['ceiling', 'raw heartbeat UPDATE, autocommit, WAL + FULL (the server\'s)', `${fmt(rawFull)} /s`, '', '', '', '']);
  rows.push(['ceiling', 'raw heartbeat UPDATE, autocommit, WAL + NORMAL', `${fmt(rawNormal)} /s`, '', '', '', '']);
  rows.push(['ceiling', 'raw heartbeat UPDATE, 64 per transaction, FULL', `${fmt(rawGrouped)} /s`, '', '', '', '']);
  rows.push(['ceiling', 'raw UPDATE last_seen_at only, autocommit, FULL', `${fmt(seenFull)} /s`, '', '', '', '']);
  rows.push(['ceiling', 'raw UPDATE last_seen_at only, 64 per transaction, FULL', `${fmt(seenGrouped)} /s`, '', '', '', '']);
  rows.push(['ceiling', 'empty fastify route, same clients', `${fmt(emptyLoad.perSecond)} /s`, '', '', '', '']);
}

// --- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const dataDir = args.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sekimori-bench-server-'));
  console.log(`sekimori server benchmark — ${os.cpus().length} cores, ${fmt(os.totalmem() / 2 ** 30, 1)} GiB, node ${process.version}, load average ${os.loadavg().map((n) => fmt(n, 1)).join(' ')}`);
  const rows: string[][] = [];
  try {
    const seeded = await seed(dataDir);
    if (!seeded.reused) {
      console.log(
        `  seeded ${fmt(seeded.terminals)} terminals and ${fmt(seeded.events)} events in ${fmt(seeded.seconds, 1)} s ` +
          `(${fmt(seeded.eventsPerSecond)} events/s; database ${fmt(seeded.bytes / 2 ** 30, 2)} GiB)`,
      );
    }
    if (!seeded.complete) {
      console.log(`  SEEDING STOPPED AT THE BUDGET: ${fmt(seeded.events)} of ${fmt(EVENTS)} events; at ${fmt(seeded.eventsPerSecond)} events/s the full ${fmt(EVENTS)} would take about ${fmt(EVENTS / seeded.eventsPerSecond / 60, 1)} min. The numbers below are for the smaller database.`);
    }
    if (args.only !== 'heartbeats') await benchList(dataDir, rows);
    if (args.only !== 'list') await benchHeartbeats(dataDir, rows);
    console.log(`\nsummary (targets: list page p95 < 100 ms; heartbeats ≥ 3,000/s; load average now ${os.loadavg().map((n) => fmt(n, 1)).join(' ')})`);
    const header = ['what', 'case', 'p50 / rate', 'p95', 'p99', 'p95 + counts', 'rows'];
    const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
    for (const row of [header, ...rows]) console.log(row.map((cell, column) => (cell ?? '').padEnd(widths[column] as number)).join('  '));
  } finally {
    if (!args.keep && args.dir === undefined) fs.rmSync(dataDir, { recursive: true, force: true });
    else console.log(`database kept in ${dataDir}`);
  }
}

if (args.client) await runClient();
else await main();
