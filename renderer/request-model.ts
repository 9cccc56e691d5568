import { t, type Locale, type MessageKey } from '../shared/i18n.js';
import type { LocalRequestView, PresentDevice, RequestRefusalCode, StatusView } from '../shared/ipc.js';
import { bridgeErrorMessage, fill } from './lock-model.js';
import type { BridgeErrorCode, RequestDraft } from './preload-api.js';
import { accessText, dateTimeText, isBlocked } from './status-model.js';

/**
 * The request form's decisions, without the DOM: which devices can be asked for, the device chosen
 * by the page's `#device=` fragment, the end of the window from a preset (in the page's local time,
 * sent as ISO with the local offset), the checks before sending, and the words for refusals and
 * request states. Only type imports from `shared/ipc.ts` (its zod schemas never load in the page).
 */

/** `MAX_REQUEST_WINDOW_MS` and `REQUEST_PURPOSE_MAX` of `shared/requests.ts` (a test keeps them equal; that module loads zod). */
export const MAX_WINDOW_MS = 90 * 86_400_000;
export const PURPOSE_MAX = 500;

const DAY_MS = 86_400_000;

export const UNTIL_PRESETS = ['today', 'day', 'week', 'custom'] as const;
export type UntilPreset = (typeof UNTIL_PRESETS)[number];
export type Access = RequestDraft['access'];

/** Minutes east of UTC at the instant `ms` (the page's time zone unless a test passes its own). */
export type OffsetMinutes = (ms: number) => number;
export const localOffsetMinutes: OffsetMinutes = (ms) => -new Date(ms).getTimezoneOffset();

/** The devices staff can ask for: present ones the agent does not allow. */
export function requestableDevices(view: StatusView | null): PresentDevice[] {
  return view === null ? [] : view.devices.filter(isBlocked);
}

/**
 * The device key in the page's fragment, `#device=<encodeURIComponent(key)>` (main opens the form
 * so; a query string would not be our page), or null.
 */
export function deviceFromHash(hash: string): string | null {
  const fragment = hash.startsWith('#') ? hash.slice(1) : hash;
  for (const part of fragment.split('&')) {
    if (!part.startsWith('device=')) continue;
    try {
      const key = decodeURIComponent(part.slice('device='.length));
      return key === '' ? null : key;
    } catch {
      return null;
    }
  }
  return null;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** `ms` (whole seconds) as ISO 8601 with the local offset, e.g. 2025-11-26T23:59:59+09:00. */
export function isoWithOffset(ms: number, offset: OffsetMinutes = localOffsetMinutes): string {
  const whole = Math.floor(ms / 1000) * 1000;
  const minutes = offset(whole);
  const wall = new Date(whole + minutes * 60_000);
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return (
    `${pad(wall.getUTCFullYear(), 4)}-${pad(wall.getUTCMonth() + 1)}-${pad(wall.getUTCDate())}` +
    `T${pad(wall.getUTCHours())}:${pad(wall.getUTCMinutes())}:${pad(wall.getUTCSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

/** The value a `datetime-local` input shows for `ms` (minutes), e.g. 2025-11-26T23:59. */
export function localInputValue(ms: number, offset: OffsetMinutes = localOffsetMinutes): string {
  return isoWithOffset(ms, offset).slice(0, 16);
}

/** Local wall-clock milliseconds (as if UTC) → the instant, for the offset in force then. */
function fromWall(wallMs: number, offset: OffsetMinutes): number {
  const guess = wallMs - offset(wallMs) * 60_000;
  return wallMs - offset(guess) * 60_000;
}

/** A `datetime-local` value (local time) → the instant, or null when it is not a real time. */
export function parseLocalInput(value: string, offset: OffsetMinutes = localOffsetMinutes): number | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?$/.exec(value.trim());
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1).map((part) => Number(part ?? 0)) as [number, number, number, number, number, number];
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(wall);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || check.getUTCHours() !== hour || check.getUTCMinutes() !== minute) {
    return null;
  }
  return fromWall(wall, offset);
}

export type WindowError = 'customMissing' | 'past' | 'tooFar';
export type WindowEnd = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly error: WindowError };

/**
 * The end of the window the staff member picked, against `nowMs` (the agent's clock): 本日中 is
 * 23:59:59 local today, 1日 and 1週間 count from now, 日時を指定 reads the `datetime-local` value.
 * It must be after now and at most 90 days away (the agent checks the same).
 */
export function windowEnd(preset: UntilPreset, nowMs: number, custom: string, offset: OffsetMinutes = localOffsetMinutes): WindowEnd {
  let ms: number;
  switch (preset) {
    case 'today': {
      const wall = nowMs + offset(nowMs) * 60_000;
      ms = fromWall(Math.floor(wall / DAY_MS) * DAY_MS + DAY_MS - 1000, offset);
      break;
    }
    case 'day':
      ms = nowMs + DAY_MS;
      break;
    case 'week':
      ms = nowMs + 7 * DAY_MS;
      break;
    case 'custom': {
      if (custom.trim() === '') return { ok: false, error: 'customMissing' };
      const parsed = parseLocalInput(custom, offset);
      if (parsed === null) return { ok: false, error: 'customMissing' };
      ms = parsed;
      break;
    }
  }
  ms = Math.floor(ms / 1000) * 1000;
  if (ms <= nowMs) return { ok: false, error: 'past' };
  if (ms - nowMs > MAX_WINDOW_MS) return { ok: false, error: 'tooFar' };
  return { ok: true, ms };
}

/** Bounds for the `datetime-local` input: from now to 90 days ahead (minutes). */
export function customBounds(nowMs: number, offset: OffsetMinutes = localOffsetMinutes): { min: string; max: string } {
  return { min: localInputValue(nowMs + 60_000, offset), max: localInputValue(nowMs + MAX_WINDOW_MS, offset) };
}

export interface FormInput {
  readonly deviceKey: string | null;
  readonly purpose: string;
  readonly preset: UntilPreset;
  readonly custom: string;
  readonly access: Access;
}
export type FormField = 'device' | 'purpose' | 'until';
export type FormError = 'noDevice' | 'purposeEmpty' | 'purposeTooLong' | WindowError;
export type DraftCheck = { readonly ok: true; readonly draft: RequestDraft } | { readonly ok: false; readonly error: FormError; readonly field: FormField };

/** The draft to send, or the first problem and the field to focus. */
export function checkDraft(input: FormInput, nowMs: number, offset: OffsetMinutes = localOffsetMinutes): DraftCheck {
  if (input.deviceKey === null || input.deviceKey === '') return { ok: false, error: 'noDevice', field: 'device' };
  const purpose = input.purpose.trim();
  if (purpose === '') return { ok: false, error: 'purposeEmpty', field: 'purpose' };
  if (purpose.length > PURPOSE_MAX) return { ok: false, error: 'purposeTooLong', field: 'purpose' };
  const end = windowEnd(input.preset, nowMs, input.custom, offset);
  if (!end.ok) return { ok: false, error: end.error, field: 'until' };
  return { ok: true, draft: { deviceKey: input.deviceKey, purpose, until: isoWithOffset(end.ms, offset), access: input.access } };
}

export function formErrorText(error: FormError, locale: Locale): string {
  const key: MessageKey = `request.error.${error}`;
  return t(key, locale);
}

export function purposeCounterText(length: number, locale: Locale): string {
  return fill(t('request.purpose.counter', locale), { n: length, max: PURPOSE_MAX });
}

/** Every refusal code of the agent (`REQUEST_REFUSAL_CODES`) with its words: the type keeps the list complete. */
const REFUSAL_KEYS: Readonly<Record<RequestRefusalCode, MessageKey>> = {
  'no-console-user': 'request.refusal.no-console-user',
  'no-such-device': 'request.refusal.no-such-device',
  'not-blocked': 'request.refusal.not-blocked',
  'purpose-empty': 'request.refusal.purpose-empty',
  'bad-window': 'request.refusal.bad-window',
};

const isRefusalCode = (code: string): code is RequestRefusalCode => Object.hasOwn(REFUSAL_KEYS, code);

/**
 * Why a submit failed, in words: the agent's refusal (`error.reason`; a `code: message` text is read
 * too), the protection service unreachable, or main's own error.
 */
export function submitErrorText(error: { readonly code: BridgeErrorCode; readonly message: string; readonly reason?: string }, locale: Locale): string {
  switch (error.code) {
    case 'agent-refused': {
      const reason = error.reason ?? /^([a-z-]+):/.exec(error.message)?.[1] ?? '';
      return t(isRefusalCode(reason) ? REFUSAL_KEYS[reason] : 'request.refusal.other', locale);
    }
    case 'agent-unavailable':
      return t('request.error.agentUnavailable', locale);
    case 'bad-answer':
    case 'refused':
    case 'internal':
      return bridgeErrorMessage(error.code, locale);
  }
}

export function requestStateText(state: LocalRequestView['state'], locale: Locale): string {
  const key: MessageKey = `request.state.${state}`;
  return t(key, locale);
}

/** An approval narrower than the request: an earlier end, or read-only instead of read-write. */
export function isNarrowed(request: LocalRequestView): boolean {
  if (request.state !== 'approved') return false;
  const asked = Date.parse(request.until);
  const approved = request.approvedUntil === null ? NaN : Date.parse(request.approvedUntil);
  const earlier = !Number.isNaN(asked) && !Number.isNaN(approved) && approved < asked;
  const narrower = request.access === 'read-write' && request.approvedAccess === 'read-only';
  return earlier || narrower;
}

/** The lines of one of my requests, beyond its state and device. */
export function requestLines(request: LocalRequestView, locale: Locale): { purpose: string; asked: string; approved: string | null; narrowed: string | null; reason: string | null; submitted: string } {
  const approved =
    request.state === 'approved'
      ? fill(t('request.list.approved', locale), {
          until: dateTimeText(request.approvedUntil ?? request.until, locale),
          access: accessText(request.approvedAccess ?? request.access, locale),
        })
      : null;
  return {
    purpose: fill(t('request.list.purpose', locale), { purpose: request.purpose }),
    asked: fill(t('request.list.asked', locale), { until: dateTimeText(request.until, locale), access: accessText(request.access, locale) }),
    approved,
    narrowed: isNarrowed(request) ? t('request.list.narrowed', locale) : null,
    reason: request.reason === null || request.reason === '' ? null : fill(t('request.list.reason', locale), { reason: request.reason }),
    submitted: fill(t('request.list.submittedAt', locale), { at: dateTimeText(request.submittedAt, locale) }),
  };
}
