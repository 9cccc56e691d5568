import { z } from 'zod';
import { HashSchema, JournalEntrySchema } from './journal.js';

/**
 * The agent ↔ server protocol, version 1 (DESIGN.md §7). Every request body is `.strict()`:
 * unknown fields are refused with 400, not ignored, so a typo or a forged field never passes
 * silently. Responses are parsed by the agent with the same schemas.
 */
export const API_PREFIX = '/api/v1';

export const ApiPaths = {
  health: `${API_PREFIX}/health`,
  enroll: `${API_PREFIX}/enroll`,
  heartbeat: `${API_PREFIX}/heartbeat`,
  events: `${API_PREFIX}/events`,
  policy: `${API_PREFIX}/policy`,
  adminPolicies: `${API_PREFIX}/admin/policies`,
  adminDevices: `${API_PREFIX}/admin/devices`,
  /** Device auth: PUT a user's enrolled factors (roaming); POST …/lookup to fetch them on another terminal. */
  credentials: `${API_PREFIX}/credentials`,
  credentialsLookup: `${API_PREFIX}/credentials/lookup`,
  /** Admin: turn a recovery challenge into a response (POST). */
  adminRecovery: `${API_PREFIX}/admin/recovery`,
  /** Admin: a user's enrolment state (GET) and reset (DELETE …/:user/credentials). */
  adminUsers: `${API_PREFIX}/admin/users`,
  /** Device auth: submit a device request (POST) and list this terminal's requests (GET). */
  requests: `${API_PREFIX}/requests`,
  /** Admin: list requests (GET); approve / reject / revoke one (POST …/:id/approve|reject|revoke). */
  adminRequests: `${API_PREFIX}/admin/requests`,
  /** Admin: the administrators' audit trail (GET), newest first. */
  adminActions: `${API_PREFIX}/admin/actions`,
} as const;

/** Largest request body the server reads, in bytes (a full events batch fits with room). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Most entries one events batch may carry. */
export const MAX_BATCH_ENTRIES = 500;

const shortText = (max: number) => z.string().min(1).max(max);

export const HostFactsSchema = z.strictObject({
  hostname: shortText(255),
  os: shortText(100),
  arch: shortText(32),
  /** Stable hardware identity (e.g. /etc/machine-id); clones share it, so it never identifies a device alone. */
  hardwareId: shortText(200),
  agentVersion: shortText(50),
});
export type HostFacts = z.infer<typeof HostFactsSchema>;

export const EnrollRequestSchema = z.strictObject({
  token: z.string().min(16).max(200),
  host: HostFactsSchema,
});
export type EnrollRequest = z.infer<typeof EnrollRequestSchema>;

export const DeviceIdSchema = z.string().regex(/^dev_[0-9a-f]{32}$/, 'not a device id');

export const EnrollResponseSchema = z.strictObject({
  deviceId: DeviceIdSchema,
  /** Bearer secret for every later request: `<deviceId>.<secret>`. The server keeps only its hash. */
  credential: z.string().min(40).max(200),
  serverTime: z.string(),
  /**
   * The server's Ed25519 policy-signing public key (SPKI DER, base64). The agent pins it at
   * enrolment (or takes it from the installer's config, which wins) and refuses any policy that
   * this key did not sign.
   */
  policyPublicKey: z.string().min(40).max(200),
  /**
   * The device's administrator-recovery key (32 random bytes, base64) and its epoch. The server
   * keeps it (encrypted at rest) to answer recovery challenges; the agent keeps it root-only.
   */
  recoveryKey: z.base64().length(44),
  recoveryKeyEpoch: z.int().min(0),
});
export type EnrollResponse = z.infer<typeof EnrollResponseSchema>;

/**
 * A policy as the server delivers it (DESIGN.md §5): `payload` is the policy's JSON text exactly as
 * signed, `signature` an Ed25519 signature (base64) over its UTF-8 bytes by the key `keyId`
 * (first 16 hex digits of SHA-256 over the SPKI DER). The agent verifies before it parses.
 */
export const SignedPolicySchema = z.strictObject({
  payload: z.string().min(2).max(4 * 1024 * 1024),
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'an Ed25519 signature in base64'),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
});
export type SignedPolicy = z.infer<typeof SignedPolicySchema>;

/** Whether this agent can actually control devices here. `unenforced` never pretends otherwise. */
export const EnforcementSchema = z.strictObject({
  state: z.enum(['enforced', 'audit', 'unenforced']),
  /** Why, in a stable code: `not-root`, `no-usb-bus`, `unsupported-platform`, … */
  reason: z.string().max(100).optional(),
  /** False while this platform's enforcer has only been tested at its OS boundary, not on a real OS. */
  verifiedOnRealOs: z.boolean().optional(),
});
export type Enforcement = z.infer<typeof EnforcementSchema>;

export const LockStateSchema = z.enum(['locked', 'second-factor', 'unlocked', 'unknown']);

export const AgentStatusSchema = z.strictObject({
  agentVersion: shortText(50),
  enforcement: EnforcementSchema,
  lockState: LockStateSchema,
  /** The terminal's tier: which tier's policy the server sends it. */
  tier: z.enum(['mynumber', 'lgwan', 'internet']).optional(),
  policyVersion: z.number().int().nonnegative().nullable(),
  journal: z.strictObject({
    length: z.number().int().nonnegative(),
    headHash: HashSchema,
  }),
});
export type AgentStatus = z.infer<typeof AgentStatusSchema>;

/** The agent's answer to one command (delivered with the next heartbeat). */
export const CommandAckSchema = z.strictObject({
  id: z.string().min(1).max(100),
  ok: z.boolean(),
  /** Why it failed, or what it did (no secrets). */
  detail: z.string().max(500).optional(),
});
export type CommandAck = z.infer<typeof CommandAckSchema>;

export const HeartbeatRequestSchema = z.strictObject({
  status: AgentStatusSchema,
  /** Results of commands received earlier; the server stops re-sending a command once acknowledged. */
  acks: z.array(CommandAckSchema).max(100).optional(),
  /**
   * The recovery key the agent holds: its epoch and whether it was used since the server last sent
   * one (then the server sends a fresh random key with a `set-recovery-key` command).
   */
  recovery: z.strictObject({ keyEpoch: z.int().min(0), rotationDue: z.boolean() }).optional(),
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequestSchema>;

/**
 * Commands arrive with the heartbeat until acknowledged. The envelope is open (an older agent
 * acknowledges an unknown type with ok: false instead of failing the heartbeat); the agent parses
 * the ones it knows with `KnownCommandSchema`.
 */
export const CommandSchema = z.strictObject({
  id: z.string().min(1).max(100),
  type: z.string().max(64),
  params: z.record(z.string(), z.json()).optional(),
});
export type Command = z.infer<typeof CommandSchema>;

const commandId = z.string().min(1).max(100);
export const KnownCommandSchema = z.discriminatedUnion('type', [
  /** Remote lock (trigger `remote-lock`). */
  z.strictObject({ id: commandId, type: z.literal('lock'), params: z.strictObject({ reason: z.string().max(500).optional() }).optional() }),
  /** Fetch the policy and re-upload the journal from the server's ack now. */
  z.strictObject({ id: commandId, type: z.literal('resync'), params: z.strictObject({}).optional() }),
  /** Forget a user's PIN and TOTP here (the user enrols again). */
  z.strictObject({ id: commandId, type: z.literal('reset-factors'), params: z.strictObject({ user: z.string().min(1).max(256) }) }),
  /** A fresh random recovery key (base64, 32 bytes) for `epoch`. */
  z.strictObject({ id: commandId, type: z.literal('set-recovery-key'), params: z.strictObject({ key: z.base64().length(44), epoch: z.int().min(0) }) }),
  /** Run the self-inspection (自己点検) now; the results reach the server as a `selfcheck.result` journal entry naming this command's id. */
  z.strictObject({ id: commandId, type: z.literal('selfcheck'), params: z.strictObject({}).optional() }),
]);
export type KnownCommand = z.infer<typeof KnownCommandSchema>;

/** A PIN hash as the agent stores it (scrypt parameters kept with the hash). */
export const PinHashSchema = z.strictObject({
  algorithm: z.literal('scrypt'),
  N: z.int().min(2 ** 10).max(2 ** 20),
  r: z.int().min(1).max(32),
  p: z.int().min(1).max(16),
  keyLength: z.int().min(16).max(64),
  salt: z.base64(),
  hash: z.base64(),
});
export type PinHash = z.infer<typeof PinHashSchema>;

/**
 * A user's enrolled factors travelling between terminals through the server (roaming staff enrol
 * once). Only over the authenticated device channel (TLS in production); the server stores it
 * encrypted at rest and gives it only to terminals of the tier it was enrolled on.
 */
export const UserCredentialBundleSchema = z.strictObject({
  user: z.string().min(1).max(256),
  pin: PinHashSchema,
  /** The TOTP secret, base32 (160 bits). */
  totpSecret: z.string().regex(/^[A-Z2-7]{32}$/, 'a 160-bit base32 secret'),
  enrolledAt: z.string(),
});
export type UserCredentialBundle = z.infer<typeof UserCredentialBundleSchema>;

export const CredentialsLookupRequestSchema = z.strictObject({ user: z.string().min(1).max(256) });

/** Admin: a challenge read over the phone, and optionally which of the matching devices it is. */
export const RecoveryRequestSchema = z.strictObject({
  challenge: z.string().min(1).max(200),
  deviceId: DeviceIdSchema.optional(),
});
export const RecoveryAnswerSchema = z.strictObject({
  /** What the challenge says, for the administrator to confirm with the caller. */
  decoded: z.strictObject({ action: z.enum(['unlock', 'reset-lockout']), keyEpoch: z.int(), issuedAt: z.string(), deviceTag: z.string(), userTag: z.string() }),
  /** Devices whose tag matches, with the users known there whose tag matches. */
  matches: z.array(z.strictObject({ deviceId: DeviceIdSchema, hostname: z.string(), users: z.array(z.string()) })),
  /** The response code, when exactly one device matches (or `deviceId` chose one). */
  response: z.string().nullable(),
});
export type RecoveryAnswer = z.infer<typeof RecoveryAnswerSchema>;

export const HeartbeatResponseSchema = z.strictObject({
  /** Last seq the server holds for this device (0 = none); the agent uploads from ackSeq + 1. */
  ackSeq: z.number().int().nonnegative(),
  ackHash: HashSchema,
  serverTime: z.string(),
  /**
   * Identifies the signed policy the server holds for this terminal (null: none assigned, the
   * built-in profile applies). When it differs from the agent's, the agent fetches `GET /policy`.
   */
  policyEtag: z.string().max(200).nullable(),
  commands: z.array(CommandSchema),
});
export type HeartbeatResponse = z.infer<typeof HeartbeatResponseSchema>;

export const EventsBatchRequestSchema = z.strictObject({
  entries: z.array(JournalEntrySchema).min(1).max(MAX_BATCH_ENTRIES),
});
export type EventsBatchRequest = z.infer<typeof EventsBatchRequestSchema>;

export const EventsBatchResponseSchema = z.strictObject({
  ackSeq: z.number().int().nonnegative(),
  ackHash: HashSchema,
  /** How many entries of the batch were new (the rest were exact replays). */
  accepted: z.number().int().nonnegative(),
});
export type EventsBatchResponse = z.infer<typeof EventsBatchResponseSchema>;

/** Stable error codes of the API. */
export const ApiErrorCodeSchema = z.enum([
  'bad-request',
  'invalid-json',
  'unsupported-media-type',
  'body-too-large',
  'unauthorized',
  'forbidden',
  'not-found',
  'token-invalid',
  'chain-gap',
  'chain-fork',
  'chain-bad-prev',
  'chain-bad-hash',
  'rate-limited',
  /** A recovery challenge older than its validity (RECOVERY_VALIDITY_MS): ask the caller for a new one. */
  'expired',
  /** The request conflicts with the current state (a request already decided, an id another terminal used). */
  'conflict',
  'internal',
]);
export type ApiErrorCode = z.infer<typeof ApiErrorCodeSchema>;

export const ApiErrorSchema = z.strictObject({
  error: z.strictObject({
    code: ApiErrorCodeSchema,
    message: z.string(),
    /** Where the request was wrong (zod issue paths), for bad-request. */
    issues: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
    /** For chain errors: what the server holds, so the agent can resume correctly. */
    ackSeq: z.number().int().nonnegative().optional(),
    seq: z.number().int().optional(),
    /** For a mistyped recovery challenge: the 1-based groups whose check digit failed. */
    groups: z.array(z.int().min(1)).optional(),
  }),
});
export type ApiError = z.infer<typeof ApiErrorSchema>;

export const DeviceSummarySchema = z.strictObject({
  deviceId: DeviceIdSchema,
  hostname: z.string(),
  os: z.string(),
  agentVersion: z.string(),
  enrolledAt: z.string(),
  lastSeenAt: z.string().nullable(),
  enforcement: z.string().nullable(),
  lockState: z.string().nullable(),
  ackSeq: z.number().int().nonnegative(),
  eventCount: z.number().int().nonnegative(),
  tamperCount: z.number().int().nonnegative(),
});
export type DeviceSummary = z.infer<typeof DeviceSummarySchema>;

// ---------------------------------------------------------------------------------------------
// Commands, roaming credentials and recovery: the shapes the server answers (server → agent and
// server → dashboard). Requests of the agent are above (HeartbeatRequest, UserCredentialBundle…).
// ---------------------------------------------------------------------------------------------

/** Answer to `PUT /credentials`: where the bundle is kept (the tier of the uploading terminal). */
export const CredentialsPutResponseSchema = z.strictObject({
  user: z.string(),
  tier: z.enum(['mynumber', 'lgwan', 'internet']),
  /** When the server stored it (server clock, UTC). */
  enrolledAt: z.string(),
  /** True when it replaced a bundle the tier already held for this user. */
  replaced: z.boolean(),
});
export type CredentialsPutResponse = z.infer<typeof CredentialsPutResponseSchema>;

/** Commands an administrator may queue for one terminal (`set-recovery-key` is the server's own). */
export const ADMIN_COMMAND_TYPES = ['lock', 'resync', 'reset-factors', 'selfcheck'] as const;

/**
 * Admin: `POST /admin/devices/:id/commands`. `params` must be what `KnownCommandSchema` accepts for
 * the type (`lock`: `{ reason? }`, `resync`: none or `{}`, `reset-factors`: `{ user }`, `selfcheck`:
 * none or `{}`); the server sets the id.
 */
export const AdminCommandRequestSchema = z
  .strictObject({
    type: z.enum(ADMIN_COMMAND_TYPES),
    params: z.record(z.string(), z.json()).optional(),
  })
  .superRefine((value, ctx) => {
    const parsed = KnownCommandSchema.safeParse({ id: 'new', ...value });
    if (parsed.success) return;
    for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
  });
export type AdminCommandRequest = z.infer<typeof AdminCommandRequestSchema>;

/** Where a command stands: queued (never sent), delivered (sent, not acknowledged), succeeded, failed (ack ok: false), cancelled (by the server). */
export const CommandStateSchema = z.enum(['queued', 'delivered', 'succeeded', 'failed', 'cancelled']);
export type CommandState = z.infer<typeof CommandStateSchema>;

/** A command as the admin API lists it. Secrets are never in `params` (a `set-recovery-key` shows its epoch only). */
export const AdminCommandSchema = z.strictObject({
  id: z.string(),
  deviceId: DeviceIdSchema,
  type: z.string(),
  params: z.record(z.string(), z.json()).nullable(),
  state: CommandStateSchema,
  createdAt: z.string(),
  createdBy: z.string(),
  deliveredAt: z.string().nullable(),
  ackedAt: z.string().nullable(),
  ok: z.boolean().nullable(),
  detail: z.string().nullable(),
});
export type AdminCommand = z.infer<typeof AdminCommandSchema>;

/** One row of the administrators' audit trail. */
export const AdminActionSchema = z.strictObject({
  id: z.int().min(1),
  at: z.string(),
  /** Who: the administrator account's name, `api-token` for the admin token (`admin` in rows from before accounts existed). */
  actor: z.string(),
  /** `recovery`, `command.queued`, `credentials.reset`, … */
  action: z.string(),
  deviceId: z.string().nullable(),
  user: z.string().nullable(),
  /** What was asked and what came of it (never a secret, never a response code). */
  detail: z.record(z.string(), z.json()),
});
export type AdminAction = z.infer<typeof AdminActionSchema>;

/** A user's roaming enrolment as the admin API lists it (never the factors). */
export const AdminUserSchema = z.strictObject({
  user: z.string(),
  tier: z.enum(['mynumber', 'lgwan', 'internet']),
  enrolledAt: z.string(),
  /** The terminal that uploaded the bundle, and its hostname. */
  deviceId: DeviceIdSchema,
  hostname: z.string(),
});
export type AdminUser = z.infer<typeof AdminUserSchema>;

// ---------------------------------------------------------------------------------------------
// Administrator accounts, sessions and the dashboard's read models (server → dashboard). The
// dashboard imports these as types only (its pages never load zod).
// ---------------------------------------------------------------------------------------------

/** The admin API's session and dashboard routes (the older admin routes are in `ApiPaths`). */
export const AdminPaths = {
  /** POST `{ user, password, code }` → `AdminSession` and the session cookie (no auth; throttled). */
  login: `${API_PREFIX}/admin/login`,
  /** POST: ends the session (cookie cleared). */
  logout: `${API_PREFIX}/admin/logout`,
  /** GET: who is logged in, the CSRF token, the expiry times. */
  session: `${API_PREFIX}/admin/session`,
  /** POST `{ currentPassword, newPassword }`: required after the first login with the initial password. */
  password: `${API_PREFIX}/admin/session/password`,
  /** GET: the administrator accounts (never a secret). */
  accounts: `${API_PREFIX}/admin/accounts`,
  /** GET: one page of the terminal list (filters, sort, keyset cursor). */
  terminals: `${API_PREFIX}/admin/terminals`,
  /** POST `RecoveryRequest` → `RecoveryAnswer` with `response: null`: what a challenge says, before answering it. */
  recoveryDecode: `${API_PREFIX}/admin/recovery/decode`,
  /** GET `?fiscalYear=&department=&format=csv|html`: the self-inspection report (自己点検結果報告書). */
  selfcheckReport: `${API_PREFIX}/admin/reports/selfcheck`,
} as const;

/** Name of the session cookie (`__Host-`: Secure, Path=/, no Domain — the browser enforces it). */
export const ADMIN_SESSION_COOKIE = '__Host-sekimori-session';
/** Header carrying the session's CSRF token on every state-changing request. */
export const ADMIN_CSRF_HEADER = 'x-sekimori-csrf';

/** `admin` may do everything; `auditor` reads only (no approvals, policies, commands, resets, recovery). */
export const ADMIN_ROLES = ['admin', 'auditor'] as const;
export const AdminRoleSchema = z.enum(ADMIN_ROLES);
export type AdminRole = z.infer<typeof AdminRoleSchema>;

/** Account names: ASCII letters, digits and `. _ @ -`, 1–64 characters (compared case-insensitively). */
export const AdminNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'an account name (letters, digits, . _ @ -; at most 64)');

export const AdminLoginRequestSchema = z.strictObject({
  user: AdminNameSchema,
  password: z.string().min(1).max(1024),
  /** The 6-digit TOTP code (full-width digits and spaces accepted). */
  code: z.string().min(1).max(32),
});
export type AdminLoginRequest = z.infer<typeof AdminLoginRequestSchema>;

export const AdminSessionSchema = z.strictObject({
  user: z.string(),
  role: AdminRoleSchema,
  /** `session`: a dashboard login (cookie); `token`: the admin token of automation. */
  via: z.enum(['session', 'token']),
  /** Send it in `x-sekimori-csrf` with every POST, PUT and DELETE (null for the admin token). */
  csrfToken: z.string().nullable(),
  /** True after a login with the initial password: only the password change is allowed. */
  mustChangePassword: z.boolean(),
  /** When the session ends without activity, and at the latest (null for the admin token). */
  idleExpiresAt: z.string().nullable(),
  absoluteExpiresAt: z.string().nullable(),
});
export type AdminSession = z.infer<typeof AdminSessionSchema>;

export const AdminPasswordChangeSchema = z.strictObject({
  currentPassword: z.string().min(1).max(1024),
  newPassword: z.string().min(1).max(1024),
});
export type AdminPasswordChange = z.infer<typeof AdminPasswordChangeSchema>;

/** An administrator account as listed (never the password hash or the TOTP secret). */
export const AdminAccountSchema = z.strictObject({
  user: z.string(),
  role: AdminRoleSchema,
  createdAt: z.string(),
  /** Whether the TOTP factor was ever used to log in (the authenticator app is set up). */
  totpConfirmed: z.boolean(),
  mustChangePassword: z.boolean(),
  lastLoginAt: z.string().nullable(),
});
export type AdminAccount = z.infer<typeof AdminAccountSchema>;

const TierNameSchema = z.enum(['mynumber', 'lgwan', 'internet']);

/** One row of the terminal list. */
export const AdminTerminalSchema = z.strictObject({
  deviceId: DeviceIdSchema,
  hostname: z.string(),
  os: z.string(),
  agentVersion: z.string(),
  /** The tier the server holds for it: its first heartbeat's, then an administrator's (`PUT /admin/devices/:id/tier`); `mynumber` before either. */
  tier: TierNameSchema,
  enrolledAt: z.string(),
  lastSeenAt: z.string().nullable(),
  /** Seen within `onlineWindowSeconds` of the answer's `serverTime`. */
  online: z.boolean(),
  lockState: z.string().nullable(),
  policyVersion: z.number().int().nullable(),
  enforcement: z.string().nullable(),
  /** Open violations: events received (`device.blocked`, `export.blocked`, `network.violation`) not yet acknowledged by an administrator. */
  violations: z.int().min(0),
  /** Tamper flags: chain breaks refused at upload plus `tamper.detected` events. */
  tamperFlags: z.int().min(0),
});
export type AdminTerminal = z.infer<typeof AdminTerminalSchema>;

export const TERMINAL_SORTS = ['hostname', 'lastSeen'] as const;
export type TerminalSort = (typeof TERMINAL_SORTS)[number];

export const AdminTerminalsResponseSchema = z.strictObject({
  terminals: z.array(AdminTerminalSchema),
  /** Pass as `after` for the next page; null on the last page. */
  nextCursor: z.string().nullable(),
  serverTime: z.string(),
  onlineWindowSeconds: z.int(),
  /** Every terminal and those online (not filtered). */
  counts: z.strictObject({ total: z.int().min(0), online: z.int().min(0) }),
});
export type AdminTerminalsResponse = z.infer<typeof AdminTerminalsResponseSchema>;

/** `GET /admin/devices/:id`: one terminal with its last reported status. */
export const AdminDeviceDetailSchema = z.strictObject({
  ...AdminTerminalSchema.shape,
  arch: z.string(),
  ackSeq: z.int().min(0),
  /** The last heartbeat's status as the agent sent it (null before the first). */
  status: z.record(z.string(), z.json()).nullable(),
  serverTime: z.string(),
  /** The department (所属) an administrator assigned (`PUT /admin/devices/:id/department`); null when none. */
  department: z.string().nullable(),
  /** Every violation received, acknowledged or not (`violations` counts the open ones). */
  violationsTotal: z.int().min(0),
  /** Violations up to this journal seq are acknowledged (`POST /admin/devices/:id/violations/acknowledge`); 0 when none. */
  violationsAckedSeq: z.int().min(0),
});
export type AdminDeviceDetail = z.infer<typeof AdminDeviceDetailSchema>;

/** A USB device a terminal reported (from its `device.allowed/blocked/readonly` events), with the last decision. */
export const AdminUsbDeviceSchema = z.strictObject({
  /** `vendor:product` as reported (may be empty). */
  usbId: z.string(),
  serial: z.string(),
  name: z.string(),
  manufacturer: z.string(),
  /** The event type of the last decision: `device.allowed`, `device.blocked` or `device.readonly`. */
  lastDecision: z.string(),
  /** The deciding rule as the agent journaled it (line, kind…). */
  rule: z.json().nullable(),
  lastSeq: z.int(),
  lastTime: z.string(),
  decisions: z.int().min(1),
});
export type AdminUsbDevice = z.infer<typeof AdminUsbDeviceSchema>;
