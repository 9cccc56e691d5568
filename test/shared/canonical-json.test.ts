import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../agent/crypto.js';
import { canonicalJson } from '../../shared/canonical-json.js';
import { EMPTY_HEAD, chainEntry, encodeEntry, encodeUnhashed, entryHash, type JournalEntry } from '../../shared/journal.js';
import { parseEntryLine } from '../../shared/journal-line.js';

/**
 * The slow, obviously-correct definition: keys sorted by UTF-16 code units, written by hand (an
 * object rebuilt in sorted order would not do: V8 puts integer-like keys first, numerically).
 */
function reference(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).filter((key) => record[key] !== undefined).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${reference(record[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const jsonValue = fc.jsonValue({ maxDepth: 6 }).filter((value) => {
  // fast-check may produce -0 (JSON writes 0) and __proto__ keys (refused on purpose).
  const text = JSON.stringify(value);
  return !text.includes('"__proto__"') && !Object.is(value, -0);
});

describe('canonicalJson', () => {
  it('equals sorting every object and JSON.stringify, for any JSON value', () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        expect(canonicalJson(value)).toBe(reference(value));
      }),
      { numRuns: 1000 },
    );
  });

  it('does not depend on the order keys were inserted in', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 0, y: 1 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[1,{"y":1,"z":0}]},"b":1}');
    // Integer-like keys: V8 orders them numerically, canonical JSON by code units.
    expect(canonicalJson({ 10: 'a', 9: 'b', x: 1 })).toBe('{"10":"a","9":"b","x":1}');
  });

  it('refuses values JSON cannot carry faithfully', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ d: new Date(0) })).toThrow(/not a plain object/);
    expect(() => canonicalJson([undefined])).toThrow(/undefined in an array/);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(TypeError);
    expect(() => canonicalJson(JSON.parse('{"__proto__":{"x":1}}'))).toThrow(/refused key/);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => canonicalJson(cycle)).toThrow(/too deep/);
  });
});

describe('journal line encoding', () => {
  const entryArbitrary = fc.record({
    data: fc.dictionary(fc.string({ maxLength: 8 }).filter((key) => key !== '__proto__'), jsonValue, { maxKeys: 5 }),
    type: fc.constantFrom('device.blocked', 'operator.marker', 'tamper.detected'),
    tz: fc.constantFrom('+09:00', '-05:30', '+00:00'),
    seq: fc.integer({ min: 0, max: 1_000_000 }),
  });

  it('writes exactly the canonical JSON of the entry, and its hash covers the canonical entry without hash', () => {
    fc.assert(
      fc.property(entryArbitrary, ({ data, type, tz, seq }) => {
        const { entry, line } = chainEntry({ seq, hash: 'a'.repeat(64) }, { time: '2026-11-25T09:00:00.000Z', tz, type, data }, sha256Hex);
        expect(line).toBe(reference(entry));
        expect(encodeEntry(entry)).toBe(line);
        const { hash: _hash, ...unhashed } = entry;
        expect(encodeUnhashed(entry)).toBe(reference(unhashed));
        expect(entry.hash).toBe(entryHash(entry, sha256Hex));
        const parsed = parseEntryLine(line, sha256Hex);
        expect(parsed).toEqual({ kind: 'entry', entry: JSON.parse(line) as JournalEntry, hashOk: true });
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a line that is valid JSON but not in canonical order', () => {
    const { entry } = chainEntry(EMPTY_HEAD, { time: '2026-11-25T09:00:00.000Z', tz: '+09:00', type: 'operator.marker', data: { a: 1, b: 2 } }, sha256Hex);
    const reordered = JSON.stringify({ hash: entry.hash, data: entry.data, prev: entry.prev, seq: entry.seq, time: entry.time, type: entry.type, tz: entry.tz });
    expect(parseEntryLine(reordered, sha256Hex)).toMatchObject({ kind: 'invalid' });
    const unsortedData = encodeEntry(entry).replace('{"a":1,"b":2}', '{"b":2,"a":1}');
    expect(parseEntryLine(unsortedData, sha256Hex)).toMatchObject({ kind: 'invalid', message: 'not in canonical encoding' });
    expect(parseEntryLine('{"data":{"a":1', sha256Hex)).toEqual({ kind: 'garbage' });
  });
});

describe('parseUntrustedJson', () => {
  it('parses ordinary JSON and refuses prototype-poisoning keys at any depth', async () => {
    const { parseUntrustedJson } = await import('../../shared/safe-json.js');
    expect(parseUntrustedJson('{"a":[1,{"b":null}]}')).toEqual({ ok: true, value: { a: [1, { b: null }] } });
    expect(parseUntrustedJson('{"a":{"__proto__":{"x":1}}}')).toMatchObject({ ok: false, error: { code: 'forbidden-key' } });
    expect(parseUntrustedJson('{"constructor":{"prototype":{"x":1}}}')).toMatchObject({ ok: false, error: { code: 'forbidden-key' } });
    expect(parseUntrustedJson('{"constructor":"fine"}')).toMatchObject({ ok: true });
    expect(parseUntrustedJson('{oops')).toMatchObject({ ok: false, error: { code: 'invalid-json' } });
  });
});
