import { describeCharacter, lineError, type LineError } from './errors.js';
import { decodeUtf8 } from './utf8.js';

/**
 * Tokens of one rule line. The rule grammar (USBGuard's RuleParser/Grammar.hpp) is character-level
 * and cares where blanks are — `name "x"` is valid, `name"x"` and `one-of{…}` are not — so every
 * token records whether blanks preceded it and the parser checks the places that need them.
 */
export type Token =
  | { readonly kind: 'word'; readonly text: string; readonly index: number; readonly blankBefore: boolean }
  | { readonly kind: 'string'; readonly value: string; readonly index: number; readonly blankBefore: boolean }
  | { readonly kind: 'open' | 'close'; readonly index: number; readonly blankBefore: boolean }
  /** A `#` comment, running to the end of the line. */
  | { readonly kind: 'comment'; readonly index: number; readonly blankBefore: boolean }
  | { readonly kind: 'end'; readonly index: number; readonly blankBefore: boolean }
  /** The lexer stopped here; the parser reports it when it gets this far. */
  | { readonly kind: 'error'; readonly error: LineError; readonly index: number; readonly blankBefore: boolean };

/** USBGuard's `ascii::blank`: space and tab only. */
function isBlank(unit: number): boolean {
  return unit === 0x20 || unit === 0x09;
}

/** Printable ASCII other than the characters that delimit tokens. */
function isWordUnit(unit: number): boolean {
  return unit > 0x20 && unit < 0x7f && unit !== 0x7b && unit !== 0x7d && unit !== 0x22 && unit !== 0x23;
}

function isHexUnit(unit: number): boolean {
  return (unit >= 0x30 && unit <= 0x39) || (unit >= 0x41 && unit <= 0x46) || (unit >= 0x61 && unit <= 0x66);
}

/**
 * Splits one line (no `\n` in it) into tokens. Never throws; a lexical error becomes the last token.
 * Runs in time linear in the line length.
 */
export function tokenize(line: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  for (;;) {
    const start = i;
    while (i < line.length && isBlank(line.charCodeAt(i))) i++;
    const blankBefore = i > start;
    if (i >= line.length) {
      tokens.push({ kind: 'end', index: i, blankBefore });
      return tokens;
    }
    const unit = line.charCodeAt(i);
    if (unit === 0x23 /* # */) {
      tokens.push({ kind: 'comment', index: i, blankBefore });
      return tokens;
    }
    if (unit === 0x7b /* { */ || unit === 0x7d /* } */) {
      tokens.push({ kind: unit === 0x7b ? 'open' : 'close', index: i, blankBefore });
      i++;
      continue;
    }
    if (unit === 0x22 /* " */) {
      const scanned = scanString(line, i);
      if ('code' in scanned) {
        tokens.push({ kind: 'error', error: scanned, index: scanned.index, blankBefore });
        return tokens;
      }
      tokens.push({ kind: 'string', value: scanned.value, index: i, blankBefore });
      i = scanned.end;
      continue;
    }
    if (isWordUnit(unit)) {
      const wordStart = i;
      while (i < line.length && isWordUnit(line.charCodeAt(i))) i++;
      tokens.push({ kind: 'word', text: line.slice(wordStart, i), index: wordStart, blankBefore });
      continue;
    }
    const character = String.fromCodePoint(line.codePointAt(i) ?? unit);
    const error = lineError(
      'invalid-character',
      i,
      `unexpected character ${describeCharacter(character)}; outside quotes a rule uses ASCII only, separated by spaces or tabs`,
    );
    tokens.push({ kind: 'error', error, index: i, blankBefore });
    return tokens;
  }
}

/**
 * Scans a quoted string starting at the `"` at `open`. Escapes follow what USBGuard 1.1 accepts in
 * practice (its grammar admits more, but `Utility::unescapeString` then refuses them): `\"`, `\\` and
 * `\xHH`. A run of `\xHH` escapes is a UTF-8 byte sequence, as in USBGuard's own output
 * (`name "\xe6\x97\xa5"` is 日); bytes that are not valid UTF-8 are an error, never U+FFFD.
 * Raw characters other than CR and LF are taken as they are, tabs and control characters included.
 */
function scanString(line: string, open: number): { value: string; end: number } | LineError {
  let value = '';
  let bytes: number[] = [];
  let bytesStart = -1;
  const flushBytes = (): LineError | null => {
    if (bytes.length === 0) return null;
    const decoded = decodeUtf8(bytes);
    if (decoded === null) {
      const shown = bytes.map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
      return lineError('invalid-utf8', bytesStart, `the escapes ${shown} are not valid UTF-8`);
    }
    value += decoded;
    bytes = [];
    return null;
  };
  let i = open + 1;
  while (i < line.length) {
    const unit = line.charCodeAt(i);
    if (unit === 0x5c /* \ */ && line.charCodeAt(i + 1) === 0x78 /* x */) {
      if (!isHexUnit(line.charCodeAt(i + 2)) || !isHexUnit(line.charCodeAt(i + 3))) {
        return lineError('invalid-escape', i, 'a \\x escape needs two hex digits, e.g. \\x0a');
      }
      if (bytes.length === 0) bytesStart = i;
      bytes.push(parseInt(line.slice(i + 2, i + 4), 16));
      i += 4;
      continue;
    }
    const flushed = flushBytes();
    if (flushed !== null) return flushed;
    if (unit === 0x22 /* " */) return { value, end: i + 1 };
    if (unit === 0x5c /* \ */) {
      const next = line.charCodeAt(i + 1);
      if (next === 0x22 || next === 0x5c) {
        value += line[i + 1];
        i += 2;
        continue;
      }
      const shown = i + 1 < line.length ? `\\${line[i + 1] ?? ''}` : 'a lone \\ at the end of the line';
      return lineError(
        'invalid-escape',
        i,
        `unsupported escape ${shown}; USBGuard strings accept only \\", \\\\ and \\xHH (e.g. \\x0a for a line feed)`,
      );
    }
    if (unit === 0x0d || unit === 0x0a) {
      return lineError('invalid-character', i, `${describeCharacter(line[i] ?? '')} inside a string; write it as \\x${unit.toString(16).padStart(2, '0')}`);
    }
    if (unit >= 0xd800 && unit <= 0xdfff) {
      if (unit <= 0xdbff && isLowSurrogate(line.charCodeAt(i + 1))) {
        value += line.slice(i, i + 2);
        i += 2;
        continue;
      }
      return lineError('invalid-character', i, `${describeCharacter(line[i] ?? '')} is an unpaired surrogate, which has no UTF-8 form`);
    }
    value += line[i];
    i++;
  }
  return lineError('unterminated-string', open, 'this string has no closing "');
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}
