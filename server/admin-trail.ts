import type { Store } from './store.js';

/**
 * The administrators' audit trail (DESIGN.md §8, "who did what"): every administrative request
 * that acts on terminals or users is one `admin_actions` row. Never a secret, never a recovery
 * response code.
 */

/** Who acts through the admin token (administrator accounts come with the dashboard). */
export const ADMIN_ACTOR = 'admin';

export async function recordAdminAction(
  store: Store,
  at: Date,
  action: string,
  subject: { readonly deviceId?: string | null; readonly user?: string | null },
  detail: Readonly<Record<string, unknown>>,
): Promise<void> {
  await store.addAdminAction({ at: at.toISOString(), actor: ADMIN_ACTOR, action, deviceId: subject.deviceId ?? null, user: subject.user ?? null, detail });
}
