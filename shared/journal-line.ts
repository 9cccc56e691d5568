import { canonicalJson } from './canonical-json.js';
import { EVENT_TYPE_PATTERN, MAX_EVENT_DATA_CHARS, type JournalEntry, type Sha256Hex } from './journal.js';

/**
 * Reading journal lines, fast. A line is the canonical JSON of its entry,
 * `{"data":…,"hash":"…","prev":"…","seq":…,"time":"…","type":"…","tz":"…"}`, so the hash input is
 * the line with its hash member cut out: no re-encoding needed. Verifying a chain must run at close
 * to SHA-256 speed (issue 2's benchmark), which a schema library per line does not.
 */

const HASH_MEMBER = ',"hash":"';
const TOP_LEVEL_KEYS = ['data', 'hash', 'prev', 'seq', 'time', 'type', 'tz'];
const HEX64 = /^[0-9a-f]{64}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const TZ = /^[+-]\d{2}:\d{2}$/;

/** What one line of a journal file is. */
export type LineParse =
  | { readonly kind: 'entry'; readonly entry: JournalEntry; readonly hashOk: boolean }
  /** Not JSON at all: what a crash leaves (a partial line, zero-filled blocks). */
  | { readonly kind: 'garbage' }
  /** JSON, but not a canonical journal entry: written by something other than the journal. */
  | { readonly kind: 'invalid'; readonly message: string };

/**
 * Parses one journal line and checks its hash, accepting only the canonical encoding (the one the
 * agent writes and the server recomputes), so a line that verifies here verifies everywhere.
 */
export function parseEntryLine(line: string, sha256Hex: Sha256Hex): LineParse {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { kind: 'garbage' };
  }
  if (!isPlainObject(raw)) return { kind: 'invalid', message: 'not a JSON object' };
  const keys = Object.keys(raw);
  if (keys.length !== TOP_LEVEL_KEYS.length || keys.some((key, i) => key !== TOP_LEVEL_KEYS[i])) {
    return { kind: 'invalid', message: 'fields missing, unknown or out of canonical order' };
  }
  const { data, hash, prev, seq, time, type, tz } = raw;
  if (!isPlainObject(data)) return { kind: 'invalid', message: 'data is not an object' };
  if (typeof hash !== 'string' || !HEX64.test(hash)) return { kind: 'invalid', message: 'bad hash field' };
  if (typeof prev !== 'string' || !HEX64.test(prev)) return { kind: 'invalid', message: 'bad prev field' };
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return { kind: 'invalid', message: 'bad seq field' };
  if (typeof time !== 'string' || !TIME.test(time)) return { kind: 'invalid', message: 'bad time field' };
  if (typeof type !== 'string' || type.length > 64 || !EVENT_TYPE_PATTERN.test(type)) return { kind: 'invalid', message: 'bad type field' };
  if (typeof tz !== 'string' || !TZ.test(tz)) return { kind: 'invalid', message: 'bad tz field' };

  const cut = line.lastIndexOf(HASH_MEMBER);
  // `"data":` starts at 1 and is 7 characters long; the data value runs to the hash member.
  if (cut - 8 > MAX_EVENT_DATA_CHARS) return { kind: 'invalid', message: 'data too large' };
  // Canonical: V8 re-serialises the parsed value to exactly this line (no white space, standard
  // escapes, keys in source order) and every object's keys are sorted, or else it fits the slow,
  // authoritative comparison (integer-like keys are the one case V8 orders differently).
  if (!(JSON.stringify(raw) === line && keysSorted(data)) && canonicalJson(raw) !== line) {
    return { kind: 'invalid', message: 'not in canonical encoding' };
  }
  const entry = raw as unknown as JournalEntry;
  const hashInput = line.slice(0, cut) + line.slice(cut + HASH_MEMBER.length + 65);
  return { kind: 'entry', entry, hashOk: sha256Hex(hashInput) === hash };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function keysSorted(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (Array.isArray(value)) return value.every(keysSorted);
  const keys = Object.keys(value);
  for (let i = 1; i < keys.length; i += 1) if (keys[i - 1]! >= keys[i]!) return false;
  return keys.every((key) => keysSorted((value as Record<string, unknown>)[key]));
}
