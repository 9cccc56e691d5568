import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { AdminUserSchema, ApiPaths } from '../../shared/api.js';
import { TIERS, TierSchema } from '../../shared/policy.js';
import { recordAdminAction } from '../admin-trail.js';
import type { Clock } from '../clock.js';
import { newCommandId } from '../commands.js';
import { ApiHttpError } from '../http/api-error.js';
import { actorOf, requireAdmin, type AdminAuth } from '../http/admin-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import type { Store } from '../store.js';

export const AdminUsersQuerySchema = z.strictObject({ tier: TierSchema.optional() });
export const AdminUsersResponseSchema = z.strictObject({ users: z.array(AdminUserSchema) });
export const UserParamsSchema = z.strictObject({ user: z.string().min(1).max(256) });
export const UserResetQuerySchema = z.strictObject({ tier: TierSchema.optional() });
export const UserResetResponseSchema = z.strictObject({
  user: z.string(),
  /** Tiers whose stored bundle was deleted (empty: none was stored, the factors are reset anyway). */
  deletedTiers: z.array(TierSchema),
  /** `reset-factors` commands queued, one per device of the tiers. */
  resetCommands: z.int().min(0),
});

/**
 * Users' enrolment (administrators; the reset needs role admin):
 * - `GET /api/v1/admin/users?tier=T` → `{ users: [{ user, tier, enrolledAt, deviceId, hostname }] }`
 *   (never a factor).
 * - `DELETE /api/v1/admin/users/:user/credentials?tier=T` (no tier: every tier) → deletes the stored
 *   bundle(s) and queues `reset-factors { user }` for every device of the tier(s), in one
 *   transaction → `{ user, deletedTiers, resetCommands }`; 404 when the user has neither a bundle
 *   nor a terminal in those tiers. Recorded in the admin trail.
 */
export const adminUserRoutes: FastifyPluginCallback<{ store: Store; auth: AdminAuth; clock: Clock }> = (
  app,
  { store, auth, clock },
  done,
) => {
  requireAdmin(app, auth);
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get(
    ApiPaths.adminUsers,
    { config: { access: 'read' }, schema: { querystring: AdminUsersQuerySchema, response: { 200: AdminUsersResponseSchema } } },
    async (request) => ({ users: await store.listUserCredentials(request.query.tier) }),
  );

  api.delete(
    `${ApiPaths.adminUsers}/:user/credentials`,
    { config: { access: 'write' }, schema: { params: UserParamsSchema, querystring: UserResetQuerySchema, response: { 200: UserResetResponseSchema } } },
    async (request) => {
      const actor = actorOf(request).user;
      const { user } = request.params;
      const tiers = request.query.tier === undefined ? [...TIERS] : [request.query.tier];
      if (!(await store.userKnownInTiers(user, tiers))) {
        throw new ApiHttpError('not-found', `no user ${JSON.stringify(user)} enrolled or seen on ${tiers.join(', ')}`);
      }
      const now = clock();
      const result = await store.resetUserCredentials({ user, tiers, at: now.toISOString(), createdBy: actor, newCommandId });
      await recordAdminAction(store, now, actor, 'credentials.reset', { user }, { tiers, deletedTiers: result.deletedTiers, resetCommands: result.commands });
      request.log.info({ tiers, deleted: result.deletedTiers.length, commands: result.commands }, 'user credentials reset');
      return { user, deletedTiers: result.deletedTiers, resetCommands: result.commands };
    },
  );

  done();
};
