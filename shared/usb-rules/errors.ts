/** Stable codes of rule-language errors. Tests and callers may rely on them; messages may change. */
export type RuleErrorCode =
  /** `parseRule`/`parseMatcher` got a blank or comment-only line. */
  | 'empty-rule'
  /** `parseRule`/`parseMatcher` got text with a line break. */
  | 'multiple-lines'
  /** A line longer than `MAX_RULE_LENGTH`. */
  | 'too-long'
  /** A character that cannot appear there (non-ASCII outside quotes, CR, unpaired surrogate, …). */
  | 'invalid-character'
  | 'unterminated-string'
  /** A backslash escape other than `\"`, `\\` and `\xHH`. */
  | 'invalid-escape'
  /** `\xHH` escapes whose bytes are not valid UTF-8. */
  | 'invalid-utf8'
  /** The rule does not start with `allow`, `block` or `reject`. */
  | 'unknown-target'
  /** A match rule (`parseMatcher`) that starts with a target. */
  | 'unexpected-target'
  | 'unknown-attribute'
  /** The same attribute twice in one rule (USBGuard rejects that too). */
  | 'duplicate-attribute'
  /** USBGuard's `if …` conditions; refused rather than ignored. */
  | 'conditions-unsupported'
  /** `label { … }`: a label is one string here. */
  | 'label-set-unsupported'
  /** Two tokens that the grammar separates with blanks were written together. */
  | 'missing-blank'
  /** An attribute without a value, or something else where a value belongs. */
  | 'expected-value'
  /** A set operator not followed by `{`. */
  | 'expected-set'
  | 'empty-set'
  | 'unterminated-set'
  | 'invalid-device-id'
  | 'invalid-interface'
  /** An unquoted value where the attribute takes a quoted string. */
  | 'expected-string'
  /** Anything else out of place (e.g. a stray `}`). */
  | 'unexpected-token';

/**
 * A rule-language error with its position. `line` and `column` are 1-based; the column counts
 * UTF-16 code units, as JavaScript strings and most editors do. For `parseRuleSet(string[])` the line
 * is the array index + 1. `message` already starts with the position, ready to show.
 */
export interface RuleError {
  readonly code: RuleErrorCode;
  readonly message: string;
  readonly line: number;
  readonly column: number;
}

/** Like `Result` in ../result.ts (and assignable to it), with a positioned error. */
export type RuleResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: RuleError };

/** An error found within one line: `index` is 0-based; the line number is added by the caller. */
export interface LineError {
  readonly code: RuleErrorCode;
  readonly detail: string;
  readonly index: number;
}

export function lineError(code: RuleErrorCode, index: number, detail: string): LineError {
  return { code, index, detail };
}

export function positioned(error: LineError, line: number): RuleError {
  const column = error.index + 1;
  return { code: error.code, line, column, message: `line ${line}, column ${column}: ${error.detail}` };
}

/** A readable name for a character in messages: `'x'`, or `U+3000 (ideographic space)`. */
export function describeCharacter(character: string): string {
  const codePoint = character.codePointAt(0) ?? 0;
  if (codePoint > 0x20 && codePoint < 0x7f) return `'${character}'`;
  const hex = `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
  const name = CHARACTER_NAMES[codePoint];
  return name === undefined ? hex : `${hex} (${name})`;
}

/** Characters that sneak into rules typed on Japanese keyboards or pasted from Windows tools. */
const CHARACTER_NAMES: Readonly<Record<number, string>> = {
  0x09: 'tab',
  0x0d: 'carriage return',
  0x20: 'space',
  0xa0: 'no-break space',
  0x3000: 'ideographic space',
  0xfeff: 'byte order mark',
  0xff02: 'fullwidth quotation mark',
  0xff5b: 'fullwidth left curly bracket',
  0xff5d: 'fullwidth right curly bracket',
  0x201c: 'left double quotation mark',
  0x201d: 'right double quotation mark',
};
