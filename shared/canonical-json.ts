/**
 * Canonical JSON (the subset of RFC 8785 / JCS that journal entries need): object keys sorted by
 * UTF-16 code units, no white space, strings and numbers exactly as `JSON.stringify` writes them.
 * The journal's hash chain is defined over this encoding, so the agent, the server and the CLI
 * compute the same bytes for the same entry whatever order its keys arrived in.
 *
 * Throws `TypeError` for values JSON cannot represent faithfully (undefined in arrays, functions,
 * bigint, NaN/Infinity, objects that are not plain, nesting deeper than MAX_DEPTH, which also
 * catches cycles): hashing a lossy encoding would make two different entries collide.
 */
export function canonicalJson(value: unknown): string {
  // Fast path: when every object's keys are already in order (the usual case: built or parsed
  // canonically), the native JSON.stringify writes exactly the canonical bytes.
  if (alreadyCanonical(value, 0)) return JSON.stringify(value);
  // Next fastest: a copy with sorted keys, written natively. Not possible when a key is
  // integer-like: V8 always puts those first, in numeric order, whatever the insertion order.
  const sorted = sortedCopy(value);
  return sorted === NOT_SORTABLE ? encode(value, 0) : JSON.stringify(sorted);
}

const NOT_SORTABLE = Symbol('not sortable');
const INTEGER_LIKE = /^(?:0|[1-9][0-9]*)$/;

/** A deep copy whose objects have their keys inserted in sorted order (input already validated). */
function sortedCopy(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const items: unknown[] = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i += 1) {
      const item = sortedCopy(value[i]);
      if (item === NOT_SORTABLE) return NOT_SORTABLE;
      items[i] = item;
    }
    return items;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  const copy: Record<string, unknown> = {};
  for (const key of keys) {
    if (INTEGER_LIKE.test(key)) return NOT_SORTABLE;
    const item = sortedCopy(record[key]);
    if (item === NOT_SORTABLE) return NOT_SORTABLE;
    copy[key] = item;
  }
  return copy;
}

/** Validates like `encode` (same TypeErrors) and says whether every object's keys are sorted. */
function alreadyCanonical(value: unknown, depth: number): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number');
      return true;
    case 'object': {
      if (depth >= MAX_DEPTH) throw new TypeError('canonicalJson: nested too deep (or a cycle)');
      if (Array.isArray(value)) {
        let ready = true;
        for (const item of value) {
          if (item === undefined) throw new TypeError('canonicalJson: undefined in an array');
          ready = alreadyCanonical(item, depth + 1) && ready;
        }
        return ready;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new TypeError('canonicalJson: not a plain object');
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record);
      let ready = true;
      for (let i = 0; i < keys.length; i += 1) {
        if (i > 0 && !(keys[i - 1]! < keys[i]!)) ready = false;
        const item = record[keys[i]!];
        if (poisonedKey(keys[i]!, item)) throw new TypeError(`canonicalJson: refused key ${keys[i]}`);
        if (item !== undefined) ready = alreadyCanonical(item, depth + 1) && ready;
      }
      return ready;
    }
    default:
      throw new TypeError(`canonicalJson: cannot encode ${typeof value}`);
  }
}

/**
 * Deeper nesting is refused: no event needs it, it bounds the work a hostile value can cause, and
 * an entry must stay well inside the server's request nesting limit (64 levels for the whole body)
 * or the agent would journal an event it can never deliver.
 */
export const MAX_DEPTH = 32;

/**
 * Keys that JSON parsers guarding against prototype poisoning (fastify's secure-json-parse) refuse:
 * an object carrying one would be journaled here and then refused by the server forever.
 */
function poisonedKey(key: string, item: unknown): boolean {
  return key === '__proto__' || (key === 'constructor' && typeof item === 'object' && item !== null && 'prototype' in item);
}

function encode(value: unknown, depth: number): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number');
      return JSON.stringify(value);
    case 'object':
      if (depth >= MAX_DEPTH) throw new TypeError('canonicalJson: nested too deep (or a cycle)');
      return Array.isArray(value) ? encodeArray(value, depth + 1) : encodeObject(value, depth + 1);
    default:
      throw new TypeError(`canonicalJson: cannot encode ${typeof value}`);
  }
}

function encodeArray(items: readonly unknown[], depth: number): string {
  let out = '[';
  for (let i = 0; i < items.length; i += 1) {
    if (items[i] === undefined) throw new TypeError('canonicalJson: undefined in an array');
    if (i > 0) out += ',';
    out += encode(items[i], depth);
  }
  return out + ']';
}

function encodeObject(value: object, depth: number): string {
  const proto = Object.getPrototypeOf(value) as unknown;
  // A Date, Map or class instance would encode as {} or lose fields: refuse, don't guess.
  if (proto !== Object.prototype && proto !== null) throw new TypeError('canonicalJson: not a plain object');
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  // Most objects arrive sorted already (they were built or parsed canonically): skip the sort then.
  let sorted = true;
  for (let i = 1; i < keys.length && sorted; i += 1) sorted = keys[i - 1]! < keys[i]!;
  if (!sorted) keys.sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue; // as JSON.stringify: an undefined member is absent
    if (poisonedKey(key, item)) throw new TypeError(`canonicalJson: refused key ${key}`);
    out += (first ? '' : ',') + JSON.stringify(key) + ':' + encode(item, depth);
    first = false;
  }
  return out + '}';
}
