import { z } from 'zod';
import {
  IpcRequestSchema,
  LocalRequestViewSchema,
  LockViewSchema,
  RequestSubmitAnswerSchema,
  StatusViewSchema,
  type LocalRequestView,
  type PresentDevice,
  type RequestRefusalCode,
  type StatusView,
} from '../../shared/ipc.js';
import type { Locale } from '../../shared/i18n.js';
import type { UiPrefs } from '../../renderer/preload-api.js';
import type { PreloadPage } from '../helpers/browser.js';
import { DAY, HOUR, MINUTE, NOW_MS, ScriptedBackend, iso, ok, type Answer } from './scripted-backend.js';
import { baseView } from './scripted-lock-agent.js';

/**
 * A deterministic stand-in for main + agent behind the status window's and the request form's
 * preload channels. Everything it answers or pushes goes through the contract's schemas
 * (`StatusViewSchema`, `LocalRequestViewSchema`, …), so the fixtures cannot drift from
 * `shared/ipc.ts`; a draft the page submits is checked as the agent's `request.submit` params.
 * No clock of its own: times come from the fixture's `now`. Records every call.
 */

/** A Windows-style key: `\` and `&` must survive the `#device=` fragment. */
export const USB_STICK_KEY = 'USB\\VID_0781&PID_5583\\4C530001';
export const CAMERA_KEY = '1-2.3';
export const KEYBOARD_KEY = '1-1';
export const EXCEPTION_DEVICE_KEY = '2-4';

export function device(overrides: Partial<PresentDevice> = {}): PresentDevice {
  return {
    key: USB_STICK_KEY,
    vendorId: '0781',
    productId: '5583',
    name: 'SanDisk Ultra Fit',
    serial: '4C530001230517109031',
    interfaces: ['08:06:50'],
    decision: 'block',
    rule: { kind: 'implicit', label: null, exceptionId: null },
    ...overrides,
  };
}

export function baseStatus(overrides: Partial<StatusView> = {}): StatusView {
  return StatusViewSchema.parse({
    now: iso(0),
    hostname: 'SHIYAKUSHO-PC-0123',
    user: 'tanaka.hanako',
    tier: 'lgwan',
    enforcement: { state: 'enforced', reason: null },
    policy: { version: 12, origin: 'signed', mode: 'enforce', receivedAt: iso(-2 * HOUR) },
    server: { configured: true, enrolled: true, lastContactAt: iso(-3 * MINUTE), reachable: true },
    lockState: 'unlocked',
    devices: [
      device({ key: KEYBOARD_KEY, vendorId: '046d', productId: 'c31c', name: 'Logitech USB Keyboard', serial: '', interfaces: ['03:01:01'], decision: 'allow', rule: { kind: 'adopted-input-device', label: null, exceptionId: null } }),
      device(),
      device({ key: CAMERA_KEY, vendorId: '046d', productId: '0825', name: 'Logitech Webcam C270', serial: '', interfaces: ['0e:01:00'], decision: 'reject', rule: { kind: 'rule', label: 'カメラ禁止', exceptionId: null } }),
      device({ key: EXCEPTION_DEVICE_KEY, vendorId: '0930', productId: '6545', name: 'TOSHIBA TransMemory', serial: '0022CFF6A1B2', decision: 'read-only', rule: { kind: 'exception', label: null, exceptionId: 'exc_1' } }),
    ],
    exceptions: [{ id: 'exc_1', device: 'TOSHIBA TransMemory', until: iso(2 * DAY + 3 * HOUR), access: 'read-only' }],
    recentBlocked: [
      { at: iso(-5 * MINUTE), channel: 'usb', key: USB_STICK_KEY, name: 'SanDisk Ultra Fit', id: '0781:5583', decision: 'block', requestable: true },
      { at: iso(-40 * MINUTE), channel: 'optical', key: null, name: 'HL-DT-ST DVDRAM GP57EB40', id: '', decision: 'block', requestable: false },
    ],
    compliance: { overall: 'pass', ranAt: iso(-1 * HOUR), pass: 12, fail: 0, unknown: 0, failing: [] },
    ...overrides,
  });
}

export function request(overrides: Partial<LocalRequestView> = {}): LocalRequestView {
  return LocalRequestViewSchema.parse({
    id: 'req_0123456789abcdef01234567',
    device: { id: '0781:5583', name: 'SanDisk Ultra Fit', serial: '4C530001230517109031' },
    purpose: '住民説明会の資料を持ち出すため',
    until: iso(7 * DAY),
    access: 'read-write',
    state: 'pending',
    approvedUntil: null,
    approvedAccess: null,
    reason: null,
    submittedAt: iso(-1 * DAY),
    ...overrides,
  });
}

/** One of my requests in every state (the newest first). */
export function requestsInEveryState(): LocalRequestView[] {
  return [
    request({ id: 'req_000000000000000000000006', state: 'unsent', submittedAt: iso(-10 * MINUTE) }),
    request({ id: 'req_000000000000000000000005', state: 'pending', submittedAt: iso(-2 * HOUR) }),
    request({
      id: 'req_000000000000000000000004',
      state: 'approved',
      until: iso(7 * DAY),
      access: 'read-write',
      approvedUntil: iso(2 * DAY + 3 * HOUR),
      approvedAccess: 'read-only',
      submittedAt: iso(-1 * DAY),
    }),
    request({ id: 'req_000000000000000000000003', state: 'rejected', reason: '個人の機器は使用できません', submittedAt: iso(-3 * DAY) }),
    request({ id: 'req_000000000000000000000002', state: 'expired', submittedAt: iso(-20 * DAY) }),
    request({ id: 'req_000000000000000000000001', state: 'revoked', reason: '目的外の使用', submittedAt: iso(-30 * DAY) }),
  ];
}

/** Channels main answers itself (the app's preferences, opening a window): they work without the agent. */
const MAIN_ONLY = new Set(['sekimori:app.prefs', 'sekimori:app.setLanguage', 'sekimori:app.openRequestForm']);

export class ScriptedStatusAgent extends ScriptedBackend {
  prefs: UiPrefs = { language: 'ja' };
  /** When set, `requests.submit` is refused with this code, as the agent refuses. */
  refuseWith: RequestRefusalCode | null = null;

  constructor(
    public status: StatusView = baseStatus(),
    public requests: LocalRequestView[] = [],
  ) {
    super(MAIN_ONLY);
  }

  /** Pushes a status view to the page as main does, after checking it against the contract. */
  async pushStatus(session: PreloadPage, view: StatusView): Promise<void> {
    this.status = StatusViewSchema.parse(view);
    await session.deliver('sekimori:status.changed', this.status);
  }

  async pushConnection(session: PreloadPage, connection: 'connecting' | 'connected' | 'unavailable'): Promise<void> {
    this.connection = connection;
    await session.deliver('sekimori:agent.connectionChanged', connection);
  }

  async pushPrefs(session: PreloadPage, language: Locale): Promise<void> {
    this.prefs = { language };
    await session.deliver('sekimori:app.prefsChanged', this.prefs);
  }

  protected answer(channel: string, args: unknown[]): Answer | null {
    switch (channel) {
      case 'sekimori:status.get':
        return ok(StatusViewSchema.parse(this.status));
      case 'sekimori:lock.now':
        this.status = { ...this.status, lockState: 'locked' };
        return ok(LockViewSchema.parse(baseView({ user: this.status.user, hostname: this.status.hostname, now: this.status.now })));
      case 'sekimori:requests.list':
        return ok(z.array(LocalRequestViewSchema).parse(this.requests));
      case 'sekimori:requests.submit':
        return this.submit(args);
      case 'sekimori:app.openRequestForm':
        return ok(null);
      case 'sekimori:app.prefs':
        return ok(this.prefs);
      case 'sekimori:app.setLanguage':
        this.prefs = { language: z.enum(['ja', 'en']).parse(args[0]) };
        return ok(this.prefs);
      default:
        return null;
    }
  }

  private refuse(reason: RequestRefusalCode): Answer {
    return { ok: false, error: { code: 'agent-refused', message: `${reason}: scripted refusal`, reason } };
  }

  private submit(args: unknown[]): Answer {
    // Exactly one argument, shaped as the agent's `request.submit` params (what main forwards).
    if (args.length !== 1) return { ok: false, error: { code: 'refused', message: 'bad arguments' } };
    const parsed = IpcRequestSchema.safeParse({ id: 1, method: 'request.submit', params: args[0] });
    if (!parsed.success || parsed.data.method !== 'request.submit') return { ok: false, error: { code: 'refused', message: 'bad arguments' } };
    const draft = parsed.data.params;
    if (this.refuseWith !== null) return this.refuse(this.refuseWith);
    const present = this.status.devices.find((candidate) => candidate.key === draft.deviceKey);
    if (!present) return this.refuse('no-such-device');
    if (present.decision === 'allow') return this.refuse('not-blocked');
    if (draft.purpose.trim() === '') return this.refuse('purpose-empty');
    const untilMs = Date.parse(draft.until);
    if (!(untilMs > NOW_MS) || untilMs - NOW_MS > 90 * DAY) return this.refuse('bad-window');
    const id = `req_${String(this.requests.length + 100).padStart(24, '0')}`;
    const created = request({
      id,
      device: { id: `${present.vendorId}:${present.productId}`, name: present.name, serial: present.serial },
      purpose: draft.purpose,
      until: draft.until,
      access: draft.access,
      state: 'unsent',
      submittedAt: this.status.now,
    });
    this.requests = [created, ...this.requests];
    return ok(RequestSubmitAnswerSchema.parse({ id, requests: this.requests }));
  }
}
