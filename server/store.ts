import type { UsbDeviceIdentity } from '../shared/usb-rules/index.js';
import type { RequestAccess } from '../shared/requests.js';
import type { AdminRole, AgentStatus, CommandAck, CommandState, DeviceSummary, TerminalSort } from '../shared/api.js';
import type { JournalEntry } from '../shared/journal.js';
import type { Tier } from '../shared/policy.js';
import type { SelfcheckResult, SelfcheckRun } from '../shared/selfcheck.js';

/**
 * The server's storage, as a repository interface (DESIGN.md §8). SQLite (`SqliteStore`) is the
 * embedded default; a PostgreSQL store for a prefecture's security cloud implements the same
 * interface. Every method is asynchronous for that reason, even though better-sqlite3 is not.
 *
 * Times cross this interface as UTC ISO-8601 strings with milliseconds (`2026-11-25T09:00:00.000Z`):
 * they sort as text, read well in a SQL shell, and are what the API sends anyway.
 *
 * Secrets never reach the store in clear: enrolment tokens and device credentials arrive as SHA-256
 * hex; recovery keys and users' credential bundles arrive sealed (server/data-key.ts), and the
 * store keeps them as opaque text.
 */
export interface Store {
  /** Saves a new enrolment token (by its hash) with its number of uses (default 1). */
  addEnrollmentToken(token: EnrollmentTokenRecord): Promise<void>;

  /**
   * Spends one use of the enrolment token with hash `tokenHash` and creates `device` recording the
   * token's id (never the token), atomically: either both happen or neither. Returns false (and
   * changes nothing) when the token is unknown, used up, revoked, or expired at `device.enrolledAt`;
   * concurrent enrolments racing for a token's last use cannot both succeed.
   */
  enrollDevice(tokenHash: string, device: NewDevice): Promise<boolean>;

  /** Every enrolment token (never the token itself), newest first, with how many devices each enrolled. */
  listEnrollmentTokens(): Promise<EnrollmentTokenSummary[]>;

  /** Revokes the token: no further use, kept for the record. Null for an unknown id. */
  revokeEnrollmentToken(id: string, at: string): Promise<EnrollmentTokenSummary | null>;

  /** The SHA-256 hex of the device's credential, or null for an unknown device. */
  deviceCredentialHash(deviceId: string): Promise<string | null>;

  /**
   * Stores the device's latest status and when it was seen. Returns the device's chain head (what
   * the server has acknowledged), or null for an unknown device. With `deliver`, also takes the
   * commands to send right after the status is stored, in the same step: `commands` is what
   * `takeCommandsToDeliver(deviceId, deliver.limit, seenAt)` would answer at that instant (for a
   * heartbeat with nothing to process between the two: no acks, no recovery report).
   */
  recordHeartbeat(deviceId: string, status: AgentStatus, seenAt: string, deliver?: { readonly limit: number }): Promise<HeartbeatRecord | null>;

  /**
   * Appends a batch of journal entries to the device's chain in one transaction, applying the
   * rules of `planBatch` (server/chain.ts): exact replays are skipped, new entries must continue the
   * chain. When an entry breaks the chain, the valid entries before it ARE kept and acknowledged,
   * and the break is recorded as a tamper record (deduplicated by device, kind and seq; at most
   * `MAX_TAMPER_RECORDS_PER_DEVICE` per device).
   */
  appendEvents(deviceId: string, entries: readonly JournalEntry[], receivedAt: string): Promise<AppendOutcome>;

  /** Every enrolled device, oldest enrolment first. */
  listDevices(): Promise<DeviceSummary[]>;

  /** The device's acknowledged chain head, or null for an unknown device. */
  chainHead(deviceId: string): Promise<ChainHead | null>;

  /** Up to `limit` stored entries with seq > `afterSeq`, in seq order. */
  eventsAfter(deviceId: string, afterSeq: number, limit: number): Promise<JournalEntry[]>;

  /** How many entries are stored for the device (0 for an unknown device). */
  countEvents(deviceId: string): Promise<number>;

  /** The device's tamper records, in the order they were detected. */
  tamperRecords(deviceId: string): Promise<TamperRecord[]>;

  /**
   * The tier the device reported in its last heartbeat (`mynumber`, the fail-closed tier, when it
   * has not reported one yet), or null for an unknown device.
   */
  deviceTier(deviceId: string): Promise<Tier | null>;

  /**
   * Stores a signed policy as the tier's newest version. Returns false (and stores nothing) when
   * the tier already holds this version or a later one — a concurrent publisher won; the caller
   * re-reads the head and tries again with the next version. Versions are never reused or
   * lowered: a rollback is an older document published again under a new version.
   */
  addPolicy(policy: StoredPolicy): Promise<boolean>;

  /** The tier's newest policy without its payload (what a heartbeat needs), or null when none was published. */
  policyHead(tier: Tier): Promise<PolicyHead | null>;

  /** The tier's newest policy with its signed payload, or null when none was published. */
  currentPolicy(tier: Tier): Promise<StoredPolicy | null>;

  /** Every version published for the tier, newest first (without payloads). */
  policyHistory(tier: Tier): Promise<PolicyHead[]>;

  // --- administrator recovery keys (server/recovery.ts) -------------------------------------

  /**
   * The device's recovery keys: `current` (what the server last knew the agent to hold, by epoch)
   * and `pending` (a fresh key sent with a `set-recovery-key` command, not yet acknowledged), each
   * sealed. Null for an unknown device.
   */
  recoveryKeys(deviceId: string): Promise<DeviceRecoveryKeys | null>;

  /**
   * Replaces the current key at `fromEpoch` by `next` (a later epoch of the same ratchet).
   * Compare-and-set: returns false and changes nothing when the current key is no longer at
   * `fromEpoch` (a concurrent heartbeat moved it).
   */
  advanceRecoveryKey(deviceId: string, fromEpoch: number, next: SealedRecoveryKey): Promise<boolean>;

  /**
   * Atomically: stores `pending` as the device's pending key, queues `command` (its
   * `set-recovery-key`, whose stored params hold the epoch only), cancels the command of any earlier
   * pending key, and sets the device's recovery tag when it has none (devices enrolled before
   * recovery keys existed). Returns false for an unknown device.
   */
  setPendingRecoveryKey(deviceId: string, recoveryTag: string, pending: SealedRecoveryKey, command: NewCommand): Promise<boolean>;

  /** Devices whose recovery tag (`recoveryTags` in shared/lock.ts) is `tag`, oldest enrolment first. */
  devicesByRecoveryTag(tag: string): Promise<RecoveryCandidate[]>;

  /**
   * User names known on the device: bundles it uploaded or fetched, and the `user` field of its
   * `auth.*` and `lock.*` journal events. Sorted, at most `limit`.
   */
  knownUsers(deviceId: string, limit: number): Promise<string[]>;

  // --- commands (delivered with heartbeats until acknowledged) ---------------------------------

  /** Queues commands (any devices) in one transaction, in the order given. */
  addCommands(commands: readonly NewCommand[]): Promise<void>;

  /**
   * Up to `limit` open (not acknowledged, not cancelled) commands of the device, oldest first;
   * those never delivered get `deliveredAt = at`.
   */
  takeCommandsToDeliver(deviceId: string, limit: number, at: string): Promise<StoredCommand[]>;

  /**
   * Records the agent's acks: each open command of THIS device named by an ack is closed with its
   * result; acks naming unknown, closed or other devices' commands are ignored. An ok ack of the
   * pending recovery key's command makes that key current; a failed one drops it. Returns the
   * commands closed.
   */
  acknowledgeCommands(deviceId: string, acks: readonly CommandAck[], at: string): Promise<StoredCommand[]>;

  /** The device's commands, newest first, at most `limit`. */
  listCommands(deviceId: string, limit: number): Promise<StoredCommand[]>;

  // --- administrators' audit trail ------------------------------------------------------------

  addAdminAction(action: NewAdminAction): Promise<void>;

  /** Newest first; `beforeId` pages back. */
  listAdminActions(limit: number, beforeId?: number): Promise<StoredAdminAction[]>;

  // --- users' roaming credentials ---------------------------------------------------------------

  /** Stores (or replaces) the sealed bundle of (tier, user). Returns whether one was replaced. */
  putUserCredentials(record: UserCredentialsRecord): Promise<{ replaced: boolean }>;

  /** The sealed bundle of (tier, user), or null. */
  userCredentials(tier: Tier, user: string): Promise<UserCredentialsRecord | null>;

  /** Remembers that `user` used the device (`source`: uploaded or fetched a bundle). */
  noteDeviceUser(deviceId: string, user: string, source: 'enrolled' | 'fetched', at: string): Promise<void>;

  /** Every stored bundle's metadata (never the bundle), by user then tier. */
  listUserCredentials(tier?: Tier): Promise<UserCredentialsSummary[]>;

  /**
   * Atomically deletes the user's bundles in `tiers` and queues a `reset-factors {user}` command
   * (id from `newCommandId`) for every device of those tiers. Returns the tiers whose bundle was
   * deleted and how many commands were queued.
   */
  resetUserCredentials(request: UserResetRequest): Promise<{ deletedTiers: Tier[]; commands: number }>;

  /** Whether `user` is known on any device of `tiers` (see `knownUsers`) or has a bundle there. */
  userKnownInTiers(user: string, tiers: readonly Tier[]): Promise<boolean>;

  // --- administrator accounts, sessions and login throttling (server/admin-accounts.ts) ---------

  /** Creates an account; false (nothing stored) when the name exists, compared case-insensitively. */
  addAdminAccount(account: NewAdminAccount): Promise<boolean>;

  /** The account named `name` (case-insensitive), or null. */
  adminAccount(name: string): Promise<StoredAdminAccount | null>;

  /** Every account, by name. */
  listAdminAccounts(): Promise<StoredAdminAccount[]>;

  /**
   * Records a successful login's TOTP step, compare-and-set: true only when the account's last
   * accepted step is null or below `step` (a code works once, even with two logins racing). Sets
   * `lastLoginAt` too.
   */
  acceptAdminLogin(accountId: number, step: number, at: string): Promise<boolean>;

  /** Replaces the password hash (JSON) and the must-change flag. */
  setAdminPassword(accountId: number, passwordJson: string, mustChangePassword: boolean): Promise<void>;

  addAdminSession(session: NewAdminSession): Promise<void>;

  /** The session whose id hashes to `idHash`, with its account, or null. */
  adminSession(idHash: string): Promise<AdminSessionRecord | null>;

  /** Moves the session's last activity to `at`. */
  touchAdminSession(idHash: string, at: string): Promise<void>;

  deleteAdminSession(idHash: string): Promise<void>;

  /** Deletes the account's sessions except `keepIdHash`. */
  deleteAdminSessionsOf(accountId: number, keepIdHash: string | null): Promise<void>;

  /** Deletes sessions idle since before `idleBefore` or created before `createdBefore`. */
  pruneAdminSessions(idleBefore: string, createdBefore: string): Promise<void>;

  /** The throttle rows of `subjects` that exist. */
  loginThrottle(subjects: readonly string[]): Promise<LoginThrottleRecord[]>;

  /**
   * Counts one failed login against each subject, atomically: a subject whose last failure is
   * before `forgetBefore` starts again at 1. `blockUntil(subject, failures)` says until when the
   * subject is then blocked (null: not blocked); a running block is never shortened. Also deletes
   * rows older than `forgetBefore` and not blocked. Returns the updated rows.
   */
  recordLoginFailure(subjects: readonly string[], at: string, forgetBefore: string, blockUntil: (subject: string, failures: number) => string | null): Promise<LoginThrottleRecord[]>;

  /** Forgets the failures of `subject` (after a successful login). */
  clearLoginThrottle(subject: string): Promise<void>;

  // --- the dashboard's terminal list and detail ---------------------------------------------------

  /**
   * One page of terminals in `query.sort` order (ties by device id), after `query.after` (keyset),
   * filtered; `more` says whether another page follows. Costs one index walk that stops after
   * `limit + 1` matching rows (indexes: migration 5).
   */
  listTerminals(query: TerminalQuery): Promise<{ rows: TerminalRecord[]; more: boolean }>;

  /** All terminals, and those seen at or after `onlineSince`. */
  terminalCounts(onlineSince: string): Promise<{ total: number; online: number }>;

  /** One terminal with its last status and department, or null. */
  terminal(deviceId: string): Promise<(TerminalRecord & { readonly arch: string; readonly ackSeq: number; readonly status: Record<string, unknown> | null; readonly department: string | null }) | null>;

  /** Up to `limit` stored entries with seq < `beforeSeq`, newest first. */
  eventsBefore(deviceId: string, beforeSeq: number, limit: number): Promise<JournalEntry[]>;

  /** The device's newest `limit` entries whose type is one of `types`, newest first. */
  eventsOfTypes(deviceId: string, types: readonly string[], limit: number): Promise<JournalEntry[]>;

  /** Releases the database. Idempotent; no other method may be called afterwards. */
  // --- device requests (申請/承認) ---
  /** Stores a request from a terminal; `exists` for a resend of the same id by the same device, `conflict` for another device's id. */
  addDeviceRequest(request: NewDeviceRequest): Promise<'added' | 'exists' | 'conflict'>;
  deviceRequest(id: string): Promise<StoredDeviceRequest | null>;
  /** Newest first; `before` is the `receivedAt|id` of the last row of the previous page. */
  listDeviceRequests(query: DeviceRequestQuery): Promise<StoredDeviceRequest[]>;
  /** Applies a decision if the request is in `expect`; null otherwise. Approve/revoke bump the device's policy revision. */
  decideDeviceRequest(decision: DeviceRequestDecision): Promise<StoredDeviceRequest | null>;
  /** The device's policy revision (approvals + revocations) and when it last changed. */
  devicePolicyRevision(deviceId: string): Promise<{ rev: number; at: string | null } | null>;
  /** Approved, unrevoked requests of a device whose window ends after `after`. */
  approvedDeviceRequests(deviceId: string, after: string): Promise<StoredDeviceRequest[]>;

  // --- self-inspection runs (自己点検) and departments (migration 7) ---------------------------
  // Runs are stored by `appendEvents`, in the batch's transaction (see SelfcheckIngest).

  /** The device's newest `limit` stored runs, newest (highest seq) first; null for an unknown device. */
  selfcheckRuns(deviceId: string, limit: number): Promise<StoredSelfcheckRun[] | null>;

  /** Sets (null: clears) the device's department. Returns the one it replaced, or null for an unknown device. */
  setDeviceDepartment(deviceId: string, department: string | null): Promise<{ readonly previous: string | null } | null>;

  /**
   * Every terminal (only those of `query.department` when not null), by department, hostname and
   * id, each with its runs whose `finishedAt` is in [`from`, `until`), oldest first, evidence kept
   * only where the report shows it (`compactForReport`).
   */
  selfcheckReportSources(query: SelfcheckReportQuery): Promise<SelfcheckReportSource[]>;

  /** How many runs `selfcheckReportSources(query)` would return (one index walk; the report's size guard). */
  countSelfcheckRuns(query: SelfcheckReportQuery): Promise<number>;

  // --- acknowledged violations (migration 8; server/sqlite-violations.ts) ----------------------

  /**
   * Acknowledges, atomically, the device's violations with seq in (its acknowledged seq,
   * `upToSeq`] (`upToSeq` null or above the chain head: up to the head). Null for an unknown device;
   * `nothing` (and no change) when that range holds no violation.
   */
  acknowledgeViolations(request: NewViolationAck): Promise<ViolationAckOutcome | null>;

  /** The device's acknowledgements, newest first, at most `limit`; null for an unknown device. */
  violationAcks(deviceId: string, limit: number): Promise<StoredViolationAck[] | null>;

  // --- policies per group of terminals, delivered versions, assigned tiers (migration 10; server/sqlite-group-policies.ts)

  /** The highest version the tier's sequence has given (tier and group documents, deletions included); 0 when none. */
  lastPolicyVersion(tier: Tier): Promise<number>;

  /**
   * Stores a group policy version, or (`payload` null) the deletion of the group's policy. Returns
   * false (nothing stored) when the tier's sequence already holds this version or a later one.
   */
  addGroupPolicy(policy: StoredGroupPolicy | GroupPolicyDeletion): Promise<boolean>;

  /** The group's current policy (null: none, or deleted). */
  currentGroupPolicy(tier: Tier, department: string): Promise<StoredGroupPolicy | null>;

  /** The group's current policy without its payload (what a heartbeat needs). */
  groupPolicyHead(tier: Tier, department: string): Promise<GroupPolicyHead | null>;

  /** The tier's groups that have a current policy, by department. */
  listGroupPolicies(tier: Tier): Promise<GroupPolicyHead[]>;

  /** Every version and deletion of the group's policy, newest first. */
  groupPolicyHistory(tier: Tier, department: string): Promise<GroupPolicyHistoryEntry[]>;

  /** What decides a device's policy: its stored tier, department, revision, and the differing tier it last reported; null for an unknown device. */
  devicePolicyContext(deviceId: string): Promise<DevicePolicyContext | null>;

  /**
   * The version the device's document named `basis` (its etag) is delivered with: the stored one
   * when `basis` is the one last composed, else max(last version + 1, `natural`), stored. Never
   * lower than a version given before. Null for an unknown device.
   */
  deliveredPolicyVersion(deviceId: string, basis: string, natural: number): Promise<number | null>;

  /**
   * Sets the device's tier (an administrator's decision). The agent's current report, when it
   * differs from the new tier, becomes the known mismatch (not recorded again). Returns the tier it
   * replaced, or null for an unknown device.
   */
  setDeviceTier(deviceId: string, tier: Tier): Promise<{ readonly previous: Tier } | null>;

  /**
   * A heartbeat reported `reported`, which differs from the stored tier: records a `tier-mismatch`
   * tamper record (at journal position `seq`) unless this very tier is the known mismatch. Returns
   * whether it was recorded.
   */
  recordTierMismatch(deviceId: string, stored: Tier, reported: Tier, seq: number, at: string): Promise<boolean>;

  /** The device reports its stored tier again: forgets the known mismatch. */
  clearTierMismatch(deviceId: string): Promise<void>;

  close(): Promise<void>;
}

export interface NewViolationAck {
  readonly deviceId: string;
  /** The highest journal seq acknowledged (what the administrator saw); null: everything received. */
  readonly upToSeq: number | null;
  readonly at: string;
  readonly actor: string;
  readonly comment: string;
}

export interface StoredViolationAck {
  readonly id: number;
  readonly deviceId: string;
  readonly at: string;
  readonly actor: string;
  readonly comment: string;
  /** Exclusive: the acknowledged seq before this one. */
  readonly fromSeq: number;
  readonly upToSeq: number;
  /** Violations acknowledged (seq in (fromSeq, upToSeq]). */
  readonly violations: number;
}

export type ViolationAckOutcome =
  | { readonly status: 'acknowledged'; readonly ack: StoredViolationAck; readonly open: number }
  | { readonly status: 'nothing'; readonly ackedSeq: number; readonly open: number };

/** A stored self-inspection run: a `selfcheck.result` event whose data validated with `SelfcheckRunSchema`. */
export interface StoredSelfcheckRun {
  readonly deviceId: string;
  /** The journal entry's seq. */
  readonly seq: number;
  readonly runId: string;
  readonly trigger: SelfcheckRun['trigger'];
  readonly commandId: string | null;
  /** The run's `finishedAt` as UTC ISO with milliseconds. */
  readonly finishedAt: string;
  readonly overall: SelfcheckResult;
  /** When the server stored the entry. */
  readonly receivedAt: string;
  /** The entry's data, as validated. */
  readonly run: SelfcheckRun;
}

/** What `appendEvents` did with the batch's `selfcheck.result` entries (absent: none in the batch). */
export interface SelfcheckIngest {
  /** Runs stored in `selfcheck_runs`. */
  readonly stored: number;
  /** Seqs of `selfcheck.result` entries whose data did not validate (kept as events only). */
  readonly invalidSeqs: readonly number[];
}

export interface SelfcheckReportQuery {
  /** Null: every terminal. */
  readonly department: string | null;
  /** UTC ISO instants; `until` exclusive. */
  readonly from: string;
  readonly until: string;
}

export interface SelfcheckReportSource {
  readonly deviceId: string;
  readonly hostname: string;
  readonly department: string | null;
  readonly tier: Tier;
  /** The stored runs' data (JSON values; the report validates them), oldest first, compacted. */
  readonly runs: readonly unknown[];
}

export interface NewDeviceRequest {
  readonly id: string;
  readonly deviceId: string;
  readonly user: string;
  readonly device: UsbDeviceIdentity;
  readonly rule: string;
  readonly purpose: string;
  readonly from: string;
  readonly until: string;
  readonly access: RequestAccess;
  readonly submittedAt: string;
  readonly receivedAt: string;
}

export interface StoredDeviceRequest extends NewDeviceRequest {
  readonly hostname: string;
  /** Stored states; `expired` is derived when read (an approved or pending window that ended). */
  readonly state: 'pending' | 'approved' | 'rejected' | 'revoked';
  readonly decidedAt: string | null;
  readonly decidedBy: string | null;
  readonly approvedUntil: string | null;
  readonly approvedAccess: RequestAccess | null;
  readonly reason: string | null;
}

export interface DeviceRequestQuery {
  readonly state?: StoredDeviceRequest['state'];
  readonly deviceId?: string;
  readonly before?: string;
  readonly limit: number;
}

export interface DeviceRequestDecision {
  readonly id: string;
  readonly expect: StoredDeviceRequest['state'];
  readonly state: 'approved' | 'rejected' | 'revoked';
  readonly at: string;
  readonly by: string;
  readonly approvedUntil?: string;
  readonly approvedAccess?: RequestAccess;
  readonly reason?: string;
}

export interface NewAdminAccount {
  readonly name: string;
  readonly role: AdminRole;
  /** `PasswordHash` as JSON (scrypt with its parameters). */
  readonly passwordJson: string;
  readonly mustChangePassword: boolean;
  /** The TOTP secret sealed with `adminTotpAad(name)`. */
  readonly sealedTotp: string;
  readonly createdAt: string;
}

export interface StoredAdminAccount extends NewAdminAccount {
  readonly id: number;
  readonly totpLastStep: number | null;
  readonly lastLoginAt: string | null;
}

export interface NewAdminSession {
  /** SHA-256 hex of the cookie's session id (the id itself is never stored). */
  readonly idHash: string;
  readonly accountId: number;
  readonly createdAt: string;
  readonly lastSeenAt: string;
  readonly ip: string;
}

export interface AdminSessionRecord extends NewAdminSession {
  readonly user: string;
  readonly role: AdminRole;
  readonly mustChangePassword: boolean;
}

export interface LoginThrottleRecord {
  readonly subject: string;
  readonly failures: number;
  readonly lastFailureAt: string;
  readonly blockedUntil: string | null;
}

export interface TerminalQuery {
  readonly sort: TerminalSort;
  readonly descending: boolean;
  readonly tier?: Tier | undefined;
  /** true: seen at or after `onlineSince`; false: not (or never seen); absent: both. */
  readonly online?: boolean | undefined;
  readonly onlineSince: string;
  /** Case-insensitive (ASCII) part of the hostname, or a whole device id. */
  readonly text?: string | undefined;
  /** The last row of the previous page: its sort key (hostname, or last seen with '' for never) and id. */
  readonly after?: { readonly key: string; readonly id: string } | undefined;
  readonly limit: number;
}

export interface TerminalRecord {
  readonly id: string;
  readonly hostname: string;
  readonly os: string;
  readonly agentVersion: string;
  readonly tier: Tier;
  readonly enrolledAt: string;
  readonly lastSeenAt: string | null;
  readonly lockState: string | null;
  readonly policyVersion: number | null;
  readonly enforcement: string | null;
  /** Open (unacknowledged) violations: `violationsTotal` minus those acknowledged (migration 8). */
  readonly violations: number;
  /** Every violation received. */
  readonly violationsTotal: number;
  /** Violations with seq up to this one are acknowledged (0: none). */
  readonly violationsAckedSeq: number;
  readonly tamperFlags: number;
}

/** Event types counted as violations in the terminal list (`devices.violation_count`). */
export const VIOLATION_EVENT_TYPES = ['device.blocked', 'export.blocked', 'network.violation'] as const;
/** Event types counted as tamper flags, besides the chain breaks refused at upload. */
export const TAMPER_EVENT_TYPES = ['tamper.detected'] as const;

/** A recovery key sealed under the data key with `recoveryKeyAad(deviceId, epoch)`. */
export interface SealedRecoveryKey {
  readonly epoch: number;
  readonly sealedKey: string;
  readonly createdAt: string;
}

export interface DeviceRecoveryKeys {
  /** Null until the device has been given a key (enrolled before recovery keys existed). */
  readonly current: SealedRecoveryKey | null;
  readonly pending: (SealedRecoveryKey & { readonly commandId: string; readonly delivered: boolean }) | null;
}

export interface RecoveryCandidate {
  readonly deviceId: string;
  readonly hostname: string;
}

export interface NewCommand {
  /** `cmd_` + random hex, unique. */
  readonly id: string;
  readonly deviceId: string;
  readonly type: string;
  /** Stored as JSON; never a secret (a set-recovery-key stores `{ epoch }`, the key stays sealed). */
  readonly params: Readonly<Record<string, unknown>> | null;
  readonly createdAt: string;
  readonly createdBy: string;
}

export interface StoredCommand extends NewCommand {
  readonly state: CommandState;
  readonly deliveredAt: string | null;
  readonly ackedAt: string | null;
  readonly ok: boolean | null;
  readonly detail: string | null;
}

export interface NewAdminAction {
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly deviceId: string | null;
  readonly user: string | null;
  readonly detail: Readonly<Record<string, unknown>>;
}

export interface StoredAdminAction extends NewAdminAction {
  readonly id: number;
}

export interface UserCredentialsRecord {
  readonly tier: Tier;
  readonly user: string;
  /** The bundle sealed with `userCredentialsAad(tier, user)`. */
  readonly sealedBundle: string;
  /** When the server stored it. */
  readonly enrolledAt: string;
  /** The device that uploaded it. */
  readonly deviceId: string;
}

export interface UserCredentialsSummary {
  readonly tier: Tier;
  readonly user: string;
  readonly enrolledAt: string;
  readonly deviceId: string;
  readonly hostname: string;
}

export interface UserResetRequest {
  readonly user: string;
  readonly tiers: readonly Tier[];
  readonly at: string;
  readonly createdBy: string;
  readonly newCommandId: () => string;
}

/** The last entry the server holds for a device: `{ seq: 0, hash: GENESIS_HASH }` before any. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/** What `recordHeartbeat` answers: the chain head, and the commands taken when it was asked to deliver. */
export interface HeartbeatRecord extends ChainHead {
  readonly commands?: StoredCommand[];
}

export interface EnrollmentTokenRecord {
  /** SHA-256 hex of the token. */
  readonly tokenHash: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  /** `enr_` + 24 hex digits (server/enrollment.ts); the store makes a random one when absent. */
  readonly id?: string;
  /** How many devices it may enrol (default 1). */
  readonly maxUses?: number;
  /** The administrator account, `api-token` or `cli` (default). */
  readonly createdBy?: string;
}

/** An enrolment token as listed: never the token, nor its hash. */
export interface EnrollmentTokenSummary {
  readonly id: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly expiresAt: string;
  readonly maxUses: number;
  /** 0 when used up or revoked. */
  readonly usesLeft: number;
  readonly lastUsedAt: string | null;
  readonly revokedAt: string | null;
  /** Devices that record this token's id (enrolled with it). */
  readonly enrolledDevices: number;
}

export interface NewDevice {
  /** `dev_` + 32 hex digits, random. */
  readonly id: string;
  readonly hostname: string;
  readonly os: string;
  readonly arch: string;
  readonly hardwareId: string;
  readonly agentVersion: string;
  /** SHA-256 hex of the device credential. */
  readonly credentialHash: string;
  readonly enrolledAt: string;
  /** The device tag of recovery challenges (`recoveryTags` in shared/lock.ts). */
  readonly recoveryTag: string;
  /** The first recovery key (epoch 0), sealed. */
  readonly recoveryKey: SealedRecoveryKey;
}

/** The tier of a device that has not reported one: the strictest (DESIGN.md §5, fail closed). */
export const DEFAULT_DEVICE_TIER: Tier = 'mynumber';

/** A published policy version, without its payload. */
export interface PolicyHead {
  readonly tier: Tier;
  /** Strictly increasing per tier, from 2 (version 1 is the agents' built-in profile). */
  readonly version: number;
  /** The signing key's id (see server/policy-key.ts). */
  readonly keyId: string;
  readonly createdAt: string;
  /** Who published it: the administrator account, `api-token` (the admin token) or `cli` (`policy set`); `admin` before accounts existed. */
  readonly createdBy: string;
}

/** A published policy: `payload` is the exact JSON text that `signature` (base64 Ed25519) signs. */
export interface StoredPolicy extends PolicyHead {
  readonly payload: string;
  readonly signature: string;
}

/** A policy document for the terminals of one department (所属) of a tier; its version is from the tier's sequence. */
export interface GroupPolicyHead extends PolicyHead {
  readonly department: string;
}

export interface StoredGroupPolicy extends GroupPolicyHead {
  readonly payload: string;
  readonly signature: string;
}

/** The deletion of a group's policy: a row in its history that takes a version of the tier's sequence. */
export interface GroupPolicyDeletion {
  readonly tier: Tier;
  readonly department: string;
  readonly version: number;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly payload: null;
}

/** One row of a group's history: a published version (`keyId`) or a deletion (`deleted`, `keyId` null). */
export interface GroupPolicyHistoryEntry {
  readonly version: number;
  readonly keyId: string | null;
  readonly deleted: boolean;
  readonly createdAt: string;
  readonly createdBy: string;
}

export interface DevicePolicyContext {
  /** The stored tier (assigned by an administrator, or the first heartbeat's). */
  readonly tier: Tier;
  readonly department: string | null;
  readonly rev: number;
  readonly revAt: string | null;
  /** The tier the agent reports that differs from the stored one, already recorded; null when none. */
  readonly tierMismatch: Tier | null;
}

/** How an uploaded batch broke the chain. */
export const TAMPER_KINDS = ['fork', 'gap', 'bad-prev', 'bad-hash'] as const;
export type TamperKind = (typeof TAMPER_KINDS)[number];

export function isTamperKind(value: string): value is TamperKind {
  return (TAMPER_KINDS as readonly string[]).includes(value);
}

/** Tamper records: chain breaks, and a heartbeat that reported a tier other than the stored one (`tier-mismatch`, migration 10). */
export const TAMPER_RECORD_KINDS = [...TAMPER_KINDS, 'tier-mismatch'] as const;
export type TamperRecordKind = (typeof TAMPER_RECORD_KINDS)[number];

export function isTamperRecordKind(value: string): value is TamperRecordKind {
  return (TAMPER_RECORD_KINDS as readonly string[]).includes(value);
}

/** A chain break detected at upload time, or a tier mismatch at a heartbeat, as stored. */
export interface TamperRecord {
  readonly kind: TamperRecordKind;
  /** The seq of the offending entry (a tier mismatch: the acknowledged journal head when it was reported). */
  readonly seq: number;
  readonly detail: Readonly<Record<string, string | number>>;
  readonly detectedAt: string;
}

/** Why the chain refused an entry of a batch. */
export interface ChainRejection {
  readonly kind: TamperKind;
  readonly seq: number;
  readonly message: string;
  readonly detail: Readonly<Record<string, string | number>>;
}

/** What became of an uploaded batch. `head` is the chain head after the transaction committed. */
export type AppendOutcome =
  | { readonly status: 'accepted'; readonly head: ChainHead; readonly accepted: number; readonly selfcheck?: SelfcheckIngest }
  | { readonly status: 'rejected'; readonly head: ChainHead; readonly accepted: number; readonly rejection: ChainRejection; readonly selfcheck?: SelfcheckIngest }
  | { readonly status: 'unknown-device' };

/**
 * Tamper records kept per device. Records are already unique per (device, kind, seq), so an agent
 * that loops on one bad batch adds one row; this cap also bounds a device that sends a different
 * bad seq every time (a stolen credential in a loop) from filling the disk.
 */
export const MAX_TAMPER_RECORDS_PER_DEVICE = 1000;
