import { t, type Locale, type MessageKey } from '../shared/i18n.js';
import type { BlockedNotice, ExportChannel, PresentDevice, StatusView } from '../shared/ipc.js';
import type { LockState } from '../shared/lock.js';
import type { SelfcheckId, SelfcheckResult } from '../shared/selfcheck.js';
import { fill } from './lock-model.js';
import type { AgentConnectionState } from './preload-api.js';

/**
 * The status window's decisions, without the DOM: the overall state, and the words for tiers,
 * decisions, rules, times and the self-inspection. Only type imports from `shared/ipc.ts`,
 * `shared/lock.ts` and `shared/selfcheck.ts` (their zod schemas never load in the page). The
 * request form shares the time and device wording.
 */

/** The one line at the top of the window, most urgent first. */
export type OverallState =
  /** The agent cannot be reached (the view, if any, is stale). */
  | 'unavailable'
  /** No status from the agent yet. */
  | 'pending'
  /** Device control is off. */
  | 'unenforced'
  /** The policy is in audit mode: decisions are recorded, not enforced. */
  | 'audit'
  | 'locked'
  /** The last self-inspection failed. */
  | 'violations'
  /** The server is configured but cannot be reached. */
  | 'offline'
  | 'protected';

export type Tone = 'ok' | 'warn' | 'bad' | 'neutral';

export function overallState(connection: AgentConnectionState, view: StatusView | null): OverallState {
  if (connection === 'unavailable') return 'unavailable';
  if (view === null) return 'pending';
  if (view.enforcement.state === 'unenforced') return 'unenforced';
  if (view.enforcement.state === 'audit' || view.policy.mode === 'audit') return 'audit';
  if (view.lockState !== 'unlocked') return 'locked';
  if (view.compliance.overall === 'fail') return 'violations';
  if (view.server.configured && !view.server.reachable) return 'offline';
  return 'protected';
}

const OVERALL_KEYS: Readonly<Record<OverallState, MessageKey>> = {
  unavailable: 'status.agentUnavailable',
  pending: 'status.pending',
  unenforced: 'status.unenforced',
  audit: 'status.audit',
  locked: 'status.locked',
  violations: 'status.violations',
  offline: 'status.offline',
  protected: 'status.protected',
};

export function overallText(state: OverallState, locale: Locale): string {
  return t(OVERALL_KEYS[state], locale);
}

export function overallTone(state: OverallState): Tone {
  switch (state) {
    case 'protected':
      return 'ok';
    case 'audit':
    case 'locked':
    case 'violations':
    case 'offline':
      return 'warn';
    case 'unavailable':
    case 'unenforced':
      return 'bad';
    case 'pending':
      return 'neutral';
  }
}

/** The line under the state: the agent's reason when protection is off, the hint when it is unreachable. */
export function overallDetail(state: OverallState, view: StatusView | null, locale: Locale): string {
  if (state === 'unavailable') return t('status.unavailableHint', locale);
  if ((state === 'unenforced' || state === 'audit') && view?.enforcement.reason) return fill(t('status.reason', locale), { reason: view.enforcement.reason });
  return '';
}

export function tierText(tier: StatusView['tier'], locale: Locale): string {
  const key: MessageKey = `status.tier.${tier}`;
  return t(key, locale);
}

const tag = (locale: Locale): string => (locale === 'ja' ? 'ja-JP' : 'en-GB');

/** A date and time in the page's time zone (or `timeZone`), e.g. 2025/11/26 09:41; '' when unreadable. */
export function dateTimeText(at: string | number, locale: Locale, timeZone?: string): string {
  const ms = typeof at === 'number' ? at : Date.parse(at);
  if (Number.isNaN(ms)) return '';
  return new Intl.DateTimeFormat(tag(locale), {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hour12: false,
    ...(timeZone ? { timeZone } : {}),
  }).format(new Date(ms));
}

/** How long ago `iso` was, against the agent's clock (e.g. 「3分前」); null when unreadable. */
export function relativeTime(iso: string, nowMs: number, locale: Locale): string | null {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return null;
  const seconds = Math.floor(Math.max(0, nowMs - at) / 1000);
  if (seconds < 10) return t('status.time.justNow', locale);
  if (seconds < 60) return fill(t('status.time.secondsAgo', locale), { n: seconds });
  if (seconds < 3600) return fill(t('status.time.minutesAgo', locale), { n: Math.floor(seconds / 60) });
  if (seconds < 86_400) return fill(t('status.time.hoursAgo', locale), { n: Math.floor(seconds / 3600) });
  return fill(t('status.time.daysAgo', locale), { n: Math.floor(seconds / 86_400) });
}

export function policyText(policy: StatusView['policy'], locale: Locale): string {
  let text: string;
  if (policy.origin === 'built-in' || policy.version === null) {
    text = t('status.policy.builtIn', locale);
  } else {
    const at = policy.receivedAt === null ? '' : dateTimeText(policy.receivedAt, locale);
    text = at === '' ? fill(t('status.policy.signedNoTime', locale), { version: policy.version }) : fill(t('status.policy.signed', locale), { version: policy.version, at });
  }
  return policy.mode === 'audit' ? `${text} ${t('status.policy.auditMode', locale)}` : text;
}

/** Last contact with the server, relative to the agent's clock. */
export function serverText(server: StatusView['server'], nowMs: number, locale: Locale): string {
  if (!server.configured) return t('status.server.notConfigured', locale);
  const ago = server.lastContactAt === null ? null : relativeTime(server.lastContactAt, nowMs, locale);
  const text = ago ?? t('status.server.never', locale);
  return server.reachable ? text : `${text} ${t('status.server.unreachable', locale)}`;
}

export function lockStateText(state: LockState, locale: Locale): string {
  const key: MessageKey = `status.lock.${state}`;
  return t(key, locale);
}

export function decisionText(decision: PresentDevice['decision'], locale: Locale): string {
  const key: MessageKey = `status.decision.${decision}`;
  return t(key, locale);
}

export function accessText(access: 'read-only' | 'read-write', locale: Locale): string {
  const key: MessageKey = `status.access.${access}`;
  return t(key, locale);
}

/** Blocked in any way (the ones staff can ask for): every decision but `allow`. */
export function isBlocked(device: Pick<PresentDevice, 'decision'>): boolean {
  return device.decision !== 'allow';
}

/**
 * Which rule decided, in words staff understand. The kinds the agent sends (agent/usb/policy-engine.ts,
 * agent/usb/device-control.ts, agent/main.ts): `exception`, `rule`, `implicit`, `adopted-input-device`,
 * `error`, `unreadable`, `unknown`; `unknown` (and anything newer)
 * gets a neutral wording, never the raw kind.
 */
export function ruleText(device: Pick<PresentDevice, 'rule' | 'decision'>, locale: Locale): string {
  const { rule } = device;
  switch (rule.kind) {
    case 'exception':
      return t('status.rule.exception', locale);
    case 'rule':
      return rule.label !== null && rule.label.trim() !== '' ? fill(t('status.rule.labelled', locale), { label: rule.label }) : t('status.rule.unlabelled', locale);
    case 'implicit':
      return device.decision === 'allow' ? t('status.rule.implicitAllow', locale) : t('status.rule.implicit', locale);
    case 'adopted-input-device':
      return t('status.rule.adopted', locale);
    case 'error':
      return t('status.rule.error', locale);
    case 'unreadable':
      return t('status.rule.unreadable', locale);
    default:
      return t('status.rule.other', locale);
  }
}

/** `vvvv:pppp`. */
export function deviceIdText(device: Pick<PresentDevice, 'vendorId' | 'productId'>): string {
  return `${device.vendorId}:${device.productId}`;
}

export function serialText(serial: string, locale: Locale): string {
  return serial === '' ? t('status.device.noSerial', locale) : fill(t('status.device.serial', locale), { serial });
}

/** Milliseconds from `nowMs` to `iso` (≤ 0 when past); null when unreadable. */
export function msUntil(iso: string, nowMs: number): number | null {
  const at = Date.parse(iso);
  return Number.isNaN(at) ? null : at - nowMs;
}

/** A positive duration, coarse to fine: 「2日 3時間」, 「1時間 5分」, 「4分 10秒」. */
export function durationText(ms: number, locale: Locale): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(total / 86_400);
  const h = Math.floor((total % 86_400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (d > 0) return fill(t('status.duration.days', locale), { d, h });
  if (h > 0) return fill(t('status.duration.hours', locale), { h, m });
  return fill(t('status.duration.minutes', locale), { m, s });
}

/** Time left of an exception against the agent's clock: 「あと 2日 3時間」, or that it has ended. */
export function timeLeftText(until: string, nowMs: number, locale: Locale): string {
  const left = msUntil(until, nowMs);
  if (left === null || left <= 0) return t('status.exception.ended', locale);
  return fill(t('status.exception.left', locale), { time: durationText(left, locale) });
}

export function channelText(channel: ExportChannel, locale: Locale): string {
  const key: MessageKey = `status.channel.${channel}`;
  return t(key, locale);
}

/** The recent blocked list, newest first (the agent sends it so; kept so whatever it sends). */
export function newestFirst(notices: readonly BlockedNotice[]): BlockedNotice[] {
  const time = (notice: BlockedNotice): number => {
    const at = Date.parse(notice.at);
    return Number.isNaN(at) ? -Infinity : at;
  };
  return notices
    .map((notice, index) => ({ notice, index }))
    .sort((a, b) => time(b.notice) - time(a.notice) || a.index - b.index)
    .map(({ notice }) => notice);
}

export function complianceResultText(result: SelfcheckResult, locale: Locale): string {
  const key: MessageKey = `status.compliance.result.${result}`;
  return t(key, locale);
}

/** A self-inspection check by name (the labels of `SELFCHECK_DEFINITIONS`). */
export function checkText(id: SelfcheckId, locale: Locale): string {
  const key: MessageKey = `status.check.${id}`;
  return t(key, locale) ?? id;
}

export function complianceCountsText(compliance: StatusView['compliance'], locale: Locale): string {
  return fill(t('status.compliance.counts', locale), { pass: compliance.pass, fail: compliance.fail, unknown: compliance.unknown });
}
