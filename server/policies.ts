import type { SignedPolicy } from '../shared/api.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { TIERS, validatePolicy, type Policy, type Tier } from '../shared/policy.js';
import { err, ok, type Result } from '../shared/result.js';
import type { PolicySigningKey } from './policy-key.js';
import type { PolicyHead, Store, StoredGroupPolicy, StoredPolicy } from './store.js';

/**
 * Publishing signed policies (DESIGN.md §5), shared by the admin API and the CLI.
 *
 * The server owns `version`, `issuedAt` and `tier`: whatever the submitted document says about the
 * first two is replaced, and its tier must be the one it is published for. The document is then
 * validated whole (`validatePolicy`: schema and every USB rule), serialised as canonical JSON — the
 * exact text that is signed, stored and delivered — and signed with the server's Ed25519 key.
 */

/** Version 1 is the built-in profile every agent ships with; the first published policy is 2. */
export const FIRST_PUBLISHED_VERSION = 2;

/** `createdBy` of a policy published with the command line on the server (`policy set`). */
export const DEFAULT_PUBLISHER = 'cli';

/** How often a publish retries when a concurrent publisher took the version it computed. */
const MAX_PUBLISH_ATTEMPTS = 5;

export function isTier(value: string): value is Tier {
  return (TIERS as readonly string[]).includes(value);
}

/** What identifies a published policy to an agent: changes whenever the key, tier or version does. */
export function policyEtag(head: Pick<PolicyHead, 'keyId' | 'tier' | 'version'>): string {
  return `${head.keyId}:${head.tier}:${head.version}`;
}

/** The delivery form of a stored policy. */
export function toSignedPolicy(policy: StoredPolicy): SignedPolicy {
  return { payload: policy.payload, signature: policy.signature, keyId: policy.keyId };
}

export interface Published {
  readonly tier: Tier;
  readonly version: number;
  readonly keyId: string;
  readonly etag: string;
}

export type PublishErrorCode = 'invalid-policy' | 'conflict';

/**
 * Validates, signs and stores `document` (untrusted JSON, already parsed) as `tier`'s next version.
 * Fails with `invalid-policy` (message lists every problem, rules with line and column) and stores
 * nothing; `conflict` only if concurrent publishers kept taking the version (not expected).
 */
export async function publishPolicy(
  store: Store,
  key: PolicySigningKey,
  tier: Tier,
  document: unknown,
  now: Date,
  createdBy: string = DEFAULT_PUBLISHER,
): Promise<Result<Published, PublishErrorCode>> {
  return signAsNextVersion(store, key, tier, document, now, createdBy, async (signed) => {
    const stored: StoredPolicy = { tier, ...signed };
    return (await store.addPolicy(stored)) ? { tier, version: signed.version, keyId: key.keyId, etag: policyEtag(stored) } : null;
  });
}

/**
 * The one path by which a document becomes a signed policy (a tier's or a group's): checked to be an
 * object for this tier, given the next version of the tier's sequence (shared by the tier's and its
 * groups' documents, server/requests.ts: any newer document has a higher version), validated,
 * canonicalised and signed, then offered to `add`, which stores it and answers null when a
 * concurrent publisher took that version (then the next is tried).
 */
async function signAsNextVersion<T>(
  store: Store,
  key: PolicySigningKey,
  tier: Tier,
  document: unknown,
  now: Date,
  createdBy: string,
  add: (signed: Omit<StoredPolicy, 'tier'>) => Promise<T | null>,
): Promise<Result<T, PublishErrorCode>> {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    return err('invalid-policy', '(policy): must be a JSON object');
  }
  const submitted = document as Record<string, unknown>;
  if (submitted.tier !== undefined && submitted.tier !== tier) {
    return err('invalid-policy', `tier: the document says ${JSON.stringify(submitted.tier)} but is published for "${tier}"`);
  }
  for (let attempt = 0; attempt < MAX_PUBLISH_ATTEMPTS; attempt += 1) {
    const version = Math.max(await store.lastPolicyVersion(tier), FIRST_PUBLISHED_VERSION - 1) + 1;
    const validated = validatePolicy({ ...submitted, version, issuedAt: now.toISOString(), tier });
    if (!validated.ok) return err('invalid-policy', validated.error.message);
    const payload = canonicalJson(validated.value.policy);
    const added = await add({ version, keyId: key.keyId, createdAt: now.toISOString(), createdBy, payload, signature: key.sign(payload) });
    if (added !== null) return ok(added);
  }
  return err('conflict', `tier ${tier}: another publisher kept taking the next version; try again`);
}

/** The document of a stored policy (its payload was validated before it was signed). */
export function policyDocument(policy: StoredPolicy): Policy {
  return JSON.parse(policy.payload) as Policy;
}

export interface PublishedGroup extends Published {
  readonly department: string;
}

/**
 * Publishes `document` as the policy of the terminals of `tier` in `department` (所属): the same
 * validation, canonical JSON and signature as a tier's policy; its version is the next of the
 * tier's sequence (shared with the tier's own documents). It replaces the tier's document for those
 * terminals only.
 */
export async function publishGroupPolicy(
  store: Store,
  key: PolicySigningKey,
  tier: Tier,
  department: string,
  document: unknown,
  now: Date,
  createdBy: string = DEFAULT_PUBLISHER,
): Promise<Result<PublishedGroup, PublishErrorCode>> {
  return signAsNextVersion(store, key, tier, document, now, createdBy, async (signed) => {
    const stored: StoredGroupPolicy = { tier, department, ...signed };
    return (await store.addGroupPolicy(stored)) ? { tier, department, version: signed.version, keyId: key.keyId, etag: policyEtag(stored) } : null;
  });
}

/**
 * Deletes the group's policy (its terminals get the tier's again): a history row that takes the
 * next version of the tier's sequence. `not-found` when the group has no current policy.
 */
export async function deleteGroupPolicy(
  store: Store,
  tier: Tier,
  department: string,
  now: Date,
  createdBy: string = DEFAULT_PUBLISHER,
): Promise<Result<{ readonly tier: Tier; readonly department: string; readonly version: number; readonly deletedVersion: number }, 'not-found' | 'conflict'>> {
  for (let attempt = 0; attempt < MAX_PUBLISH_ATTEMPTS; attempt += 1) {
    const current = await store.groupPolicyHead(tier, department);
    if (current === null) return err('not-found', `no policy for department ${JSON.stringify(department)} of tier ${tier}`);
    const version = Math.max(await store.lastPolicyVersion(tier), FIRST_PUBLISHED_VERSION - 1) + 1;
    if (await store.addGroupPolicy({ tier, department, version, createdAt: now.toISOString(), createdBy, payload: null })) {
      return ok({ tier, department, version, deletedVersion: current.version });
    }
  }
  return err('conflict', `tier ${tier}: another publisher kept taking the next version; try again`);
}
