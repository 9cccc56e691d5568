/**
 * `npm run bench`: the walking skeleton's numbers, each next to its ceiling measured in the same
 * run on the same machine (issue 2). Prints a table; asserts nothing (machines are noisy).
 *
 *   journal appends/s with fsync    vs  raw write+fdatasync of the same bytes (group-commit ceiling)
 *   chain verification MB/s         vs  node:crypto SHA-256 over the same entries (per entry and bulk)
 *   server ingest events/s over HTTP (batches of 100) vs a trivial fastify route's requests/s
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { Journal } from '../agent/journal/journal.js';
import { scanJournal } from '../agent/journal/journal-scan.js';
import { EMPTY_HEAD, chainEntry, type JournalEntry } from '../shared/journal.js';
import { sha256Hex } from '../agent/crypto.js';
import { createServer } from '../server/app.js';
import { issueEnrollmentToken } from '../server/enrollment.js';

const rows: string[][] = [];
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
function report(what: string, value: string, ceiling: string, ratio: number | null, target: string): void {
  rows.push([what, value, ceiling, ratio === null ? '' : `${fmt(ratio * 100, 0)}%`, target]);
  console.log(`  ${what}: ${value}  (ceiling ${ceiling}${ratio === null ? '' : `, ${fmt(ratio * 100, 0)}%`})`);
}

const sampleData = { device: { vid: '0930', pid: '6545', serial: 'A1B2C3D4', name: 'TOSHIBA TransMemory' }, rule: 3, decision: 'block' };

async function benchJournal(dir: string): Promise<void> {
  console.log('journal (fsync per group commit):');
  const concurrency = 64;
  const total = 20_000;
  const lineBytes = Buffer.byteLength(chainEntry(EMPTY_HEAD, { time: new Date().toISOString(), tz: '+09:00', type: 'device.blocked', data: sampleData }, sha256Hex).line + '\n');

  // Ceiling 1: one write + fdatasync per line (what an fsync-per-event journal could do).
  const raw = await fs.open(path.join(dir, 'raw.bin'), 'a');
  const line = Buffer.alloc(lineBytes, 0x61);
  let start = performance.now();
  const single = 500;
  for (let i = 0; i < single; i += 1) {
    await raw.write(line);
    await raw.datasync();
  }
  const rawFsyncPerSec = single / ((performance.now() - start) / 1000);
  // Ceiling 2: the same bytes, `concurrency` lines per write + fdatasync (perfect group commit).
  const group = Buffer.alloc(lineBytes * concurrency, 0x61);
  start = performance.now();
  for (let written = 0; written < total; written += concurrency) {
    await raw.write(group);
    await raw.datasync();
  }
  const rawGroupPerSec = total / ((performance.now() - start) / 1000);
  await raw.close();

  // The journal with `concurrency` appends always in flight.
  const { journal } = await Journal.open(path.join(dir, 'journal.jsonl'));
  start = performance.now();
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < total) {
      issued += 1;
      await journal.append('device.blocked', sampleData);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const journalPerSec = total / ((performance.now() - start) / 1000);
  // And one append at a time (each waits for its own fsync).
  start = performance.now();
  for (let i = 0; i < single; i += 1) await journal.append('device.blocked', sampleData);
  const journalSerialPerSec = single / ((performance.now() - start) / 1000);
  await journal.close();

  report('raw write+fdatasync, 1 line each', `${fmt(rawFsyncPerSec)} /s`, '-', null, '');
  report(`journal appends, ${concurrency} in flight`, `${fmt(journalPerSec)} /s`, `${fmt(rawGroupPerSec)} lines/s raw group commit`, journalPerSec / rawGroupPerSec, '≥ 50%');
  report('journal appends, 1 in flight', `${fmt(journalSerialPerSec)} /s`, `${fmt(rawFsyncPerSec)} raw fsync/s`, journalSerialPerSec / rawFsyncPerSec, '');
}

async function benchVerify(dir: string): Promise<void> {
  console.log('chain verification:');
  const file = path.join(dir, 'verify.jsonl');
  const count = 200_000;
  const lines: string[] = [];
  let head = { ...EMPTY_HEAD };
  const time = new Date().toISOString();
  for (let i = 0; i < count; i += 1) {
    const { entry, line } = chainEntry(head, { time, tz: '+09:00', type: 'device.blocked', data: { ...sampleData, i } }, sha256Hex);
    head = { seq: entry.seq, hash: entry.hash };
    lines.push(line + '\n');
  }
  const text = lines.join('');
  await fs.writeFile(file, text);
  const megabytes = Buffer.byteLength(text) / 1e6;

  await scanJournal(file); // warm the page cache and the JIT
  let start = performance.now();
  const scan = await scanJournal(file);
  const verifySeconds = (performance.now() - start) / 1000;
  if (scan.count !== count || scan.firstBreak) throw new Error('bench journal did not verify');

  // Ceiling: SHA-256 of every entry's bytes (the hashing a chain cannot avoid), and of the file in bulk.
  start = performance.now();
  for (const line of lines) crypto.hash('sha256', line, 'hex');
  const perEntrySeconds = (performance.now() - start) / 1000;
  const buffer = Buffer.from(text);
  start = performance.now();
  crypto.createHash('sha256').update(buffer).digest('hex');
  const bulkSeconds = (performance.now() - start) / 1000;

  report(`verify ${fmt(count)} entries (${fmt(megabytes, 1)} MB)`, `${fmt(megabytes / verifySeconds, 1)} MB/s`, `${fmt(megabytes / perEntrySeconds, 1)} MB/s SHA-256 per entry`, perEntrySeconds / verifySeconds, '≥ 50%');
  report('  same, against bulk SHA-256', `${fmt(megabytes / verifySeconds, 1)} MB/s`, `${fmt(megabytes / bulkSeconds, 1)} MB/s SHA-256 bulk`, bulkSeconds / verifySeconds, '(information)');
}

async function benchIngest(dir: string): Promise<void> {
  console.log('server ingest over HTTP (127.0.0.1):');
  const server = await createServer({ dataDir: path.join(dir, 'server') });
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  const address = server.app.server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const token = await issueEnrollmentToken(server.store, 1, new Date());
  const enrollResponse = await fetch(`${base}/api/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, host: { hostname: 'bench', os: os.platform(), arch: os.arch(), hardwareId: 'bench', agentVersion: '0.1.0' } }),
  });
  const enroll = (await enrollResponse.json()) as { credential: string };

  const batchSize = 100;
  const batches = 200;
  let head = { ...EMPTY_HEAD };
  const bodies: string[] = [];
  const time = new Date().toISOString();
  for (let b = 0; b < batches; b += 1) {
    const entries: JournalEntry[] = [];
    for (let i = 0; i < batchSize; i += 1) {
      const { entry } = chainEntry(head, { time, tz: '+09:00', type: 'device.blocked', data: { ...sampleData, i } }, sha256Hex);
      head = { seq: entry.seq, hash: entry.hash };
      entries.push(entry);
    }
    bodies.push(JSON.stringify({ entries }));
  }
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${enroll.credential}` };
  // One agent's stream is ordered, so batches go one after another.
  let start = performance.now();
  for (const body of bodies) {
    const response = await fetch(`${base}/api/v1/events`, { method: 'POST', headers, body });
    if (response.status !== 200) throw new Error(`ingest failed: ${response.status} ${await response.text()}`);
    await response.arrayBuffer();
  }
  const ingestSeconds = (performance.now() - start) / 1000;
  await server.close();

  // Ceiling: a trivial fastify POST route on the same machine, same client, same body size.
  const trivial = Fastify({ bodyLimit: 8 * 1024 * 1024 });
  trivial.post('/noop', () => Promise.resolve({ ok: true }));
  await trivial.listen({ host: '127.0.0.1', port: 0 });
  const trivialAddress = trivial.server.address();
  const trivialBase = `http://127.0.0.1:${typeof trivialAddress === 'object' && trivialAddress ? trivialAddress.port : 0}`;
  start = performance.now();
  for (const body of bodies) {
    const response = await fetch(`${trivialBase}/noop`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await response.arrayBuffer();
  }
  const trivialSeconds = (performance.now() - start) / 1000;
  await trivial.close();

  const eventsPerSec = (batches * batchSize) / ingestSeconds;
  report(`ingest, batches of ${batchSize}`, `${fmt(eventsPerSec)} events/s (${fmt(batches / ingestSeconds)} req/s)`, `${fmt(batches / trivialSeconds)} req/s trivial route, same bodies`, trivialSeconds / ingestSeconds, '≥ 5,000 events/s');
}

async function main(): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sekimori-bench-'));
  console.log(`sekimori bench — node ${process.version}, ${os.cpus().length} cores, temp dir ${dir}`);
  try {
    await benchJournal(dir);
    await benchVerify(dir);
    await benchIngest(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  console.log('\n| measure | value | ceiling (same run) | of ceiling | target |\n|---|---|---|---|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

await main();
