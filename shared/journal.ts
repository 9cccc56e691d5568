import { z } from 'zod';
import { canonicalJson } from './canonical-json.js';

/**
 * The audit journal's entry format and hash chain. This is the tamper-evident record of security
 * events (not a debug log): every entry names the hash of the one before it, so changing,
 * removing or reordering any entry breaks the chain at a seq everyone can point to.
 *
 * hash = SHA-256 (lower-case hex) of the canonical JSON of the entry without its `hash` field.
 * The hash function is injected: this module runs everywhere (no `node:crypto` here), and the
 * agent and server pass Node's native one.
 */

/** `prev` of the first entry of every journal. */
export const GENESIS_HASH = '0'.repeat(64);

/** Event types the agent writes today (DESIGN.md §7). */
export const EVENT_TYPES = [
  'agent.started',
  'agent.stopped',
  'agent.enrolled',
  'journal.recovered',
  'device.attached',
  'device.detached',
  'device.allowed',
  'device.blocked',
  'device.readonly',
  'export.blocked',
  'export.allowed',
  'export.printed',
  'lock.locked',
  'lock.unlocked',
  'lock.secondFactor',
  'auth.failed',
  'auth.lockedOut',
  'auth.recovered',
  'auth.enrolled',
  'auth.verified',
  'auth.factorsReset',
  'ipc.refused',
  'command.executed',
  'policy.applied',
  'policy.rejected',
  'exception.granted',
  'exception.used',
  'exception.expired',
  'network.violation',
  'network.baseline',
  'tamper.detected',
  'selfcheck.result',
  'request.submitted',
  'request.decided',
  'operator.marker',
] as const;
export type KnownEventType = (typeof EVENT_TYPES)[number];

export function isKnownEventType(type: string): type is KnownEventType {
  return (EVENT_TYPES as readonly string[]).includes(type);
}

/** Event type names: `domain.name`, lower camel case parts. */
export const EVENT_TYPE_PATTERN = /^[a-z][a-zA-Z0-9]*(\.[a-z][a-zA-Z0-9]*)+$/;

/**
 * On the wire the server accepts any well-formed type name, not only today's list: an agent
 * updated before its server must not have its security events refused and stuck in its journal.
 * The agent itself only writes known types (see `isKnownEventType`).
 */
export const EventTypeSchema = z
  .string()
  .max(64)
  .regex(EVENT_TYPE_PATTERN, 'event type must look like "domain.name"');

export const HashSchema = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits (SHA-256)');

/** Largest canonical encoding of one entry's `data`, in characters. */
export const MAX_EVENT_DATA_CHARS = 16 * 1024;

export const EventDataSchema = z
  .record(z.string(), z.json())
  .refine((data) => canonicalJson(data).length <= MAX_EVENT_DATA_CHARS, {
    message: `event data larger than ${MAX_EVENT_DATA_CHARS} characters`,
  });

export const JournalEntrySchema = z.strictObject({
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  /** UTC, millisecond precision: `2026-11-25T09:00:00.000Z`. */
  time: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'time must be UTC ISO-8601 with milliseconds'),
  /** The UTC offset the user's clock showed, `+09:00`: auditors read local times. */
  tz: z.string().regex(/^[+-]\d{2}:\d{2}$/, 'tz must look like +09:00'),
  type: EventTypeSchema,
  data: EventDataSchema,
  prev: HashSchema,
  hash: HashSchema,
});
export type JournalEntry = z.infer<typeof JournalEntrySchema>;
export type UnhashedEntry = Omit<JournalEntry, 'hash'>;

export type Sha256Hex = (text: string) => string;

/**
 * Checks an event's data for the journal and returns its canonical JSON: a plain object of JSON
 * values (no undefined, NaN, Date, class instances, cycles) within MAX_EVENT_DATA_CHARS.
 */
export function encodeEventData(data: unknown): { ok: true; json: string } | { ok: false; message: string } {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { ok: false, message: 'data must be a JSON object' };
  let json: string;
  try {
    json = canonicalJson(data);
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : 'not JSON' };
  }
  if (json.length > MAX_EVENT_DATA_CHARS) return { ok: false, message: `event data larger than ${MAX_EVENT_DATA_CHARS} characters` };
  return { ok: true, json };
}

/**
 * Canonical JSON of an entry, written without sorting: the keys are fixed and their sorted order
 * is data, hash, prev, seq, time, type, tz. With `hash` null this is the hash input (the entry
 * without its hash). A property test holds it byte-identical to `canonicalJson`.
 */
function encodeFields(dataJson: string, hash: string | null, e: { prev: string; seq: number; time: string; type: string; tz: string }): string {
  const hashMember = hash === null ? '' : `,"hash":"${hash}"`;
  return `{"data":${dataJson}${hashMember},"prev":"${e.prev}","seq":${e.seq},"time":${jsonString(e.time)},"type":${jsonString(e.type)},"tz":${jsonString(e.tz)}}`;
}

/** Length of `{"data":`, where every encoding of an entry starts. */
const DATA_PREFIX_LENGTH = '{"data":'.length;

/** JSON string literal; skips JSON.stringify for the plain ASCII that time, type and tz always are. */
function jsonString(text: string): string {
  return PLAIN_ASCII.test(text) ? `"${text}"` : JSON.stringify(text);
}
const PLAIN_ASCII = /^[A-Za-z0-9.:+-]*$/;

/** `canonicalJson(entry without hash)`: the text an entry's hash is computed over. */
export function encodeUnhashed(entry: UnhashedEntry): string {
  return encodeFields(canonicalJson(entry.data), null, entry);
}

/** `canonicalJson(entry)`: one journal line, without its newline. */
export function encodeEntry(entry: JournalEntry): string {
  return encodeFields(canonicalJson(entry.data), entry.hash, entry);
}

/** The hash an entry must carry. */
export function entryHash(entry: UnhashedEntry, sha256Hex: Sha256Hex): string {
  return sha256Hex(encodeUnhashed(entry));
}

/**
 * Builds the entry after `head` ({ seq: 0, hash: GENESIS_HASH } for the first) and its journal
 * line. Throws TypeError when the data is not journal-able (see `encodeEventData`).
 */
export function chainEntry(
  head: { seq: number; hash: string },
  event: { time: string; tz: string; type: string; data: Record<string, unknown> },
  sha256Hex: Sha256Hex,
): { entry: JournalEntry; line: string } {
  const data = encodeEventData(event.data);
  if (!data.ok) throw new TypeError(`bad event data: ${data.message}`);
  const fields = { prev: head.hash, seq: head.seq + 1, time: event.time, type: event.type, tz: event.tz };
  const unhashed = encodeFields(data.json, null, fields);
  const hash = sha256Hex(unhashed);
  const entry: JournalEntry = { seq: fields.seq, time: fields.time, tz: fields.tz, type: fields.type, data: event.data as JournalEntry['data'], prev: fields.prev, hash };
  // The line is the unhashed encoding with the hash member spliced in after `{"data":…` (keys sorted).
  const cut = DATA_PREFIX_LENGTH + data.json.length;
  return { entry, line: `${unhashed.slice(0, cut)},"hash":"${hash}"${unhashed.slice(cut)}` };
}

export type ChainBreak = 'bad-seq' | 'bad-prev' | 'bad-hash';

export type ChainCheck =
  | { readonly ok: true; readonly seq: number; readonly hash: string }
  | { readonly ok: false; readonly seq: number; readonly reason: ChainBreak; readonly message: string };

/**
 * Checks that `entry` continues the chain whose head is `head` ({ seq: 0, hash: GENESIS_HASH }
 * before the first entry). Returns the new head, or where and why the chain breaks.
 */
export function checkLink(head: { seq: number; hash: string }, entry: JournalEntry, sha256Hex: Sha256Hex): ChainCheck {
  return checkLinkWithHash(head, entry, entryHash(entry, sha256Hex) === entry.hash);
}

/** `checkLink` for a caller that has already hashed the entry (the journal reader hashes the raw line). */
export function checkLinkWithHash(
  head: { seq: number; hash: string },
  entry: Pick<JournalEntry, 'seq' | 'prev' | 'hash'>,
  hashMatches: boolean,
): ChainCheck {
  if (entry.seq !== head.seq + 1) {
    return { ok: false, seq: entry.seq, reason: 'bad-seq', message: `expected seq ${head.seq + 1}, found ${entry.seq}` };
  }
  if (entry.prev !== head.hash) {
    return { ok: false, seq: entry.seq, reason: 'bad-prev', message: `seq ${entry.seq} does not follow the hash of seq ${head.seq}` };
  }
  if (!hashMatches) {
    return { ok: false, seq: entry.seq, reason: 'bad-hash', message: `seq ${entry.seq} does not match its hash (content changed)` };
  }
  return { ok: true, seq: entry.seq, hash: entry.hash };
}

/** The head of an empty chain. */
export const EMPTY_HEAD: { readonly seq: number; readonly hash: string } = Object.freeze({ seq: 0, hash: GENESIS_HASH });

/** Formats a UTC offset in minutes east of Greenwich as `+09:00`. */
export function formatUtcOffset(minutesEast: number): string {
  const sign = minutesEast < 0 ? '-' : '+';
  const abs = Math.abs(minutesEast);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${sign}${hh}:${mm}`;
}
