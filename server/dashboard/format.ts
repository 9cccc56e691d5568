import { t, type Locale, type MessageKey } from '../../shared/i18n.js';

/**
 * The dashboard's decisions that need no DOM: how times, states and messages read, how a policy
 * is prepared for editing, where a JSON error is. Unit-tested without a browser
 * (test/dashboard/format.test.ts).
 */

/** `template` with every `{name}` replaced by `values[name]`. */
export function fill(template: string, values: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in values ? String(values[name]) : whole));
}

/** A date and time for people, in the browser's time zone (or `timeZone`). */
export function formatTime(iso: string | null | undefined, locale: Locale, timeZone?: string): string {
  if (iso === null || iso === undefined || iso === '') return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(locale === 'ja' ? 'ja-JP' : 'en-GB', {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false,
    ...(timeZone === undefined ? {} : { timeZone }),
  }).format(date);
}

/** "3分前" / "3 min ago" (the server's `now`, so a wrong client clock does not matter). */
export function agoText(iso: string | null, nowIso: string, locale: Locale): string {
  if (iso === null) return t('admin.time.never', locale);
  const seconds = Math.max(0, Math.round((Date.parse(nowIso) - Date.parse(iso)) / 1000));
  if (seconds < 60) return fill(t('admin.time.secondsAgo', locale), { n: seconds });
  if (seconds < 3600) return fill(t('admin.time.minutesAgo', locale), { n: Math.floor(seconds / 60) });
  if (seconds < 86_400) return fill(t('admin.time.hoursAgo', locale), { n: Math.floor(seconds / 3600) });
  return fill(t('admin.time.daysAgo', locale), { n: Math.floor(seconds / 86_400) });
}

const TIER_KEYS: Readonly<Record<string, MessageKey>> = {
  mynumber: 'admin.tier.mynumber',
  lgwan: 'admin.tier.lgwan',
  internet: 'admin.tier.internet',
};

export function tierLabel(tier: string, locale: Locale): string {
  const key = TIER_KEYS[tier];
  return key === undefined ? tier : t(key, locale);
}

const LOCK_KEYS: Readonly<Record<string, MessageKey>> = {
  locked: 'admin.lock.locked',
  'second-factor': 'admin.lock.secondFactor',
  unlocked: 'admin.lock.unlocked',
  unknown: 'admin.lock.unknown',
};

export function lockLabel(state: string | null, locale: Locale): string {
  if (state === null) return '—';
  const key = LOCK_KEYS[state];
  return key === undefined ? state : t(key, locale);
}

const DECISION_KEYS: Readonly<Record<string, MessageKey>> = {
  'device.allowed': 'admin.decision.allowed',
  'device.blocked': 'admin.decision.blocked',
  'device.readonly': 'admin.decision.readonly',
};

export function decisionLabel(type: string, locale: Locale): string {
  const key = DECISION_KEYS[type];
  return key === undefined ? type : t(key, locale);
}

const COMMAND_STATE_KEYS: Readonly<Record<string, MessageKey>> = {
  queued: 'admin.command.queued',
  delivered: 'admin.command.delivered',
  succeeded: 'admin.command.succeeded',
  failed: 'admin.command.failed',
  cancelled: 'admin.command.cancelled',
};

export function commandStateLabel(state: string, locale: Locale): string {
  const key = COMMAND_STATE_KEYS[state];
  return key === undefined ? state : t(key, locale);
}

const ACTION_KEYS: Readonly<Record<string, MessageKey>> = {
  unlock: 'admin.recovery.action.unlock',
  'reset-lockout': 'admin.recovery.action.resetLockout',
};

export function recoveryActionLabel(action: string, locale: Locale): string {
  const key = ACTION_KEYS[action];
  return key === undefined ? action : t(key, locale);
}

/** Journal event types an administrator should notice, as the terminal list counts them. */
const VIOLATION_TYPES = new Set(['device.blocked', 'export.blocked', 'network.violation']);

export function eventFlag(type: string): 'tamper' | 'violation' | null {
  if (type === 'tamper.detected') return 'tamper';
  return VIOLATION_TYPES.has(type) ? 'violation' : null;
}

/** A value from a terminal as one line of JSON text (rendered with textContent, never as markup). */
export function dataText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return String(value);
  }
}

/**
 * The server's policy validation message (`path: message; path: message`, a bad rule as
 * `usb.rules[i]: line L, column C: …`) as one problem per line.
 */
export function policyProblems(message: string): string[] {
  return message
    .split(/;\s+(?=[\w.[\]()]+: )/)
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/** The fields the server sets itself on publish: left out of the editor. */
const SERVER_SET_FIELDS = new Set(['version', 'issuedAt', 'tier']);

/** A policy document as the editor shows it: without version, issuedAt and tier, indented. */
export function editablePolicy(policy: Readonly<Record<string, unknown>>): string {
  const editable: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(policy)) if (!SERVER_SET_FIELDS.has(key)) editable[key] = value;
  return JSON.stringify(editable, null, 2);
}

/** Line and column (1-based) of character `offset` in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 };
}

/**
 * Parses the editor's text: the value, or why it is not JSON and where (line and column of the
 * first character that cannot continue a JSON text, found by `jsonErrorOffset`: engines word their
 * messages differently and do not always give a position).
 */
export function parseEditorJson(text: string): { ok: true; value: unknown } | { ok: false; message: string; line: number | null; column: number | null } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const offset = jsonErrorOffset(text);
    if (offset === null) return { ok: false, message, line: null, column: null };
    const { line, column } = lineColumn(text, offset);
    return { ok: false, message, line, column };
  }
}

/** The offset of the first character where `text` stops being valid JSON (RFC 8259), or null when it is valid. */
export function jsonErrorOffset(text: string): number | null {
  let at = 0;
  const fail = (): never => {
    throw new JsonSyntaxAt(at);
  };
  const space = (): void => {
    while (at < text.length && ' \t\n\r'.includes(text[at]!)) at += 1;
  };
  const literal = (word: string): void => {
    for (const char of word) {
      if (text[at] !== char) fail();
      at += 1;
    }
  };
  const string = (): void => {
    at += 1; // the opening quote
    for (;;) {
      const char = text[at];
      if (char === undefined || char < ' ') fail();
      if (char === '"') {
        at += 1;
        return;
      }
      if (char === '\\') {
        at += 1;
        const escape = text[at];
        if (escape === 'u') {
          for (let i = 1; i <= 4; i += 1) {
            if (!/[0-9a-fA-F]/.test(text[at + i] ?? '')) {
              at += i;
              fail();
            }
          }
          at += 5;
          continue;
        }
        if (escape === undefined || !'"\\/bfnrt'.includes(escape)) fail();
      }
      at += 1;
    }
  };
  const number = (): void => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(at));
    if (match === null || match[0] === '' || match[0] === '-') fail();
    at += match![0].length;
  };
  const value = (depth: number): void => {
    if (depth > 1000) fail();
    space();
    const char = text[at];
    if (char === '{') {
      at += 1;
      space();
      if (text[at] === '}') {
        at += 1;
        return;
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail();
        string();
        space();
        if (text[at] !== ':') fail();
        at += 1;
        value(depth + 1);
        space();
        if (text[at] === ',') {
          at += 1;
          continue;
        }
        if (text[at] === '}') {
          at += 1;
          return;
        }
        fail();
      }
    } else if (char === '[') {
      at += 1;
      space();
      if (text[at] === ']') {
        at += 1;
        return;
      }
      for (;;) {
        value(depth + 1);
        space();
        if (text[at] === ',') {
          at += 1;
          continue;
        }
        if (text[at] === ']') {
          at += 1;
          return;
        }
        fail();
      }
    } else if (char === '"') string();
    else if (char === 't') literal('true');
    else if (char === 'f') literal('false');
    else if (char === 'n') literal('null');
    else if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) number();
    else fail();
  };
  try {
    value(0);
    space();
    if (at < text.length) fail();
    return null;
  } catch (error) {
    if (error instanceof JsonSyntaxAt) return error.offset;
    throw error;
  }
}

class JsonSyntaxAt extends Error {
  constructor(readonly offset: number) {
    super(`JSON syntax error at ${offset}`);
  }
}

/** A recovery response or challenge split into its groups for reading aloud. */
export function codeGroups(code: string): string[] {
  return code.split('-').filter((group) => group !== '');
}

/** The editor's starting point for a tier with no published policy (the strict built-in defaults). */
export const POLICY_TEMPLATE = {
  mode: 'enforce',
  usb: { rules: ['allow with-interface equals { 03:*:* }', 'block'], readOnly: [], implicit: 'block' },
  lock: { idleSeconds: 300, onResume: true, onSessionStart: true, factors: ['pin', 'totp'], maxFailures: 5, offlineDays: 14 },
  network: { allowedCidrs: [], onViolation: 'alert' },
  report: { heartbeatSeconds: 60 },
  exceptions: [],
} as const;

/** A `datetime-local` value (`2026-11-26T15:30`, the browser's time zone) as an ISO instant with offset; null if unreadable. */
export function localInputToIso(value: string): string | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (match === null) return null;
  const [, y, mo, d, hh, mm, ss] = match;
  const date = new Date(Number(y), Number(mo) - 1, Number(d), Number(hh), Number(mm), Number(ss ?? '0'));
  if (Number.isNaN(date.getTime())) return null;
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const pad = (n: number): string => String(Math.trunc(Math.abs(n))).padStart(2, '0');
  return `${y}-${mo}-${d}T${hh}:${mm}:${ss ?? '00'}${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

/** An ISO instant as a `datetime-local` value in the browser's time zone (minutes). */
export function isoToLocalInput(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A JST calendar date (`2026-11-26`) for `ms`. */
export function jstDate(ms: number): string {
  return new Date(ms + 9 * 3_600_000).toISOString().slice(0, 10);
}
