import { ATTRIBUTES, type AttributeSet, type Matcher, type Rule } from './rule.js';
import { encodeCodePoint } from './utf8.js';

/** Options for `formatRule` / `formatMatcher`. */
export interface FormatOptions {
  /**
   * Escape every character outside printable ASCII as `\xHH` UTF-8 bytes — byte for byte what
   * USBGuard's `Rule::toString()` prints, for files a USBGuard daemon reads. Default `false`:
   * printable Unicode such as Japanese labels stays readable.
   */
  readonly asciiOnly?: boolean;
}

/**
 * Prints a rule in USBGuard's canonical form (attribute order and set layout of `Rule::toString()`).
 * For any rule `parseRule` produced, `parseRule(formatRule(r))` gives back `r` exactly. A single
 * `equals` value prints without braces (`with-interface 08:*:*`), as USBGuard does; class names
 * print by name (they are Sekimori syntax). Throws only on a string with an unpaired surrogate,
 * which no parsed rule contains (a bug in the caller).
 */
export function formatRule(rule: Rule, options: FormatOptions = {}): string {
  const attributes = formatAttributes(rule, options);
  return attributes === '' ? rule.target : `${rule.target} ${attributes}`;
}

/** `formatRule` for a match rule (no target), e.g. a `readOnly` entry. */
export function formatMatcher(matcher: Matcher, options: FormatOptions = {}): string {
  return formatAttributes(matcher, options);
}

function formatAttributes(matcher: Matcher, options: FormatOptions): string {
  const parts: string[] = [];
  for (const spec of ATTRIBUTES) {
    if (spec.key === 'label') {
      if (matcher.label !== undefined) parts.push(`label ${quoteString(matcher.label, options)}`);
      continue;
    }
    const attribute = matcher[spec.key];
    if (attribute === undefined) continue;
    const quoted = spec.key !== 'id' && spec.key !== 'withInterface';
    parts.push(`${spec.keyword} ${formatSet(attribute, (value) => (quoted ? quoteString(value, options) : value))}`);
  }
  return parts.join(' ');
}

function formatSet(attribute: AttributeSet, formatValue: (value: string) => string): string {
  const values = attribute.values.map(formatValue);
  if (attribute.operator === 'equals' && values.length === 1) return values[0] ?? '';
  const operator = attribute.operator === 'equals' ? '' : `${attribute.operator} `;
  return `${operator}{ ${values.join(' ')} }`;
}

/**
 * Characters escaped even in readable output: controls, line/paragraph separators and invisible
 * format characters (bidi overrides, zero-width joiners, BOM…), so a printed rule shows everything
 * it matches on and cannot visually reorder itself in a dashboard or terminal.
 */
const ALWAYS_ESCAPED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/**
 * Quotes a string value: `"` and `\` are backslash-escaped; characters that must not print raw
 * become `\xHH` escapes of their UTF-8 bytes (the only numeric escape USBGuard accepts).
 */
export function quoteString(value: string, options: FormatOptions = {}): string {
  let out = '"';
  for (const character of value) {
    const codePoint = character.codePointAt(0) ?? 0;
    if (codePoint >= 0xd800 && codePoint <= 0xdfff) {
      throw new RangeError('cannot format a string with an unpaired UTF-16 surrogate');
    }
    if (character === '"' || character === '\\') {
      out += `\\${character}`;
    } else if (codePoint >= 0x20 && codePoint < 0x7f) {
      out += character;
    } else if (options.asciiOnly === true || ALWAYS_ESCAPED.test(character)) {
      out += encodeCodePoint(codePoint)
        .map((byte) => `\\x${byte.toString(16).padStart(2, '0')}`)
        .join('');
    } else {
      out += character;
    }
  }
  return `${out}"`;
}
