import { describe, expect, it } from 'vitest';
import { t } from '../../shared/i18n.js';
import { IpcRequestSchema, REQUEST_REFUSAL_CODES } from '../../shared/ipc.js';
import { MAX_REQUEST_WINDOW_MS, REQUEST_PURPOSE_MAX, REQUEST_STATES } from '../../shared/requests.js';
import {
  MAX_WINDOW_MS,
  PURPOSE_MAX,
  checkDraft,
  customBounds,
  deviceFromHash,
  formErrorText,
  isNarrowed,
  isoWithOffset,
  localInputValue,
  parseLocalInput,
  purposeCounterText,
  requestLines,
  requestStateText,
  requestableDevices,
  submitErrorText,
  windowEnd,
  type OffsetMinutes,
} from '../../renderer/request-model.js';
import { useTimeZone } from '../helpers/time-zone.js';
import { DAY, NOW_MS } from './scripted-backend.js';
import { CAMERA_KEY, EXCEPTION_DEVICE_KEY, USB_STICK_KEY, baseStatus, request } from './scripted-status-agent.js';

/** renderer/request-model.ts: the request form's decisions without a browser. */

const JST: OffsetMinutes = () => 9 * 60;
const UTC: OffsetMinutes = () => 0;
const INDIA: OffsetMinutes = () => 5 * 60 + 30;
const NEW_YORK_WINTER: OffsetMinutes = () => -5 * 60;
/** New York around the spring change (2026-03-08 07:00 UTC): -05:00 before, -04:00 after. */
const DST_CHANGE_MS = Date.parse('2026-03-08T07:00:00Z');
const NEW_YORK_DST: OffsetMinutes = (ms) => (ms < DST_CHANGE_MS ? -5 * 60 : -4 * 60);

// requestLines formats dates in the process's zone.
useTimeZone('Asia/Tokyo');

describe('the contract’s bounds', () => {
  it('match shared/requests.ts', () => {
    expect(MAX_WINDOW_MS).toBe(MAX_REQUEST_WINDOW_MS);
    expect(PURPOSE_MAX).toBe(REQUEST_PURPOSE_MAX);
  });
});

describe('the device', () => {
  it('is read from #device=<encodeURIComponent(key)>', () => {
    for (const key of [USB_STICK_KEY, CAMERA_KEY, 'key with spaces & = # ?', '日本語キー']) {
      expect(deviceFromHash(`#device=${encodeURIComponent(key)}`), key).toBe(key);
    }
    expect(deviceFromHash(`#x=1&device=${encodeURIComponent('1-2')}`)).toBe('1-2');
    expect(deviceFromHash('')).toBeNull();
    expect(deviceFromHash('#')).toBeNull();
    expect(deviceFromHash('#device=')).toBeNull();
    expect(deviceFromHash('#devices=1-2')).toBeNull();
    expect(deviceFromHash('#device=%E0%A4%A')).toBeNull();
  });

  it('can be any present device the agent does not allow', () => {
    expect(requestableDevices(baseStatus()).map((device) => device.key)).toEqual([USB_STICK_KEY, CAMERA_KEY, EXCEPTION_DEVICE_KEY]);
    expect(requestableDevices(null)).toEqual([]);
    expect(requestableDevices(baseStatus({ devices: [] }))).toEqual([]);
  });
});

describe('local time', () => {
  it('writes ISO with the local offset, to the second', () => {
    expect(isoWithOffset(NOW_MS + 999, JST)).toBe('2025-11-26T09:41:00+09:00');
    expect(isoWithOffset(NOW_MS, UTC)).toBe('2025-11-26T00:41:00+00:00');
    expect(isoWithOffset(NOW_MS, INDIA)).toBe('2025-11-26T06:11:00+05:30');
    expect(isoWithOffset(NOW_MS, NEW_YORK_WINTER)).toBe('2025-11-25T19:41:00-05:00');
    // The same instant whatever the offset.
    for (const offset of [JST, UTC, INDIA, NEW_YORK_WINTER]) expect(Date.parse(isoWithOffset(NOW_MS, offset))).toBe(NOW_MS);
    // Accepted by the agent's `request.submit` schema.
    const params = { deviceKey: '1-2', purpose: 'x', until: isoWithOffset(NOW_MS, NEW_YORK_WINTER), access: 'read-only' };
    expect(IpcRequestSchema.safeParse({ id: 1, method: 'request.submit', params }).success).toBe(true);
  });

  it('reads and writes datetime-local values in local time', () => {
    expect(parseLocalInput('2025-11-28T17:30', JST)).toBe(Date.parse('2025-11-28T17:30:00+09:00'));
    expect(parseLocalInput('2025-11-28T17:30:15', INDIA)).toBe(Date.parse('2025-11-28T17:30:15+05:30'));
    expect(parseLocalInput('2026-03-08T12:00', NEW_YORK_DST)).toBe(Date.parse('2026-03-08T12:00:00-04:00'));
    expect(parseLocalInput('2026-03-07T12:00', NEW_YORK_DST)).toBe(Date.parse('2026-03-07T12:00:00-05:00'));
    expect(localInputValue(NOW_MS, JST)).toBe('2025-11-26T09:41');
    for (const bad of ['', '2025-02-30T10:00', '2025-11-28', '2025-11-28T25:00', 'tomorrow', '2025-13-01T00:00']) expect(parseLocalInput(bad, JST), bad).toBeNull();
  });

  it('uses the page’s own offset by default', () => {
    const ms = Date.parse('2025-07-01T12:00:00Z');
    expect(Date.parse(isoWithOffset(ms))).toBe(ms);
    expect(parseLocalInput(localInputValue(ms))).toBe(ms);
  });
});

describe('the window', () => {
  it('ends today at 23:59:59 local for 本日中', () => {
    expect(windowEnd('today', NOW_MS, '', JST)).toEqual({ ok: true, ms: Date.parse('2025-11-26T23:59:59+09:00') });
    // In New York it is still the 25th.
    expect(windowEnd('today', NOW_MS, '', NEW_YORK_WINTER)).toEqual({ ok: true, ms: Date.parse('2025-11-25T23:59:59-05:00') });
    // The last second of the day has no window left.
    expect(windowEnd('today', Date.parse('2025-11-26T23:59:59.500+09:00'), '', JST)).toEqual({ ok: false, error: 'past' });
  });

  it('counts 1日 and 1週間 from now', () => {
    expect(windowEnd('day', NOW_MS + 400, '', JST)).toEqual({ ok: true, ms: NOW_MS + DAY });
    expect(windowEnd('week', NOW_MS, '', JST)).toEqual({ ok: true, ms: NOW_MS + 7 * DAY });
  });

  it('takes 日時を指定 from the input, after now and at most 90 days away', () => {
    expect(windowEnd('custom', NOW_MS, '2025-11-28T17:30', JST)).toEqual({ ok: true, ms: Date.parse('2025-11-28T17:30:00+09:00') });
    expect(windowEnd('custom', NOW_MS, '', JST)).toEqual({ ok: false, error: 'customMissing' });
    expect(windowEnd('custom', NOW_MS, '2025-02-30T10:00', JST)).toEqual({ ok: false, error: 'customMissing' });
    expect(windowEnd('custom', NOW_MS, '2025-11-26T09:41', JST)).toEqual({ ok: false, error: 'past' });
    expect(windowEnd('custom', NOW_MS, '2025-11-01T09:00', JST)).toEqual({ ok: false, error: 'past' });
    // Exactly 90 days is allowed; a minute more is not.
    const limit = localInputValue(NOW_MS + 90 * DAY, JST);
    expect(limit).toBe('2026-02-24T09:41');
    expect(windowEnd('custom', NOW_MS, limit, JST)).toEqual({ ok: true, ms: NOW_MS + 90 * DAY });
    expect(windowEnd('custom', NOW_MS, '2026-02-24T09:42', JST)).toEqual({ ok: false, error: 'tooFar' });
    expect(windowEnd('custom', NOW_MS, '2026-03-01T09:00', JST)).toEqual({ ok: false, error: 'tooFar' });
  });

  it('bounds the datetime-local input the same way', () => {
    expect(customBounds(NOW_MS, JST)).toEqual({ min: '2025-11-26T09:42', max: '2026-02-24T09:41' });
  });
});

describe('the draft', () => {
  const input = { deviceKey: USB_STICK_KEY, purpose: '  会議資料の受け取り  ', preset: 'custom', custom: '2025-11-28T17:30', access: 'read-write' } as const;

  it('is exactly what the agent is sent: the key, the trimmed purpose, the end with the local offset, the access', () => {
    expect(checkDraft(input, NOW_MS, JST)).toEqual({
      ok: true,
      draft: { deviceKey: USB_STICK_KEY, purpose: '会議資料の受け取り', until: '2025-11-28T17:30:00+09:00', access: 'read-write' },
    });
    const today = checkDraft({ ...input, preset: 'today', access: 'read-only' }, NOW_MS, JST);
    expect(today.ok && today.draft.until).toBe('2025-11-26T23:59:59+09:00');
  });

  it('names the first problem and the field to fix', () => {
    expect(checkDraft({ ...input, deviceKey: null }, NOW_MS, JST)).toEqual({ ok: false, error: 'noDevice', field: 'device' });
    expect(checkDraft({ ...input, purpose: ' \n\t ' }, NOW_MS, JST)).toEqual({ ok: false, error: 'purposeEmpty', field: 'purpose' });
    expect(checkDraft({ ...input, purpose: 'あ'.repeat(501) }, NOW_MS, JST)).toEqual({ ok: false, error: 'purposeTooLong', field: 'purpose' });
    expect(checkDraft({ ...input, purpose: 'あ'.repeat(500) }, NOW_MS, JST).ok).toBe(true);
    expect(checkDraft({ ...input, custom: '2026-06-01T00:00' }, NOW_MS, JST)).toEqual({ ok: false, error: 'tooFar', field: 'until' });
    expect(checkDraft({ ...input, custom: '' }, NOW_MS, JST)).toEqual({ ok: false, error: 'customMissing', field: 'until' });
    for (const error of ['noDevice', 'purposeEmpty', 'purposeTooLong', 'customMissing', 'past', 'tooFar'] as const) {
      expect(formErrorText(error, 'ja'), error).toMatch(/[ぁ-んァ-ヶ一-龠]/);
      expect(formErrorText(error, 'en'), error).toMatch(/^[\x20-\x7e]+$/);
    }
    expect(formErrorText('tooFar', 'ja')).toBe('使用期間は最長90日です。');
  });

  it('counts the purpose', () => {
    expect(purposeCounterText(12, 'ja')).toBe('12 / 500 文字');
    expect(purposeCounterText(0, 'en')).toBe('0 / 500 characters');
  });
});

describe('refusals', () => {
  it('words every REQUEST_REFUSAL_CODES reason, in both languages', () => {
    const other = { ja: t('request.refusal.other', 'ja'), en: t('request.refusal.other', 'en') };
    const seen = new Set<string>();
    for (const reason of REQUEST_REFUSAL_CODES) {
      const ja = submitErrorText({ code: 'agent-refused', message: 'x', reason }, 'ja');
      const en = submitErrorText({ code: 'agent-refused', message: 'x', reason }, 'en');
      expect(ja, reason).not.toBe(other.ja);
      expect(en, reason).not.toBe(other.en);
      expect(ja, reason).toMatch(/[ぁ-んァ-ヶ一-龠]/);
      expect(en, reason).toMatch(/^[\x20-\x7e]+$/);
      seen.add(ja);
    }
    // Each reason has its own words.
    expect(seen.size).toBe(REQUEST_REFUSAL_CODES.length);
    expect(submitErrorText({ code: 'agent-refused', message: 'x', reason: 'not-blocked' }, 'ja')).toBe('その機器はすでに使用できます。申請の必要はありません。');
  });

  it('falls back for an unknown reason, reads a `code: message` text, and words the other failures', () => {
    expect(submitErrorText({ code: 'agent-refused', message: 'x', reason: 'new-code' }, 'ja')).toBe('保護サービスが申請を受け付けませんでした。');
    expect(submitErrorText({ code: 'agent-refused', message: 'bad-window: the end must be in the future' }, 'ja')).toBe(t('request.refusal.bad-window', 'ja'));
    expect(submitErrorText({ code: 'agent-refused', message: 'constructor: x', reason: 'constructor' }, 'ja')).toBe(t('request.refusal.other', 'ja'));
    expect(submitErrorText({ code: 'agent-unavailable', message: 'x' }, 'ja')).toBe('保護サービスに接続できません。');
    expect(submitErrorText({ code: 'refused', message: 'x' }, 'ja')).toBe(t('lock.bridge.refused', 'ja'));
    expect(submitErrorText({ code: 'internal', message: 'x' }, 'en')).toBe(t('lock.bridge.internal', 'en'));
  });
});

describe('my requests', () => {
  it('words every state', () => {
    const expected = { unsent: '未送信 (サーバーと通信でき次第送信します)', pending: '承認待ち', approved: '承認', rejected: '却下', expired: '期限切れ', revoked: '取り消し' };
    for (const state of [...REQUEST_STATES, 'unsent'] as const) {
      expect(requestStateText(state, 'ja'), state).toBe(expected[state]);
      expect(requestStateText(state, 'en'), state).toMatch(/^[\x20-\x7e]+$/);
    }
  });

  it('shows the approved window and access, and says when they are narrower than asked', () => {
    const asked = request({ state: 'approved', until: new Date(NOW_MS + 7 * DAY).toISOString(), access: 'read-write', approvedUntil: new Date(NOW_MS + 2 * DAY).toISOString(), approvedAccess: 'read-only' });
    expect(isNarrowed(asked)).toBe(true);
    const lines = requestLines(asked, 'ja');
    expect(lines.approved).toBe('承認: 2025/11/28 09:41 まで (読み取り専用)');
    expect(lines.asked).toBe('申請: 2025/12/03 09:41 まで (読み書き)');
    expect(lines.narrowed).toBe('申請より短い期間または狭い権限で承認されました。');
    const same = request({ state: 'approved', approvedUntil: asked.until, approvedAccess: 'read-write', until: asked.until });
    expect(isNarrowed(same)).toBe(false);
    expect(requestLines(same, 'ja').narrowed).toBeNull();
    expect(isNarrowed(request({ state: 'approved', access: 'read-write', approvedUntil: null, approvedAccess: 'read-only' }))).toBe(true);
    expect(isNarrowed(request({ state: 'pending' }))).toBe(false);
    expect(requestLines(request({ state: 'pending' }), 'ja').approved).toBeNull();
  });

  it('shows a rejection reason as given', () => {
    const lines = requestLines(request({ state: 'rejected', reason: '<b>個人の機器</b>' }), 'ja');
    expect(lines.reason).toBe('理由: <b>個人の機器</b>');
    expect(requestLines(request({ state: 'rejected', reason: null }), 'ja').reason).toBeNull();
    expect(requestLines(request({ purpose: '{max} $& 資料' }), 'ja').purpose).toBe('利用目的: {max} $& 資料');
  });
});
