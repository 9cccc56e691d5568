import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { t } from '../../shared/i18n.js';
import { DEVICE_RULE_KINDS, ExportChannelSchema, PresentDeviceSchema, StatusViewSchema, type DeviceRuleKind, type PresentDevice } from '../../shared/ipc.js';
import { LOCK_STATES } from '../../shared/lock.js';
import { SELFCHECK_DEFINITIONS, SELFCHECK_IDS, SELFCHECK_RESULTS } from '../../shared/selfcheck.js';
import {
  channelText,
  checkText,
  complianceCountsText,
  complianceResultText,
  dateTimeText,
  decisionText,
  durationText,
  isBlocked,
  lockStateText,
  newestFirst,
  overallDetail,
  overallState,
  overallText,
  overallTone,
  policyText,
  relativeTime,
  ruleText,
  serialText,
  serverText,
  tierText,
  timeLeftText,
} from '../../renderer/status-model.js';
import { ROOT } from '../helpers/processes.js';
import { useTimeZone } from '../helpers/time-zone.js';
import { DAY, HOUR, MINUTE, NOW_MS } from './scripted-backend.js';
import { baseStatus, device } from './scripted-status-agent.js';

/** renderer/status-model.ts: the status window's decisions and words without a browser. */

const JAPANESE = /[ぁ-んァ-ヶ一-龠]/;

// Dates are worded in the process's zone.
useTimeZone('Asia/Tokyo');

describe('overall state', () => {
  it('is the most urgent of: unreachable agent, no status yet, protection off, audit, locked, failed self-inspection, server unreachable', () => {
    const view = baseStatus();
    expect(overallState('unavailable', view)).toBe('unavailable');
    expect(overallState('connected', null)).toBe('pending');
    expect(overallState('connecting', null)).toBe('pending');
    expect(overallState('connected', view)).toBe('protected');
    expect(overallState('connecting', view)).toBe('protected');
    expect(overallState('connected', baseStatus({ enforcement: { state: 'unenforced', reason: 'no-usbguard' }, lockState: 'locked' }))).toBe('unenforced');
    expect(overallState('connected', baseStatus({ enforcement: { state: 'audit', reason: null } }))).toBe('audit');
    expect(overallState('connected', baseStatus({ policy: { ...view.policy, mode: 'audit' } }))).toBe('audit');
    expect(overallState('connected', baseStatus({ lockState: 'second-factor', compliance: { ...view.compliance, overall: 'fail', fail: 1 } }))).toBe('locked');
    const failing = baseStatus({ compliance: { overall: 'fail', ranAt: view.now, pass: 11, fail: 1, unknown: 0, failing: ['disk-encryption'] }, server: { ...view.server, reachable: false } });
    expect(overallState('connected', failing)).toBe('violations');
    expect(overallState('connected', baseStatus({ server: { ...view.server, reachable: false } }))).toBe('offline');
    // No server configured is not "cannot reach the server".
    expect(overallState('connected', baseStatus({ server: { configured: false, enrolled: false, lastContactAt: null, reachable: false } }))).toBe('protected');
  });

  it('words every state as staff read it, in Japanese and English', () => {
    expect(overallText('protected', 'ja')).toBe('保護されています');
    expect(overallText('violations', 'ja')).toBe('違反あり');
    expect(overallText('offline', 'ja')).toBe('サーバーと通信できません');
    expect(overallText('unenforced', 'ja')).toMatch(/^保護されていません/);
    expect(overallText('audit', 'ja')).toMatch(/^保護されていません/);
    expect(overallText('locked', 'ja')).toBe('ロック中');
    expect(overallText('unavailable', 'ja')).toBe('保護サービスに接続できません');
    expect(overallText('pending', 'ja')).toBe('状態を確認しています…');
    expect(overallText('protected', 'en')).toBe('Protected');
    expect(overallText('unavailable', 'en')).toBe('Cannot connect to the protection service');
    expect(overallText('violations', 'en')).toBe('Violations found');
    expect(overallTone('protected')).toBe('ok');
    expect(overallTone('unavailable')).toBe('bad');
    expect(overallTone('unenforced')).toBe('bad');
    expect(overallTone('offline')).toBe('warn');
  });

  it('gives the agent’s reason when protection is off, and a hint when the agent is unreachable', () => {
    expect(overallDetail('unenforced', baseStatus({ enforcement: { state: 'unenforced', reason: 'usbguard-missing' } }), 'ja')).toBe('理由: usbguard-missing');
    expect(overallDetail('unavailable', null, 'ja')).toContain('管理者に連絡');
    expect(overallDetail('protected', baseStatus(), 'ja')).toBe('');
  });
});

describe('summary', () => {
  it('names the tiers', () => {
    expect(tierText('mynumber', 'ja')).toBe('マイナンバー利用事務系');
    expect(tierText('lgwan', 'ja')).toBe('LGWAN接続系');
    expect(tierText('internet', 'ja')).toBe('インターネット接続系');
    expect(tierText('mynumber', 'en')).toBe('My Number tier');
  });

  it('gives the policy version and when it was received, or the built-in profile', () => {
    const received = new Date(NOW_MS - 2 * HOUR).toISOString();
    expect(policyText({ version: 12, origin: 'signed', mode: 'enforce', receivedAt: received }, 'ja')).toBe('版 12 (2025/11/26 07:41 に受信)');
    expect(policyText({ version: 12, origin: 'signed', mode: 'enforce', receivedAt: received }, 'en')).toBe('version 12 (received 26/11/2025, 07:41)');
    expect(policyText({ version: 3, origin: 'signed', mode: 'audit', receivedAt: null }, 'ja')).toBe('版 3 (監査モード)');
    expect(policyText({ version: null, origin: 'built-in', mode: 'enforce', receivedAt: null }, 'ja')).toBe('組み込みの既定ポリシー');
    expect(policyText({ version: 0, origin: 'built-in', mode: 'enforce', receivedAt: null }, 'en')).toBe('built-in default policy');
  });

  it('says how long ago against the agent’s clock', () => {
    const ago = (ms: number, locale: 'ja' | 'en' = 'ja'): string | null => relativeTime(new Date(NOW_MS - ms).toISOString(), NOW_MS, locale);
    expect(ago(3 * MINUTE)).toBe('3分前');
    expect(ago(3 * MINUTE + 59_000)).toBe('3分前');
    expect(ago(5_000)).toBe('たった今');
    expect(ago(-60_000)).toBe('たった今');
    expect(ago(42_000)).toBe('42秒前');
    expect(ago(5 * HOUR)).toBe('5時間前');
    expect(ago(3 * DAY)).toBe('3日前');
    expect(ago(3 * MINUTE, 'en')).toBe('3 min ago');
    expect(relativeTime('not a time', NOW_MS, 'ja')).toBeNull();
  });

  it('words the last contact with the server', () => {
    const server = { configured: true, enrolled: true, lastContactAt: new Date(NOW_MS - 3 * MINUTE).toISOString(), reachable: true };
    expect(serverText(server, NOW_MS, 'ja')).toBe('3分前');
    expect(serverText({ ...server, reachable: false }, NOW_MS, 'ja')).toBe('3分前 (現在通信できません)');
    expect(serverText({ ...server, lastContactAt: null }, NOW_MS, 'ja')).toBe('まだ通信していません');
    expect(serverText({ ...server, configured: false }, NOW_MS, 'ja')).toBe('サーバーが設定されていません');
  });

  it('words every lock state', () => {
    for (const state of LOCK_STATES) {
      expect(lockStateText(state, 'ja'), state).toMatch(JAPANESE);
      expect(lockStateText(state, 'en'), state).toMatch(/^[\x20-\x7e]+$/);
    }
    expect(lockStateText('locked', 'ja')).toBe('ロック中');
  });
});

describe('devices', () => {
  const withRule = (kind: DeviceRuleKind, label: string | null = null, decision: PresentDevice['decision'] = 'block'): PresentDevice =>
    PresentDeviceSchema.parse(device({ decision, rule: { kind, label, exceptionId: kind === 'exception' ? 'exc_1' : null } }));
  /** A kind from a newer agent than this contract (the page must still word it neutrally). */
  const withUnknownKind = (kind: string): PresentDevice => ({ ...withRule('unknown'), rule: { kind: kind as DeviceRuleKind, label: null, exceptionId: null } });

  it('words the rule of every kind the agent sends, never the raw kind', () => {
    expect(ruleText(withRule('exception', null, 'read-only'), 'ja')).toBe('承認された申請による一時許可');
    expect(ruleText(withRule('rule', 'USBメモリ禁止'), 'ja')).toBe('ポリシーの規則「USBメモリ禁止」');
    expect(ruleText(withRule('rule', 'USB sticks'), 'en')).toBe('the policy rule “USB sticks”');
    expect(ruleText(withRule('rule', null), 'ja')).toBe('ポリシーの規則');
    expect(ruleText(withRule('rule', '  '), 'ja')).toBe('ポリシーの規則');
    expect(ruleText(withRule('implicit'), 'ja')).toBe('許可されていない機器は既定でブロック');
    expect(ruleText(withRule('implicit', null, 'allow'), 'ja')).toBe('ポリシーの既定で許可');
    expect(ruleText(withRule('adopted-input-device', null, 'allow'), 'ja')).toBe('導入時に接続されていた入力機器');
    expect(ruleText(withRule('error'), 'ja')).toBe('判定できないためブロック');
    expect(ruleText(withRule('unreadable'), 'ja')).toBe('機器の情報を読み取れないためブロック');
    expect(ruleText(withRule('unknown'), 'ja')).toBe('保護サービスの判定');
    for (const kind of ['something-new', '<script>', '']) {
      const text = ruleText(withUnknownKind(kind), 'ja');
      expect(text, kind).toBe('保護サービスの判定');
      expect(ruleText(withUnknownKind(kind), 'en'), kind).toBe('the protection service');
    }
    for (const kind of DEVICE_RULE_KINDS) {
      expect(ruleText(withRule(kind, 'x'), 'ja'), kind).toMatch(JAPANESE);
      expect(ruleText(withRule(kind, 'x'), 'en'), kind).not.toBe(kind);
    }
  });

  it('words the decisions and tells which devices can be asked for', () => {
    expect(decisionText('allow', 'ja')).toBe('許可');
    expect(decisionText('block', 'ja')).toBe('ブロック');
    expect(decisionText('reject', 'ja')).toMatch(/^ブロック/);
    expect(decisionText('read-only', 'ja')).toBe('読み取り専用');
    expect(isBlocked({ decision: 'allow' })).toBe(false);
    for (const decision of ['block', 'reject', 'read-only'] as const) expect(isBlocked({ decision })).toBe(true);
    expect(serialText('', 'ja')).toBe('(シリアルなし)');
    expect(serialText('ABC', 'ja')).toBe('シリアル ABC');
  });

  it('names every export channel', () => {
    for (const channel of ExportChannelSchema.options) {
      expect(channelText(channel, 'ja'), channel).toBeTruthy();
      expect(channelText(channel, 'en'), channel).toBeTruthy();
    }
    expect(channelText('optical', 'ja')).toBe('光学ドライブ');
  });

  it('keeps the recent blocked list newest first', () => {
    const view = baseStatus();
    const [a, b] = view.recentBlocked;
    expect(newestFirst([b!, a!]).map((notice) => notice.name)).toEqual([a!.name, b!.name]);
  });
});

describe('time left', () => {
  it('counts down against the agent’s clock, coarse to fine', () => {
    const until = (ms: number): string => new Date(NOW_MS + ms).toISOString();
    expect(timeLeftText(until(2 * DAY + 3 * HOUR), NOW_MS, 'ja')).toBe('あと 2日 3時間');
    expect(timeLeftText(until(HOUR + 5 * MINUTE), NOW_MS, 'ja')).toBe('あと 1時間 5分');
    expect(timeLeftText(until(4 * MINUTE + 10_000), NOW_MS, 'ja')).toBe('あと 4分 10秒');
    // One second later, on the page's own clock.
    expect(timeLeftText(until(4 * MINUTE + 10_000), NOW_MS + 1_000, 'ja')).toBe('あと 4分 9秒');
    expect(timeLeftText(until(500), NOW_MS, 'ja')).toBe('あと 0分 1秒');
    expect(timeLeftText(until(0), NOW_MS, 'ja')).toBe('期限が来ました');
    expect(timeLeftText(until(-DAY), NOW_MS, 'ja')).toBe('期限が来ました');
    expect(timeLeftText('garbage', NOW_MS, 'ja')).toBe('期限が来ました');
    expect(timeLeftText(until(2 * DAY + 3 * HOUR), NOW_MS, 'en')).toBe('2 d 3 h left');
    expect(durationText(59 * MINUTE + 59_000, 'en')).toBe('59 min 59 s');
  });

  it('formats dates in the given zone', () => {
    expect(dateTimeText(NOW_MS, 'ja', 'Asia/Tokyo')).toBe('2025/11/26 09:41');
    expect(dateTimeText(NOW_MS, 'ja', 'UTC')).toBe('2025/11/26 00:41');
    expect(dateTimeText('nope', 'ja')).toBe('');
  });
});

describe('self-inspection', () => {
  it('names every check as SELFCHECK_DEFINITIONS labels it, in both languages', () => {
    for (const id of SELFCHECK_IDS) {
      expect(checkText(id, 'ja'), id).toBe(SELFCHECK_DEFINITIONS[id].label.ja);
      expect(checkText(id, 'en'), id).toBe(SELFCHECK_DEFINITIONS[id].label.en);
    }
  });

  it('words the results and counts', () => {
    for (const result of SELFCHECK_RESULTS) expect(complianceResultText(result, 'ja')).toMatch(JAPANESE);
    expect(complianceResultText('fail', 'ja')).toBe('不適合');
    const view = StatusViewSchema.parse(baseStatus({ compliance: { overall: 'fail', ranAt: null, pass: 10, fail: 1, unknown: 1, failing: ['mfa'] } }));
    expect(complianceCountsText(view.compliance, 'ja')).toBe('適合 10 件 / 不適合 1 件 / 判定不能 1 件');
    expect(complianceCountsText(view.compliance, 'en')).toBe('10 passed / 1 failed / 1 unknown');
  });
});

describe('strings', () => {
  /** The keys of the Japanese and English catalogues, read from shared/i18n.ts. */
  function catalogueKeys(): { ja: Set<string>; en: Set<string> } {
    const source = fs.readFileSync(path.join(ROOT, 'shared/i18n.ts'), 'utf8');
    const jaBlock = source.slice(source.indexOf('const ja = {'), source.indexOf('} as const;'));
    const enBlock = source.slice(source.indexOf('const en:'), source.indexOf('const catalogs'));
    const keys = (block: string): Set<string> => new Set([...block.matchAll(/^\s+'([^']+)':/gm)].map((match) => match[1]!));
    return { ja: keys(jaBlock), en: keys(enBlock) };
  }

  it('has an English string for every status and request string', () => {
    const { ja, en } = catalogueKeys();
    const ours = [...ja].filter((key) => key.startsWith('status.') || key.startsWith('request.'));
    expect(ours.length).toBeGreaterThan(150);
    expect(ours.filter((key) => !en.has(key))).toEqual([]);
    // Japanese by default.
    expect(t('status.title')).toBe('端末の状態');
  });
});
