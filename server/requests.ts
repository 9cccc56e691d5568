import type { SignedPolicy } from '../shared/api.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { validatePolicy, type PolicyException, type Tier } from '../shared/policy.js';
import type { DeviceRequest } from '../shared/requests.js';
import { policyDocument, policyEtag, toSignedPolicy } from './policies.js';
import type { PolicySigningKey } from './policy-key.js';
import type { Store, StoredDeviceRequest } from './store.js';

/**
 * Device requests become policy (DESIGN.md §5, §8). A terminal's signed policy is its tier's
 * current policy plus the exceptions approved for it:
 *
 * - version = tier version + the device's policy revision (approvals + revocations). Both only
 *   grow, so the sum does: a new tier policy or a new approval always reaches the agent as a higher
 *   version and its no-rollback rule holds.
 * - The exceptions are the device's approved, unrevoked requests whose window ends after the last
 *   revision change: a pure function of (tier version, revision), so one etag always names one
 *   document. Expiry needs no new policy: the agent compares `until` with its trusted clock.
 * - A device with revision 0 gets the tier's stored document as is.
 */

/** The exception an approved request installs (only for the user who asked). */
export function exceptionOf(request: StoredDeviceRequest): PolicyException {
  return { id: request.id, device: request.rule, user: request.user, until: request.approvedUntil ?? request.until, access: request.approvedAccess ?? request.access };
}

export interface DevicePolicy {
  readonly etag: string;
  readonly signed: SignedPolicy;
}

/** One etag per (tier policy, device revision): revision 0 is the tier's document itself. */
function devicePolicyEtagOf(head: Parameters<typeof policyEtag>[0], rev: number): string {
  return rev === 0 ? policyEtag(head) : `${policyEtag(head)}+${rev}`;
}

/** The etag of the device's policy (cheap: no signing); null when the tier has none published. */
export async function devicePolicyEtag(store: Store, deviceId: string, tier: Tier): Promise<string | null> {
  const head = await store.policyHead(tier);
  if (head === null) return null;
  const revision = await store.devicePolicyRevision(deviceId);
  return devicePolicyEtagOf(head, revision?.rev ?? 0);
}

/** The device's signed policy; null when its tier has none published (the agent keeps its built-in profile). */
export async function devicePolicy(store: Store, key: PolicySigningKey, deviceId: string, tier: Tier): Promise<DevicePolicy | null> {
  const current = await store.currentPolicy(tier);
  if (current === null) return null;
  const revision = await store.devicePolicyRevision(deviceId);
  if (revision === null || revision.rev === 0 || revision.at === null) return { etag: policyEtag(current), signed: toSignedPolicy(current) };
  const document = policyDocument(current);
  const approved = await store.approvedDeviceRequests(deviceId, revision.at);
  const issuedAt = Date.parse(revision.at) > Date.parse(document.issuedAt) ? revision.at : document.issuedAt;
  const composed = { ...document, version: current.version + revision.rev, issuedAt, exceptions: [...document.exceptions, ...approved.map(exceptionOf)] };
  // Validated like any published policy: an approval can never produce a policy the agent refuses.
  const validated = validatePolicy(composed);
  if (!validated.ok) throw new Error(`device policy for ${deviceId} does not validate: ${validated.error.message}`);
  const payload = canonicalJson(validated.value.policy);
  return { etag: devicePolicyEtagOf(current, revision.rev), signed: { payload, signature: key.sign(payload), keyId: key.keyId } };
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
