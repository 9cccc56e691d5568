/**
 * RFC 5424 syslog messages and RFC 6587 octet-counting framing, for forwarding journal events to a
 * SIEM. Pure functions: no sockets here (see forwarder.ts).
 *
 *   SYSLOG-MSG = HEADER SP STRUCTURED-DATA [SP MSG]
 *   HEADER     = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID
 *
 * Everything a terminal supplies is hostile until proven otherwise: header fields are reduced to
 * PRINTUSASCII (%d33-126) within their RFC lengths (or NILVALUE), PARAM-VALUEs are escaped per
 * §6.3.3 (`"`, `\` and `]` get a backslash) with control characters replaced, and MSG is UTF-8
 * starting with a BOM (§6.4) — with octet counting, its content can never break the framing.
 */

export const NILVALUE = '-';
const BOM = '\uFEFF';

/** RFC 5424 §6.2.1 severities. */
export const Severity = {
  emergency: 0,
  alert: 1,
  critical: 2,
  error: 3,
  warning: 4,
  notice: 5,
  informational: 6,
  debug: 7,
} as const;

/** Facility 13 is "log audit" (RFC 5424 table 1): what a security journal is. */
export const DEFAULT_FACILITY = 13;

export interface StructuredDataElement {
  /** SD-ID: `name@<private enterprise number>` for non-IANA ids (§7.2.2). */
  readonly id: string;
  readonly params: readonly (readonly [name: string, value: string])[];
}

export interface SyslogMessage {
  readonly facility: number;
  readonly severity: number;
  /** Already validated or null (NILVALUE). */
  readonly timestamp: string | null;
  readonly hostname: string | null;
  readonly appName: string | null;
  readonly procId: string | null;
  readonly msgId: string | null;
  readonly structuredData: readonly StructuredDataElement[];
  /** Free text (UTF-8, sent after a BOM); null: no MSG. */
  readonly message: string | null;
}

/** Field lengths from RFC 5424 §6 (ABNF). */
export const MAX_HOSTNAME = 255;
export const MAX_APP_NAME = 48;
export const MAX_PROCID = 128;
export const MAX_MSGID = 32;
export const MAX_SD_NAME = 32;
/** Our own cap on one PARAM-VALUE, in characters: a 16 KiB hostile string stays in MSG, not in SD. */
export const MAX_PARAM_VALUE = 1024;

/** True when every character is PRINTUSASCII (%d33-126) and the length is 1..max. */
export function isPrintUsAscii(value: string, max: number): boolean {
  return value.length >= 1 && value.length <= max && /^[\x21-\x7e]+$/.test(value);
}

/**
 * A header field: `value` when it is PRINTUSASCII within `max`, else characters outside
 * PRINTUSASCII replaced by `_` and the result cut to `max`; NILVALUE when nothing is left.
 */
export function headerField(value: string | null | undefined, max: number): string {
  if (value === null || value === undefined || value === '') return NILVALUE;
  if (isPrintUsAscii(value, max)) return value;
  const cleaned = Array.from(value, (char) => (/^[\x21-\x7e]$/.test(char) ? char : '_'))
    .join('')
    .slice(0, max);
  return cleaned === '' || /^_+$/.test(cleaned) ? NILVALUE : cleaned;
}

/** SD-NAME (SD-ID and PARAM-NAME): PRINTUSASCII except `=`, SP, `]`, `"`; 1..32 characters. Throws: names are ours, never a terminal's. */
export function assertSdName(name: string): void {
  if (!/^[\x21-\x7e]{1,32}$/.test(name) || /[= \]"]/.test(name)) throw new Error(`invalid SD-NAME ${JSON.stringify(name)}`);
}

/**
 * PARAM-VALUE escaping (§6.3.3): `"`, `\` and `]` are preceded by a backslash. Control characters
 * (C0, DEL, C1) are replaced by U+FFFD — they are valid UTF-8 but break SIEM parsers and log
 * viewers — and the value is cut to MAX_PARAM_VALUE characters (on a code point boundary).
 */
export function escapeParamValue(value: string): string {
  let text = Array.from(value).slice(0, MAX_PARAM_VALUE).join('');
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is matched here
  text = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '\uFFFD');
  return text.replace(/["\\\]]/g, (c) => `\\${c}`);
}

export function formatStructuredData(elements: readonly StructuredDataElement[]): string {
  if (elements.length === 0) return NILVALUE;
  return elements
    .map((element) => {
      assertSdName(element.id);
      const params = element.params.map(([name, value]) => {
        assertSdName(name);
        return ` ${name}="${escapeParamValue(value)}"`;
      });
      return `[${element.id}${params.join('')}]`;
    })
    .join('');
}

/** TIMESTAMP (§6.2.3): RFC 3339 with at most 6 fraction digits; anything else → null (NILVALUE). */
export function syslogTimestamp(iso: string): string | null {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/.test(iso) ? iso : null;
}

/**
 * The message as bytes: HEADER, STRUCTURED-DATA and, when present, SP BOM MSG. `maxBytes` cuts
 * MSG (never the header or SD) on a UTF-8 character boundary, as §6.1 allows a relay to truncate.
 */
export function formatSyslog(message: SyslogMessage, maxBytes = Infinity): Buffer {
  if (!Number.isInteger(message.facility) || message.facility < 0 || message.facility > 23) throw new Error('facility out of range');
  if (!Number.isInteger(message.severity) || message.severity < 0 || message.severity > 7) throw new Error('severity out of range');
  const pri = message.facility * 8 + message.severity;
  const header = [
    `<${pri}>1`,
    message.timestamp ?? NILVALUE,
    headerField(message.hostname, MAX_HOSTNAME),
    headerField(message.appName, MAX_APP_NAME),
    headerField(message.procId, MAX_PROCID),
    headerField(message.msgId, MAX_MSGID),
    formatStructuredData(message.structuredData),
  ].join(' ');
  const head = Buffer.from(header, 'utf8');
  if (message.message === null) return head;
  const body = Buffer.from(` ${BOM}${message.message}`, 'utf8');
  const room = maxBytes - head.length;
  if (body.length <= room) return Buffer.concat([head, body]);
  return Buffer.concat([head, truncateUtf8(body, Math.max(0, room))]);
}

/** The first `max` bytes of UTF-8 `bytes`, never splitting a character. */
export function truncateUtf8(bytes: Buffer, max: number): Buffer {
  if (bytes.length <= max) return bytes;
  let end = max;
  // Step back over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end);
}

/** RFC 6587 §3.4.1 octet counting: `MSG-LEN SP SYSLOG-MSG`. */
export function octetCountingFrame(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${message.length} `, 'ascii'), message]);
}
