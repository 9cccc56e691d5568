import { z } from 'zod';
import { EventDataSchema, EventTypeSchema } from './journal.js';
import { AgentStatusSchema } from './api.js';
import { LockStateSchema, RecoveryActionSchema } from './lock.js';
import { RequestAccessSchema, RequestStateSchema } from './requests.js';
import { SelfcheckIdSchema, SelfcheckResultSchema } from './selfcheck.js';

/**
 * The agent's local control channel (Unix socket / named pipe): one JSON object per line each way.
 * Everything arriving here comes from outside the privileged service and is validated before use.
 * Method names follow `<domain>.<verb>`.
 *
 * Who may call what (checked by the agent from the peer's credentials, never from the message):
 * - `any`: any local user (status, the lock view, subscribing to changes);
 * - `console`: the user of the console session the lock covers (unlock attempts, enrolment,
 *   activity, lock-screen heartbeat, lock now, recovery challenge/response), or root acting for it;
 * - `root`: root/SYSTEM only (the PAM helper, the operator's `journal append`).
 * Administrator operations (reset factors, policy, approvals) never travel over this socket: they
 * come from the server, signed or authenticated there.
 */
export const MAX_IPC_LINE_BYTES = 64 * 1024;

/** A PIN/password as typed (bounded; the agent normalises and checks the rules). */
const secretText = z.string().max(256);
/** A 6-digit TOTP code as typed (full-width digits and spaces are normalised by the agent). */
const codeText = z.string().max(32);
/** A login name as the OS knows it. */
export const UserNameSchema = z
  .string()
  .min(1)
  .max(256)
  .refine((name) => !name.includes('/') && [...name].every((ch) => ch.charCodeAt(0) >= 0x20 && ch.charCodeAt(0) !== 0x7f), 'not a user name');

const id = z.number().int().nonnegative();
export const IpcRequestSchema = z.discriminatedUnion('method', [
  z.strictObject({ id, method: z.literal('status.get') }),
  /** Everything the staff-PC status window shows (`StatusView`); pushed again as `status.changed`. */
  z.strictObject({ id, method: z.literal('status.view') }),
  z.strictObject({ id, method: z.literal('journal.append'), params: z.strictObject({ type: EventTypeSchema, data: EventDataSchema }) }),
  /** Pushes `IpcNotification`s on this connection from now on (lock and status changes). */
  z.strictObject({ id, method: z.literal('events.subscribe') }),
  z.strictObject({ id, method: z.literal('lock.get') }),
  /** One factor: the PIN in `locked`, the TOTP code in `second-factor`. */
  z.strictObject({ id, method: z.literal('lock.submit'), params: z.strictObject({ factor: z.enum(['pin', 'totp']), secret: z.union([secretText, codeText]) }) }),
  z.strictObject({ id, method: z.literal('lock.now') }),
  /** Keyboard/mouse activity seen by the session (resets the idle timer while unlocked). */
  z.strictObject({ id, method: z.literal('lock.activity') }),
  /** The lock screen is alive (at least every 5 s while it shows). */
  z.strictObject({ id, method: z.literal('lock.uiHeartbeat') }),
  /** The session told the app it locked / resumed (the app sees these OS events; the agent acts). */
  z.strictObject({ id, method: z.literal('lock.sessionEvent'), params: z.strictObject({ event: z.enum(['os-session-lock', 'resume', 'session-start']) }) }),
  z.strictObject({ id, method: z.literal('lock.enrolBegin'), params: z.strictObject({ pin: secretText }) }),
  z.strictObject({ id, method: z.literal('lock.enrolConfirm'), params: z.strictObject({ code: codeText }) }),
  z.strictObject({ id, method: z.literal('lock.recoveryChallenge'), params: z.strictObject({ action: RecoveryActionSchema }) }),
  z.strictObject({ id, method: z.literal('lock.recoveryRespond'), params: z.strictObject({ response: z.string().max(200) }) }),
  /** USB devices present now, with the agent's decision and the rule that made it (the status window, the request form). */
  z.strictObject({ id, method: z.literal('devices.list') }),
  /** A staff member asks to use a present device (申請); the identity comes from the agent's own record of `deviceKey`. */
  z.strictObject({
    id,
    method: z.literal('request.submit'),
    params: z.strictObject({
      deviceKey: z.string().min(1).max(64),
      purpose: z.string().max(500),
      until: z.iso.datetime({ offset: true }),
      access: z.enum(['read-only', 'read-write']),
    }),
  }),
  /** This terminal's requests and their states (pending / approved / rejected / expired / revoked). */
  z.strictObject({ id, method: z.literal('request.list') }),
  /** The PAM helper: both factors at once for `user` (root only). */
  z.strictObject({ id, method: z.literal('auth.verify'), params: z.strictObject({ user: UserNameSchema, pin: secretText, code: codeText, service: z.string().max(64).optional() }) }),
]);
export type IpcRequest = z.infer<typeof IpcRequestSchema>;
export type IpcMethod = IpcRequest['method'];

export type IpcPrivilege = 'any' | 'console' | 'root';
/** The privilege each method needs; the agent checks it before the handler runs. */
export const IPC_METHOD_PRIVILEGE: Readonly<Record<IpcMethod, IpcPrivilege>> = {
  'status.get': 'any',
  'status.view': 'console',
  'events.subscribe': 'any',
  'lock.get': 'any',
  'journal.append': 'root',
  'auth.verify': 'root',
  'lock.submit': 'console',
  'lock.now': 'console',
  'lock.activity': 'console',
  'lock.uiHeartbeat': 'console',
  'lock.sessionEvent': 'console',
  'lock.enrolBegin': 'console',
  'lock.enrolConfirm': 'console',
  'lock.recoveryChallenge': 'console',
  'lock.recoveryRespond': 'console',
  'devices.list': 'any',
  'request.submit': 'console',
  'request.list': 'console',
};

/**
 * What decided a present device (the status window words each): a policy rule, an approved request,
 * the tier's implicit target, an input device adopted at installation, a decision error or an
 * unreadable device (both blocked), or `unknown` for anything newer than this contract.
 */
export const DEVICE_RULE_KINDS = ['rule', 'exception', 'implicit', 'adopted-input-device', 'error', 'unreadable', 'unknown'] as const;
export type DeviceRuleKind = (typeof DEVICE_RULE_KINDS)[number];

/** One present USB device as the agent decided it (text fields come from the device: render as text). */
export const PresentDeviceSchema = z.strictObject({
  key: z.string(),
  vendorId: z.string(),
  productId: z.string(),
  name: z.string(),
  serial: z.string(),
  interfaces: z.array(z.string()),
  decision: z.enum(['allow', 'block', 'reject', 'read-only']),
  /** How it was decided: a policy rule (with its label), an approved request, the implicit target. */
  rule: z.strictObject({ kind: z.enum(DEVICE_RULE_KINDS), label: z.string().nullable(), exceptionId: z.string().nullable() }),
});
export type PresentDevice = z.infer<typeof PresentDeviceSchema>;

export const LocalStatusSchema = z.strictObject({
  deviceId: z.string().nullable(),
  enrolled: z.boolean(),
  journalLength: z.number().int().nonnegative(),
  ackSeq: z.number().int().nonnegative(),
  serverUrl: z.string().nullable(),
  lastContactAt: z.string().nullable(),
  status: AgentStatusSchema,
});
export type LocalStatus = z.infer<typeof LocalStatusSchema>;

/** Error codes a lock method answers with (stable; the lock screen words them). */
export const LOCK_ERROR_CODES = [
  'wrong-pin',
  'wrong-code',
  'replayed',
  'malformed',
  'backoff',
  'locked-out',
  'not-enrolled',
  'corrupt-secret',
  'wrong-state',
  'no-console-user',
  'offline-expired',
  'pin-rules',
  'no-pending-enrolment',
  'enrolment-expired',
  'already-enrolled',
  'no-key',
  'no-challenge',
  'expired',
  'wrong-response',
  'too-many-attempts',
  'empty',
  'bad-character',
  'bad-length',
  'check-digit',
  'bad-field',
] as const;
export const LockErrorCodeSchema = z.enum(LOCK_ERROR_CODES);
export type LockErrorCode = z.infer<typeof LockErrorCodeSchema>;

/**
 * Everything the lock screen shows, computed by the agent. Strings in it (user and host names)
 * come from the OS and may be hostile: the page renders them as text only.
 */
export const LockViewSchema = z.strictObject({
  state: LockStateSchema,
  /** The console user the lock covers; null when the agent cannot tell (then nobody can unlock here). */
  user: z.string().max(256).nullable(),
  hostname: z.string().max(255),
  /** Factors the policy requires, in order. */
  factors: z.array(z.enum(['pin', 'totp'])).min(1).max(2),
  enrolled: z.boolean(),
  pendingEnrolment: z.boolean(),
  /** Failures left before the lock-out (administrator recovery needed). */
  remainingAttempts: z.number().int().nonnegative(),
  /** ISO time before which no attempt is accepted (back-off), or null. */
  retryAt: z.string().nullable(),
  lockedOut: z.boolean(),
  /** Days the cached factors still work without the server, while it cannot be reached; null when it can (or there is none). */
  offlineDaysLeft: z.number().int().nonnegative().nullable(),
  /** The recovery challenge on screen, if one was asked for. */
  challenge: z.strictObject({ code: z.string().max(64), action: RecoveryActionSchema, expiresAt: z.string() }).nullable(),
  /** The agent's clock (ISO), so the screen's clock and countdowns agree with the agent. */
  now: z.string(),
});
export type LockView = z.infer<typeof LockViewSchema>;

/** The answer of `lock.submit`, `lock.enrolConfirm`, `lock.recoveryRespond`, `auth.verify`. */
export const LockAttemptResultSchema = z.strictObject({
  ok: z.boolean(),
  error: z.strictObject({ code: LockErrorCodeSchema, message: z.string().max(500), groups: z.array(z.number().int().min(1).max(10)).optional() }).optional(),
  view: LockViewSchema,
});
export type LockAttemptResult = z.infer<typeof LockAttemptResultSchema>;

/** The answer of `lock.enrolBegin`: what the enrolment screen shows (the QR is an SVG the agent rendered). */
export const EnrolmentOfferSchema = z.strictObject({
  ok: z.boolean(),
  error: z.strictObject({ code: LockErrorCodeSchema, message: z.string().max(500) }).optional(),
  offer: z.strictObject({ uri: z.string().max(1000), qrSvg: z.string().max(200_000), secret: z.string().max(64) }).optional(),
  view: LockViewSchema,
});
export type EnrolmentOffer = z.infer<typeof EnrolmentOfferSchema>;

/** Why the agent refused `request.submit` (stable; the request form words them). */
export const REQUEST_REFUSAL_CODES = ['no-console-user', 'no-such-device', 'not-blocked', 'purpose-empty', 'bad-window'] as const;
export type RequestRefusalCode = (typeof REQUEST_REFUSAL_CODES)[number];

/** One of this terminal's requests as `request.list` answers it (the newest first). */
export const LocalRequestViewSchema = z.strictObject({
  id: z.string().max(64),
  device: z.strictObject({ id: z.string().max(16), name: z.string().max(512), serial: z.string().max(512) }),
  purpose: z.string().max(1000),
  until: z.string().max(64),
  access: RequestAccessSchema,
  /** `unsent`: kept by the agent until the server can be reached. */
  state: z.union([RequestStateSchema, z.literal('unsent')]),
  approvedUntil: z.string().max(64).nullable(),
  approvedAccess: RequestAccessSchema.nullable(),
  reason: z.string().max(1000).nullable(),
  submittedAt: z.string().max(64),
});
export type LocalRequestView = z.infer<typeof LocalRequestViewSchema>;
export const RequestSubmitAnswerSchema = z.strictObject({ id: z.string().max(64), requests: z.array(LocalRequestViewSchema).max(1000) });
export type RequestSubmitAnswer = z.infer<typeof RequestSubmitAnswerSchema>;

/** Export channels a blocked event can name (USB devices and the other channels of agent/export). */
export const ExportChannelSchema = z.enum(['usb', 'optical', 'sd-card', 'removable-media', 'external-pcie', 'thunderbolt', 'printer']);
export type ExportChannel = z.infer<typeof ExportChannelSchema>;

/** A device or medium the agent blocked (the status window's recent list, the app's notification). */
export const BlockedNoticeSchema = z.strictObject({
  at: z.string().max(64),
  channel: ExportChannelSchema,
  /** The present device's key for USB (the request form preselects it); null for other channels. */
  key: z.string().max(64).nullable(),
  /** From the device: render as text. */
  name: z.string().max(512),
  /** `vvvv:pppp` for USB, '' otherwise. */
  id: z.string().max(16),
  decision: z.enum(['block', 'reject', 'read-only']),
  /** Whether staff can ask for it (a USB device blocked by policy, not an input device that was rejected). */
  requestable: z.boolean(),
});
export type BlockedNotice = z.infer<typeof BlockedNoticeSchema>;

/**
 * Everything the status window shows, computed by the agent (the app keeps no state of its own).
 * Text from devices and the OS (names, serials, user and host names) may be hostile: pages render it
 * as text only.
 */
export const StatusViewSchema = z.strictObject({
  /** The agent's clock (ISO): "time left" and "ago" are computed against it. */
  now: z.string().max(64),
  hostname: z.string().max(255),
  user: z.string().max(256).nullable(),
  tier: z.enum(['mynumber', 'lgwan', 'internet']),
  enforcement: z.strictObject({ state: z.enum(['enforced', 'audit', 'unenforced']), reason: z.string().max(100).nullable() }),
  policy: z.strictObject({
    /** Null while the built-in profile is in force (no signed policy received yet). */
    version: z.number().int().nonnegative().nullable(),
    origin: z.enum(['built-in', 'signed']),
    mode: z.enum(['enforce', 'audit']),
    /** When this agent accepted the policy in force (null for the built-in profile). */
    receivedAt: z.string().max(64).nullable(),
  }),
  server: z.strictObject({
    configured: z.boolean(),
    enrolled: z.boolean(),
    lastContactAt: z.string().max(64).nullable(),
    reachable: z.boolean(),
  }),
  lockState: LockStateSchema,
  devices: z.array(PresentDeviceSchema).max(256),
  /** Approved requests (一時許可) in force for the console user now. */
  exceptions: z
    .array(
      z.strictObject({
        id: z.string().max(64),
        /** The present device it covers, if one is plugged in; else the request's device name, else the match rule. */
        device: z.string().max(1024),
        until: z.string().max(64),
        access: RequestAccessSchema,
      }),
    )
    .max(256),
  /** The most recent blocked devices and media, newest first. */
  recentBlocked: z.array(BlockedNoticeSchema).max(20),
  compliance: z.strictObject({
    /** Null until the first self-inspection (自己点検) has run since the agent started. */
    overall: SelfcheckResultSchema.nullable(),
    ranAt: z.string().max(64).nullable(),
    pass: z.number().int().nonnegative(),
    fail: z.number().int().nonnegative(),
    unknown: z.number().int().nonnegative(),
    failing: z.array(SelfcheckIdSchema).max(64),
  }),
});
export type StatusView = z.infer<typeof StatusViewSchema>;

export const IpcResponseSchema = z.union([
  z.strictObject({ id, ok: z.literal(true), result: z.json() }),
  z.strictObject({
    id: id.nullable(),
    ok: z.literal(false),
    error: z.strictObject({ code: z.string(), message: z.string() }),
  }),
]);
export type IpcResponse = z.infer<typeof IpcResponseSchema>;

/** Pushed to subscribed connections (no `id`): the new lock view or status. */
export const IpcNotificationSchema = z.discriminatedUnion('event', [
  z.strictObject({ event: z.literal('lock.changed'), data: LockViewSchema }),
  z.strictObject({ event: z.literal('status.changed'), data: StatusViewSchema }),
  /** A device or medium was just blocked (once per plug-in; the app shows a notification). */
  z.strictObject({ event: z.literal('device.blocked'), data: BlockedNoticeSchema }),
]);
export type IpcNotification = z.infer<typeof IpcNotificationSchema>;
