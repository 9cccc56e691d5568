import type { Enforcement } from '../shared/api.js';
import type { BlockedNotice, ExportChannel, LocalRequestView, PresentDevice, StatusView } from '../shared/ipc.js';
import type { JournalEntry } from '../shared/journal.js';
import type { PolicyException } from '../shared/policy.js';
import type { SelfcheckRun } from '../shared/selfcheck.js';

/**
 * What the staff-PC status window shows (`StatusView`, shared/ipc.ts), built by the agent from the
 * parts that own each fact, and pushed to subscribed apps when it changes — the app never polls.
 *
 * Blocked devices are taken from the journal as it is written (the one record of what was
 * decided), so the status window, the notification and the audit trail cannot disagree. A
 * device is announced once per plug-in: again only after it was detached, or when its decision
 * changes (e.g. read-only → block when an approval ends).
 */

export interface StatusSources {
  readonly nowMs: () => number;
  readonly hostname: string;
  readonly user: () => string | null;
  readonly tier: StatusView['tier'];
  readonly enforcement: () => Enforcement;
  readonly policy: () => { version: number | null; origin: 'built-in' | 'signed'; mode: 'enforce' | 'audit'; receivedAtMs: number | null; exceptions: readonly PolicyException[] };
  readonly server: () => StatusView['server'];
  readonly lockState: () => StatusView['lockState'];
  readonly devices: () => PresentDevice[];
  readonly requests: () => readonly LocalRequestView[];
  readonly lastInspection: () => SelfcheckRun | null;
}

export interface StatusPublisherOptions {
  readonly sources: StatusSources;
  /** Called with each view that differs from the last one published. */
  readonly publish: (view: StatusView) => void;
  /** Called once per newly blocked device or medium. */
  readonly notify: (notice: BlockedNotice) => void;
  /** Changes arriving within this window are published as one view (default 100 ms). */
  readonly debounceMs?: number;
  readonly onError?: (error: unknown) => void;
}

/** How many blocked events the view keeps (newest first). */
export const RECENT_BLOCKED_MAX = 20;

/** Journal event types after which the view may have changed. */
const RELEVANT = /^(device|export|policy|exception|lock|selfcheck|request|agent|print)\./;

export class StatusPublisher {
  private readonly recent: BlockedNotice[] = [];
  /** key (or channel|name) → the decision last announced, until the device goes away. */
  private readonly announced = new Map<string, BlockedNotice['decision']>();
  private timer: NodeJS.Timeout | null = null;
  private lastJson: string | null = null;
  private disposed = false;

  constructor(private readonly options: StatusPublisherOptions) {}

  /** The view now (what `status.view` answers). */
  view(): StatusView {
    const s = this.options.sources;
    const nowMs = s.nowMs();
    const policy = s.policy();
    const user = s.user();
    const devices = s.devices();
    const enforcement = s.enforcement();
    const requests = s.requests();
    const run = s.lastInspection();
    return {
      now: new Date(nowMs).toISOString(),
      hostname: s.hostname,
      user,
      tier: s.tier,
      enforcement: { state: enforcement.state, reason: enforcement.reason ?? null },
      policy: {
        version: policy.origin === 'signed' ? policy.version : null,
        origin: policy.origin,
        mode: policy.mode,
        receivedAt: policy.origin === 'signed' && policy.receivedAtMs !== null ? new Date(policy.receivedAtMs).toISOString() : null,
      },
      server: s.server(),
      lockState: s.lockState(),
      devices,
      exceptions: policy.exceptions
        .filter((exception) => (exception.user === undefined || exception.user === user) && Date.parse(exception.until) > nowMs)
        .map((exception) => ({
          id: exception.id,
          device: devices.find((device) => device.rule.exceptionId === exception.id)?.name || requests.find((request) => request.id === exception.id)?.device.name || exception.device,
          until: exception.until,
          access: exception.access,
        })),
      recentBlocked: [...this.recent],
      compliance:
        run === null
          ? { overall: null, ranAt: null, pass: 0, fail: 0, unknown: 0, failing: [] }
          : {
              overall: run.summary.overall,
              ranAt: run.finishedAt,
              pass: run.summary.pass,
              fail: run.summary.fail,
              unknown: run.summary.unknown,
              failing: run.checks.filter((check) => check.result === 'fail').map((check) => check.id),
            },
    };
  }

  /** Feeds journal entries as they become durable (Journal.onDidPersistEntries). */
  observe(entries: readonly JournalEntry[]): void {
    let relevant = false;
    for (const entry of entries) {
      if (!RELEVANT.test(entry.type)) continue;
      relevant = true;
      const notice = blockedNotice(entry);
      if (notice !== null) this.blocked(notice);
      else if (entry.type === 'device.detached' || entry.type === 'device.allowed') this.announced.delete(text(entry.data.key, 64));
      else if (entry.type === 'export.allowed') this.announced.delete(`${text(entry.data.channel, 32)}|${mediumName(entry.data.device)}`);
    }
    if (relevant) this.nudge();
  }

  /** Something the view shows may have changed: publish after the debounce if it did. */
  nudge(): void {
    if (this.disposed || this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.publishIfChanged();
    }, this.options.debounceMs ?? 100);
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private publishIfChanged(): void {
    try {
      const view = this.view();
      // The clock alone is not a change (pages count time down themselves).
      const json = JSON.stringify({ ...view, now: '' });
      if (json === this.lastJson) return;
      this.lastJson = json;
      this.options.publish(view);
    } catch (error) {
      this.options.onError?.(error);
    }
  }

  private blocked(notice: BlockedNotice): void {
    const identity = notice.key ?? `${notice.channel}|${notice.name}`;
    if (this.announced.get(identity) === notice.decision) return;
    this.announced.set(identity, notice.decision);
    this.recent.unshift(notice);
    this.recent.length = Math.min(this.recent.length, RECENT_BLOCKED_MAX);
    try {
      this.options.notify(notice);
    } catch (error) {
      this.options.onError?.(error);
    }
  }
}

const text = (value: unknown, max: number): string => (typeof value === 'string' ? value.slice(0, max) : '');
/** A medium's name as staff know it: the drive's model ("DVD-RW …"), else the Thunderbolt device, else the kernel name. */
function mediumName(value: unknown): string {
  const device = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const thunderbolt = `${text(device.vendor, 200)} ${text(device.device, 200)}`.trim();
  return text(device.model, 512) || thunderbolt || text(device.name, 512);
}
const EXPORT_CHANNELS: readonly ExportChannel[] = ['optical', 'sd-card', 'removable-media', 'external-pcie', 'thunderbolt'];

/**
 * The notice for a journaled block, or null when the entry is not one the user should hear about:
 * audit mode (nothing was blocked) and unreadable stubs without a name are still listed, but a
 * device that was allowed is not.
 */
export function blockedNotice(entry: JournalEntry): BlockedNotice | null {
  const data = entry.data;
  const decision = data.decision;
  if (decision !== 'block' && decision !== 'reject' && decision !== 'read-only') return null;
  if (data.audit === true) return null;
  const device = typeof data.device === 'object' && data.device !== null && !Array.isArray(data.device) ? (data.device as Record<string, unknown>) : {};
  if (entry.type === 'device.blocked' || entry.type === 'device.readonly') {
    const key = text(data.key, 64);
    return {
      at: entry.time,
      channel: 'usb',
      key: key === '' ? null : key,
      name: text(device.name, 512),
      id: text(device.id, 16),
      decision,
      // The agent takes requests for present USB devices; an unreadable one has no identity to approve.
      requestable: key !== '' && text(device.id, 16) !== '',
    };
  }
  if (entry.type === 'export.blocked') {
    const channel = EXPORT_CHANNELS.find((candidate) => candidate === data.channel);
    if (channel === undefined) return null;
    return { at: entry.time, channel, key: null, name: mediumName(device), id: '', decision, requestable: false };
  }
  return null;
}
