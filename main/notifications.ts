import { t, type Locale } from '../shared/i18n.js';
import type { BlockedNotice } from '../shared/ipc.js';

/**
 * Native notifications for blocked devices, decided without Electron. The agent announces a
 * device once per plug-in; this words it in the staff member's language, names the device and
 * what to do (申請), and keeps a burst (a hub full of devices) from flooding the desktop.
 */

export interface NotificationContent {
  readonly title: string;
  readonly body: string;
  /** The device the request form should preselect when the notification is clicked; null: nothing to request. */
  readonly requestDeviceKey: string | null;
}

/** At most this many notifications per window; the rest are counted into one summary. */
export const BURST_LIMIT = 3;
export const BURST_WINDOW_MS = 30_000;
const NAME_MAX = 60;

/**
 * A device's name made safe for a notification: the text is the device's (attacker-controlled).
 * Some Linux notification servers read the body as markup (`<b>`, `<a href>`, `<img>`), so
 * `<`, `>` and `&` become their full-width forms — shown, never interpreted, on every server;
 * control and bidi-override characters are dropped; long names are cut.
 */
export function inertName(name: string): string {
  const cleaned = [...name]
    .filter((ch) => {
      const code = ch.codePointAt(0) ?? 0;
      return code >= 0x20 && code !== 0x7f && !(code >= 0x80 && code < 0xa0) && !(code >= 0x202a && code <= 0x202e) && !(code >= 0x2066 && code <= 0x2069);
    })
    .join('')
    .replace(/</g, '＜')
    .replace(/>/g, '＞')
    .replace(/&/g, '＆')
    .trim();
  const chars = [...cleaned];
  return chars.length > NAME_MAX ? `${chars.slice(0, NAME_MAX - 1).join('')}…` : cleaned;
}

const fill = (template: string, values: Readonly<Record<string, string>>): string => template.replace(/\{(\w+)\}/g, (whole, key: string) => values[key] ?? whole);

export function blockedNotification(notice: BlockedNotice, locale: Locale): NotificationContent {
  const name = inertName(notice.name) || t('notify.unnamedDevice', locale);
  const device = notice.id === '' ? name : `${name} (${notice.id})`;
  if (notice.channel !== 'usb') {
    return { title: t('notify.mediaBlocked.title', locale), body: fill(t('notify.mediaBlocked.body', locale), { device }), requestDeviceKey: null };
  }
  if (notice.decision === 'read-only') {
    return { title: t('notify.readOnly.title', locale), body: fill(t('notify.readOnly.body', locale), { device }), requestDeviceKey: notice.requestable ? notice.key : null };
  }
  return {
    title: t('notify.blocked.title', locale),
    body: fill(t(notice.requestable ? 'notify.blocked.body' : 'notify.blocked.bodyNoRequest', locale), { device }),
    requestDeviceKey: notice.requestable ? notice.key : null,
  };
}

/**
 * Lets the first `BURST_LIMIT` notifications of a window through and counts the rest; when the
 * window ends, one summary names how many more were blocked (see the status window).
 */
export class NotificationThrottle {
  private windowStart = Number.NEGATIVE_INFINITY;
  private shown = 0;
  private held = 0;

  constructor(private readonly nowMs: () => number) {}

  /** Whether this notification may be shown now. */
  admit(): boolean {
    const now = this.nowMs();
    if (now - this.windowStart >= BURST_WINDOW_MS) {
      this.windowStart = now;
      this.shown = 0;
    }
    if (this.shown < BURST_LIMIT) {
      this.shown += 1;
      return true;
    }
    this.held += 1;
    return false;
  }

  /** How many were held back since the last call (0 when none); the caller shows one summary. */
  takeHeld(): number {
    const held = this.held;
    this.held = 0;
    return held;
  }
}

export function heldSummary(count: number, locale: Locale): NotificationContent {
  return { title: t('notify.blocked.title', locale), body: fill(t('notify.more', locale), { n: String(count) }), requestDeviceKey: null };
}

/**
 * From the agent's blocked notices to shown notifications: worded, throttled, and a summary of the
 * held ones once the burst window ends. `show` is Electron's `Notification` in the app.
 */
export class BlockedNotifier {
  private readonly throttle: NotificationThrottle;
  private summaryTimer: unknown = null;

  constructor(
    private readonly options: {
      readonly show: (content: NotificationContent) => void;
      readonly locale: () => Locale;
      readonly nowMs: () => number;
      readonly setTimer: (callback: () => void, ms: number) => unknown;
      readonly clearTimer: (timer: unknown) => void;
    },
  ) {
    this.throttle = new NotificationThrottle(options.nowMs);
  }

  blocked(notice: BlockedNotice): void {
    if (this.throttle.admit()) {
      this.options.show(blockedNotification(notice, this.options.locale()));
      return;
    }
    this.summaryTimer ??= this.options.setTimer(() => {
      this.summaryTimer = null;
      const held = this.throttle.takeHeld();
      if (held > 0) this.options.show(heldSummary(held, this.options.locale()));
    }, BURST_WINDOW_MS);
  }

  dispose(): void {
    if (this.summaryTimer !== null) this.options.clearTimer(this.summaryTimer);
    this.summaryTimer = null;
  }
}
