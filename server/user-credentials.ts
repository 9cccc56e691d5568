import { UserCredentialBundleSchema, type UserCredentialBundle } from '../shared/api.js';
import type { Tier } from '../shared/policy.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { userCredentialsAad, type DataKey } from './data-key.js';

/**
 * Users' roaming credentials (DESIGN.md §6, "Enrolment"): a staff member enrols once (PIN hash +
 * TOTP secret) on one terminal, which uploads the bundle; other terminals of the SAME tier fetch it
 * when that user first logs in there. The server stores the bundle only sealed under the data key
 * with AAD = (tier, user), so a bundle moved to another user's or another tier's row does not open.
 */

export function sealBundle(dataKey: DataKey, tier: Tier, bundle: UserCredentialBundle): string {
  return dataKey.seal(canonicalJson(bundle), userCredentialsAad(tier, bundle.user));
}

/** Opens and re-validates a stored bundle; throws (a bug or tampering) when it does not open or parse. */
export function openBundle(dataKey: DataKey, tier: Tier, user: string, sealed: string): UserCredentialBundle {
  const bundle = UserCredentialBundleSchema.parse(JSON.parse(dataKey.open(sealed, userCredentialsAad(tier, user)).toString('utf8')));
  if (bundle.user !== user) throw new Error('stored credential bundle names another user');
  return bundle;
}
