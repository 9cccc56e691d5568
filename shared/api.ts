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

export const HeartbeatRequestSchema = z.strictObject({
  status: AgentStatusSchema,
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequestSchema>;

/** Commands arrive with the heartbeat; the catalogue grows with the server (remote lock, …). */
export const CommandSchema = z.strictObject({
  id: z.string().max(100),
  type: z.string().max(64),
  params: z.record(z.string(), z.json()).optional(),
});

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
