import { describe, expect, it } from 'vitest';
import { t, type MessageKey } from '../../shared/i18n.js';
import { LOCK_ERROR_CODES } from '../../shared/ipc.js';
import { groupWithCheckDigits } from '../../shared/lock.js';
import { bridgeErrorMessage, challengeGroups, fill, groupSecret, lockErrorMessage, lockMode, secondsUntil, svgDataUrl } from '../../renderer/lock-model.js';
import type { BridgeErrorCode } from '../../renderer/preload-api.js';
import { baseView } from './scripted-lock-agent.js';

/** renderer/lock-model.ts: the lock screen's decisions without a browser. */

describe('lockMode', () => {
  it('fails closed: unavailable or connecting unless the agent is connected with a view', () => {
    expect(lockMode('unavailable', baseView({ state: 'unlocked' }))).toBe('unavailable');
    expect(lockMode('connecting', baseView())).toBe('connecting');
    expect(lockMode('connected', null)).toBe('connecting');
  });

  it('picks the step from the view', () => {
    expect(lockMode('connected', baseView())).toBe('pin');
    expect(lockMode('connected', baseView({ state: 'second-factor' }))).toBe('code');
    expect(lockMode('connected', baseView({ state: 'unlocked' }))).toBe('unlocked');
    expect(lockMode('connected', baseView({ enrolled: false }))).toBe('enrol');
    expect(lockMode('connected', baseView({ lockedOut: true, enrolled: false }))).toBe('locked-out');
    expect(lockMode('connected', baseView({ user: null }))).toBe('no-user');
  });
});

describe('lock screen messages', () => {
  it('has a Japanese and an English message for every LockErrorCode', () => {
    for (const code of LOCK_ERROR_CODES) {
      const ja = lockErrorMessage(code, 'ja');
      const en = lockErrorMessage(code, 'en');
      expect(ja, code).toMatch(/[ぁ-んァ-ヶ一-龠]/);
      expect(en, code).toMatch(/^[\x20-\x7e“”]+$/);
    }
  });

  it('has Japanese and English for every bridge error and every lock key', () => {
    const codes: BridgeErrorCode[] = ['agent-unavailable', 'agent-refused', 'bad-answer', 'refused', 'internal'];
    for (const code of codes) expect(bridgeErrorMessage(code, 'en')).not.toBe(bridgeErrorMessage(code, 'ja'));
    const keys = ['lock.title', 'lock.unavailable', 'lock.attemptsLeft', 'lock.backoff', 'lock.lockedOut', 'lock.offlineDays', 'lock.recovery.groupError', 'lock.enrol.qrAlt'] satisfies MessageKey[];
    for (const key of keys) expect(t(key, 'en'), key).not.toBe(t(key, 'ja'));
  });

  it('names the mistyped groups of a check-digit error', () => {
    expect(lockErrorMessage('check-digit', 'ja', [2])).toContain('グループ 2');
    expect(lockErrorMessage('check-digit', 'en', [1, 3])).toContain('Group 1, 3');
    expect(lockErrorMessage('check-digit', 'ja')).toBe(t('lock.error.check-digit', 'ja'));
  });

  it('fills placeholders and leaves unknown ones', () => {
    expect(fill('あと {n} 回 {x}', { n: 3 })).toBe('あと 3 回 {x}');
  });
});

describe('formatting', () => {
  it('counts whole seconds up to retryAt, never below zero', () => {
    const now = Date.parse('2025-11-26T00:00:00.000Z');
    expect(secondsUntil('2025-11-26T00:00:30.000Z', now)).toBe(30);
    expect(secondsUntil('2025-11-26T00:00:00.001Z', now)).toBe(1);
    expect(secondsUntil('2025-11-25T23:59:00.000Z', now)).toBe(0);
    expect(secondsUntil(null, now)).toBe(0);
    expect(secondsUntil('garbage', now)).toBe(0);
  });

  it('splits a recovery challenge into its groups', () => {
    const code = groupWithCheckDigits('314159265358979323846264');
    expect(challengeGroups(code)).toEqual(code.split('-'));
    expect(challengeGroups(code.replace(/-/g, ''))).toEqual(code.split('-'));
    expect(challengeGroups('12345 67890')).toEqual(['12345', '67890']);
  });

  it('groups a base32 secret by four', () => {
    expect(groupSecret('JBSWY3DPEHPK3PXP')).toBe('JBSW Y3DP EHPK 3PXP');
    expect(groupSecret('ABCDEF')).toBe('ABCD EF');
  });

  it('turns SVG text into a base64 data URL that decodes back to the same UTF-8', () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><title>関守</title></svg>';
    const url = svgDataUrl(svg);
    expect(url.startsWith('data:image/svg+xml;base64,')).toBe(true);
    expect(Buffer.from(url.slice('data:image/svg+xml;base64,'.length), 'base64').toString('utf8')).toBe(svg);
    const big = `<svg>${'<path d="M0 0h1v1H0z"/>'.repeat(8000)}</svg>`;
    expect(Buffer.from(svgDataUrl(big).split(',')[1]!, 'base64').toString('utf8')).toBe(big);
  });
});
