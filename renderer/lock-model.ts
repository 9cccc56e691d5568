import { t, type Locale, type MessageKey } from '../shared/i18n.js';
import type { LockErrorCode, LockView } from '../shared/ipc.js';
import type { AgentConnectionState, BridgeErrorCode } from './preload-api.js';

/**
 * The lock screen's decisions, without the DOM: which step shows, and the words and numbers in it.
 * Only type imports from `shared/ipc.ts` (its zod schemas never load in the page).
 */

/** The one step the lock screen shows. */
export type LockMode =
  | 'connecting'
  /** The agent cannot be reached: stay locked, say so. */
  | 'unavailable'
  /** The agent cannot tell who the console user is: nobody can unlock here. */
  | 'no-user'
  | 'locked-out'
  /** Not enrolled yet: set a PIN, then the authenticator app. */
  | 'enrol'
  | 'pin'
  | 'code'
  | 'unlocked';

export function lockMode(connection: AgentConnectionState, view: LockView | null): LockMode {
  if (connection === 'unavailable') return 'unavailable';
  if (connection === 'connecting' || view === null) return 'connecting';
  if (view.state === 'unlocked') return 'unlocked';
  if (view.user === null) return 'no-user';
  if (view.lockedOut) return 'locked-out';
  if (!view.enrolled) return 'enrol';
  return view.state === 'second-factor' ? 'code' : 'pin';
}

/** Whether the administrator-recovery button belongs on this step. */
export function offersRecovery(mode: LockMode): boolean {
  return mode === 'pin' || mode === 'code' || mode === 'locked-out' || mode === 'no-user';
}

/** Fills `{name}` placeholders. */
export function fill(template: string, params: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/** Whole seconds left until `iso` (rounded up), 0 when past or unreadable. */
export function secondsUntil(iso: string | null, nowMs: number): number {
  if (iso === null) return 0;
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return 0;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/**
 * The recovery challenge split into its groups for reading aloud: the agent's separators when it
 * has them (`12345-67890-…`), otherwise runs of 5 digits.
 */
export function challengeGroups(code: string): string[] {
  const parts = code.split(/[^0-9０-９]+/).filter((part) => part !== '');
  if (parts.length === 1 && parts[0]!.length > 5) return parts[0]!.match(/.{1,5}/g) ?? [];
  return parts;
}

/** A base32 secret in groups of 4 for typing by hand. */
export function groupSecret(secret: string): string {
  return (secret.replace(/\s+/g, '').match(/.{1,4}/g) ?? []).join(' ');
}

/**
 * The agent's QR SVG as a `data:` URL for an `<img>`: an image cannot run script or reach the
 * page, whatever the SVG holds, so the markup is never parsed into the document.
 */
export function svgDataUrl(svg: string): string {
  const bytes = new TextEncoder().encode(svg);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return `data:image/svg+xml;base64,${btoa(binary)}`;
}

/** The message for an agent error code; a `check-digit` error with groups names them. */
export function lockErrorMessage(code: LockErrorCode, locale: Locale, groups?: readonly number[]): string {
  if (code === 'check-digit' && groups && groups.length > 0) {
    return fill(t('lock.recovery.groupError', locale), { groups: groups.join(locale === 'ja' ? '、' : ', ') });
  }
  const key: MessageKey = `lock.error.${code}`;
  return t(key, locale);
}

export function bridgeErrorMessage(code: BridgeErrorCode, locale: Locale): string {
  const key: MessageKey = `lock.bridge.${code}`;
  return t(key, locale);
}

/** Time and date for the clock, in the page's locale. */
export function clockText(nowMs: number, locale: Locale): { time: string; date: string } {
  const tag = locale === 'ja' ? 'ja-JP' : 'en-GB';
  const at = new Date(nowMs);
  return {
    time: new Intl.DateTimeFormat(tag, { hour: '2-digit', minute: '2-digit', hour12: false }).format(at),
    date: new Intl.DateTimeFormat(tag, { year: 'numeric', month: 'long', day: 'numeric', weekday: 'short' }).format(at),
  };
}
