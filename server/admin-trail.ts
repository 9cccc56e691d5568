import type { Store } from './store.js';

/**
 * The administrators' audit trail (DESIGN.md §8, "who did what"): every administrative act — logins
 * (ok and failed), logouts, password changes, commands, recovery, user resets, policy changes — is
 * one `admin_actions` row naming the acting account (`api-token` for the admin token). Never a
 * secret, never a password, code or recovery response.
 */
export async function recordAdminAction(
  store: Store,
  at: Date,
  actor: string,
  action: string,
  subject: { readonly deviceId?: string | null; readonly user?: string | null },
  detail: Readonly<Record<string, unknown>>,
): Promise<void> {
  await store.addAdminAction({ at: at.toISOString(), actor, action, deviceId: subject.deviceId ?? null, user: subject.user ?? null, detail });
}
