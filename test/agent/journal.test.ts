import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Journal } from '../../agent/journal/journal.js';
import { scanJournal } from '../../agent/journal/journal-scan.js';
import { GENESIS_HASH } from '../../shared/journal.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();

async function journalWith(count: number): Promise<string> {
  const file = path.join(await tempDir(), 'journal.jsonl');
  const { journal } = await Journal.open(file);
  for (let i = 1; i <= count; i += 1) await journal.append('operator.marker', { n: i });
  await journal.close();
  return file;
}

async function rewriteLine(file: string, index: number, edit: (entry: Record<string, unknown>) => void): Promise<void> {
  const lines = (await fs.readFile(file, 'utf8')).split('\n');
  const entry = JSON.parse(lines[index]!);
  edit(entry);
  lines[index] = JSON.stringify(entry);
  await fs.writeFile(file, lines.join('\n'));
}

describe('journal', () => {
  it('appends entries that chain from the genesis hash and verify', async () => {
    const file = await journalWith(5);
    const scan = await scanJournal(file);
    expect(scan.count).toBe(5);
    expect(scan.firstBreak).toBeNull();
    expect(scan.tornTail).toBeNull();
    const first = JSON.parse((await fs.readFile(file, 'utf8')).split('\n')[0]!);
    expect(first.prev).toBe(GENESIS_HASH);
    expect(first.seq).toBe(1);
  });

  it('resolves an append only once the entry is durable, and reads back durable entries', async () => {
    const file = path.join(await tempDir(), 'journal.jsonl');
    const { journal } = await Journal.open(file);
    const appends = Array.from({ length: 50 }, (_, i) => journal.append('operator.marker', { i }));
    const entries = await Promise.all(appends);
    expect(entries.map((entry) => entry.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(journal.durableHead.seq).toBe(50);
    const back = await journal.read(10, 5);
    expect(back.map((entry) => entry.data.i)).toEqual([9, 10, 11, 12, 13]);
    await journal.close();
    expect((await scanJournal(file)).count).toBe(50);
  });

  it('writes an append made the moment the previous write settles (regression: group commit stalled forever)', async () => {
    const file = path.join(await tempDir(), 'journal.jsonl');
    const { journal } = await Journal.open(file);
    // Each append is issued from the continuation of the previous one, while the flush that
    // resolved it is still winding down: the case that once found "a flush running" and waited.
    for (let i = 0; i < 20; i += 1) await journal.append('operator.marker', { i });
    const settled = await Promise.race([journal.append('operator.marker', { last: true }).then(() => 'written'), new Promise((resolve) => setTimeout(() => resolve('stalled'), 5000))]);
    expect(settled).toBe('written');
    await journal.close();
    expect((await scanJournal(file)).count).toBe(21);
  });

  it('continues the chain after a restart', async () => {
    const file = await journalWith(3);
    const { journal } = await Journal.open(file);
    const entry = await journal.append('operator.marker', { n: 4 });
    await journal.close();
    expect(entry.seq).toBe(4);
    const scan = await scanJournal(file);
    expect(scan.count).toBe(4);
    expect(scan.firstBreak).toBeNull();
  });

  it('cuts off a line torn mid-write, keeps the cut bytes, and appends after the last whole entry', async () => {
    const file = await journalWith(4);
    const size = (await fs.stat(file)).size;
    // A crash mid-write leaves the last line without its end.
    await fs.truncate(file, size - 40);
    const torn = await scanJournal(file);
    expect(torn.count).toBe(3);
    expect(torn.tornTail).not.toBeNull();

    const { journal, report } = await Journal.open(file);
    expect(report.recovered?.bytes).toBe(torn.tornTail!.bytes);
    expect((await fs.readFile(report.recovered!.savedTo)).length).toBe(torn.tornTail!.bytes);
    const next = await journal.append('operator.marker', { after: 'crash' });
    await journal.close();
    expect(next.seq).toBe(4);
    const scan = await scanJournal(file);
    expect(scan.firstBreak).toBeNull();
    expect(scan.count).toBe(4);
    expect(scan.tornTail).toBeNull();
  });

  it('treats zero-filled blocks after the last entry as a torn tail', async () => {
    const file = await journalWith(2);
    await fs.appendFile(file, Buffer.concat([Buffer.alloc(100), Buffer.from('\n'), Buffer.alloc(50)]));
    const { journal, report } = await Journal.open(file);
    expect(report.recovered?.bytes).toBe(151);
    await journal.append('operator.marker', {});
    await journal.close();
    expect((await scanJournal(file)).firstBreak).toBeNull();
  });

  it('detects an entry whose content was changed, naming its seq', async () => {
    const file = await journalWith(6);
    await rewriteLine(file, 3, (entry) => {
      (entry.data as Record<string, unknown>).n = 999;
    });
    const scan = await scanJournal(file);
    expect(scan.firstBreak).toMatchObject({ seq: 4, reason: 'bad-hash' });
  });

  it('detects an entry removed from the middle', async () => {
    const file = await journalWith(5);
    const lines = (await fs.readFile(file, 'utf8')).split('\n');
    lines.splice(2, 1);
    await fs.writeFile(file, lines.join('\n'));
    expect((await scanJournal(file)).firstBreak).toMatchObject({ seq: 4, reason: 'bad-seq' });
  });

  it('detects an entry rewritten with a fresh hash, because the next entry no longer follows it', async () => {
    const file = await journalWith(5);
    const { entryHash } = await import('../../shared/journal.js');
    const { sha256Hex } = await import('../../agent/crypto.js');
    await rewriteLine(file, 1, (entry) => {
      entry.type = 'operator.marker';
      (entry.data as Record<string, unknown>).n = 'forged';
      entry.hash = entryHash(entry as never, sha256Hex);
    });
    expect((await scanJournal(file)).firstBreak).toMatchObject({ seq: 3, reason: 'bad-prev' });
  });

  it('does not cut a complete entry with a bad hash at the end: that is tampering, not a torn write', async () => {
    const file = await journalWith(3);
    await rewriteLine(file, 2, (entry) => {
      (entry.data as Record<string, unknown>).n = 0;
    });
    const { journal, report } = await Journal.open(file);
    await journal.close();
    expect(report.recovered).toBeNull();
    expect(report.scan.firstBreak).toMatchObject({ seq: 3, reason: 'bad-hash' });
    expect((await scanJournal(file)).count).toBe(3);
  });

  it('reports garbage in the middle of the file as a break, not a torn tail', async () => {
    const file = await journalWith(4);
    const lines = (await fs.readFile(file, 'utf8')).split('\n');
    lines.splice(2, 0, 'not json at all');
    await fs.writeFile(file, lines.join('\n'));
    const scan = await scanJournal(file);
    expect(scan.tornTail).toBeNull();
    expect(scan.firstBreak).toMatchObject({ seq: 3, reason: 'unparseable' });
  });

  it('refuses prototype-poisoning keys in event data, so it never journals what the server must refuse', async () => {
    const file = path.join(await tempDir(), 'journal.jsonl');
    const { journal } = await Journal.open(file);
    await expect(journal.append('operator.marker', JSON.parse('{"__proto__":{"x":1}}'))).rejects.toThrow(/refused key/);
    await expect(journal.append('operator.marker', { constructor: { prototype: {} } })).rejects.toThrow(/refused key/);
    await journal.close();
  });

  it('refuses invalid event types and data without writing anything', async () => {
    const file = path.join(await tempDir(), 'journal.jsonl');
    const { journal } = await Journal.open(file);
    await expect(journal.append('Not A Type', {})).rejects.toThrow(/bad event type/);
    await expect(journal.append('operator.marker', { big: 'x'.repeat(20_000) })).rejects.toThrow(/bad event data/);
    await expect(journal.append('operator.marker', { f: Number.NaN })).rejects.toThrow(/bad event data/);
    expect(journal.length).toBe(0);
    await journal.close();
    expect((await scanJournal(file)).count).toBe(0);
  });

  it('verifies a journal larger than one read chunk', async () => {
    const file = path.join(await tempDir(), 'journal.jsonl');
    const { journal } = await Journal.open(file);
    const pad = 'p'.repeat(9000);
    await Promise.all(Array.from({ length: 600 }, (_, i) => journal.append('operator.marker', { i, pad })));
    await journal.close();
    expect((await fs.stat(file)).size).toBeGreaterThan(4 * 1024 * 1024);
    const scan = await scanJournal(file);
    expect(scan.count).toBe(600);
    expect(scan.firstBreak).toBeNull();
  });
});
