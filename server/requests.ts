import type { SignedPolicy } from '../shared/api.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { validatePolicy, type PolicyException, type Tier } from '../shared/policy.js';
import type { DeviceRequest } from '../shared/requests.js';
import { policyDocument, policyEtag, toSignedPolicy } from './policies.js';
import type { PolicySigningKey } from './policy-key.js';
import type { DevicePolicyContext, PolicyHead, Store, StoredDeviceRequest, StoredPolicy } from './store.js';

/**
 * What a terminal gets (DESIGN.md §5, §8): the document of its group — the policy published for
 * its (stored tier, department), when there is one — else its tier's, plus the exceptions approved
 * for it (requests: approvals and revocations bump the device's policy revision).
 *
 * - The tier is the STORED one (set by the first heartbeat, then only by an administrator), never
 *   what a heartbeat claims; a heartbeat that claims another tier is recorded as tamper once per
 *   change (`heartbeatPolicyEtag`).
 * - Tier and group documents take their versions from one sequence per tier, so (tier, version)
 *   names one document and the etag `KEYID:TIER:VERSION[+REV]` names the device's composed
 *   document (its basis). The etag is computed on every heartbeat without a write.
 * - Version: the natural one is base version + revision. The device's delivered version is
 *   persisted with its basis: the same basis gets the same version; a new basis gets
 *   max(last delivered + 1, natural). So it never goes backwards — not when the device moves to a
 *   department whose document is older, nor when its group's policy is deleted and it falls back
 *   to an older tier document — and the agent's no-rollback rule always accepts the change.
 * - The exceptions are the device's approved, unrevoked requests whose window ends after the last
 *   revision change. Expiry needs no new policy: the agent compares `until` with its trusted clock.
 * - A device with revision 0 whose version is the document's own gets the stored document as is.
 */

/** The exception an approved request installs (only for the user who asked). */
export function exceptionOf(request: StoredDeviceRequest): PolicyException {
  return { id: request.id, device: request.rule, user: request.user, until: request.approvedUntil ?? request.until, access: request.approvedAccess ?? request.access };
}

export interface DevicePolicy {
  readonly etag: string;
  readonly signed: SignedPolicy;
}

/** One etag per (base document, device revision): revision 0 is the base document's own etag. */
function devicePolicyEtagOf(head: Parameters<typeof policyEtag>[0], rev: number): string {
  return rev === 0 ? policyEtag(head) : `${policyEtag(head)}+${rev}`;
}

/** The head of the device's base document: its group's policy when there is one, else its tier's. */
async function baseHead(store: Store, context: DevicePolicyContext): Promise<PolicyHead | null> {
  const group = context.department === null ? null : await store.groupPolicyHead(context.tier, context.department);
  return group ?? store.policyHead(context.tier);
}

/** The device's base document with its payload. */
async function baseDocument(store: Store, context: DevicePolicyContext): Promise<StoredPolicy | null> {
  const group = context.department === null ? null : await store.currentGroupPolicy(context.tier, context.department);
  return group ?? store.currentPolicy(context.tier);
}

/** The etag of the device's policy (cheap: no signing, no write); null when nothing applies to it. */
export async function devicePolicyEtag(store: Store, context: DevicePolicyContext): Promise<string | null> {
  const head = await baseHead(store, context);
  return head === null ? null : devicePolicyEtagOf(head, context.rev);
}

/**
 * The heartbeat's `policyEtag`, of the device's STORED tier. When the agent reports a tier that
 * differs from the stored one, the first heartbeat that says so records a `tier-mismatch` tamper
 * record (and a tamper flag); reporting the stored tier again forgets it. No tier reported (an old
 * agent) claims nothing.
 */
export async function heartbeatPolicyEtag(
  { store, log }: { store: Store; log: { warn(details: object, message: string): void } },
  deviceId: string,
  reported: Tier | undefined,
  seq: number,
  now: string,
): Promise<string | null> {
  const context = await store.devicePolicyContext(deviceId);
  if (context === null) return null;
  if (reported !== undefined && reported !== context.tier) {
    if (context.tierMismatch !== reported && (await store.recordTierMismatch(deviceId, context.tier, reported, seq, now))) {
      log.warn({ deviceId, reported, stored: context.tier }, 'heartbeat reports another tier than the stored one: tamper recorded, the stored tier\'s policy is sent');
    }
  } else if (reported !== undefined && context.tierMismatch !== null) {
    await store.clearTierMismatch(deviceId);
  }
  return devicePolicyEtag(store, context);
}

/** The device's signed policy; null when neither its group nor its tier has one (the agent keeps its built-in profile). */
export async function devicePolicy(store: Store, key: PolicySigningKey, deviceId: string, context: DevicePolicyContext): Promise<DevicePolicy | null> {
  const base = await baseDocument(store, context);
  if (base === null) return null;
  const etag = devicePolicyEtagOf(base, context.rev);
  const natural = base.version + context.rev;
  const version = await store.deliveredPolicyVersion(deviceId, etag, natural);
  if (version === null) return null;
  if (context.rev === 0 && version === base.version) return { etag, signed: toSignedPolicy(base) };
  const document = policyDocument(base);
  const approved = context.rev === 0 || context.revAt === null ? [] : await store.approvedDeviceRequests(deviceId, context.revAt);
  const issuedAt = context.revAt !== null && Date.parse(context.revAt) > Date.parse(document.issuedAt) ? context.revAt : document.issuedAt;
  const composed = { ...document, version, issuedAt, exceptions: [...document.exceptions, ...approved.map(exceptionOf)] };
  // Validated like any published policy: an approval can never produce a policy the agent refuses.
  const validated = validatePolicy(composed);
  if (!validated.ok) throw new Error(`device policy for ${deviceId} does not validate: ${validated.error.message}`);
  const payload = canonicalJson(validated.value.policy);
  return { etag, signed: { payload, signature: key.sign(payload), keyId: key.keyId } };
}

/** A stored request as the API shows it: a pending or approved window that ended reads `expired`. */
export function toDeviceRequest(request: StoredDeviceRequest, nowMs: number): DeviceRequest {
  const end = request.state === 'approved' ? (request.approvedUntil ?? request.until) : request.until;
  const expired = (request.state === 'approved' || request.state === 'pending') && Date.parse(end) <= nowMs;
  return {
    id: request.id,
    deviceId: request.deviceId,
    hostname: request.hostname,
    user: request.user,
    device: request.device,
    rule: request.rule,
    purpose: request.purpose,
    from: request.from,
    until: request.until,
    access: request.access,
    state: expired ? 'expired' : request.state,
    submittedAt: request.submittedAt,
    decidedAt: request.decidedAt,
    decidedBy: request.decidedBy,
    approvedUntil: request.approvedUntil,
    approvedAccess: request.approvedAccess,
    reason: request.reason,
  };
}
