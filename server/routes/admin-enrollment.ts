import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { API_PREFIX } from '../../shared/api.js';
import { recordAdminAction } from '../admin-trail.js';
import type { Clock } from '../clock.js';
import { DEFAULT_TOKEN_TTL_HOURS, DEFAULT_TOKEN_USES, EnrollmentTokenIdSchema, MAX_TOKEN_TTL_HOURS, MAX_TOKEN_USES, createEnrollmentToken } from '../enrollment.js';
import { ApiHttpError } from '../http/api-error.js';
import { actorOf, requireAdmin, type AdminAuth } from '../http/admin-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import type { Store } from '../store.js';

/** Admin: enrolment tokens (POST to create, GET to list, POST …/:id/revoke). */
export const ADMIN_ENROLLMENT_TOKENS_PATH = `${API_PREFIX}/admin/enrollment-tokens`;
export const ENROLLMENT_TOKENS_BODY_LIMIT = 4 * 1024;

export const EnrollmentTokenRequestSchema = z.strictObject({
  ttlHours: z.number().positive().max(MAX_TOKEN_TTL_HOURS).default(DEFAULT_TOKEN_TTL_HOURS),
  uses: z.int().min(1).max(MAX_TOKEN_USES).default(DEFAULT_TOKEN_USES),
});

export const IssuedEnrollmentTokenSchema = z.strictObject({
  id: EnrollmentTokenIdSchema,
  /** Shown once: the server keeps only its hash. */
  token: z.string(),
  uses: z.int(),
  createdAt: z.string(),
  expiresAt: z.string(),
});

export const EnrollmentTokenSummarySchema = z.strictObject({
  id: z.string(),
  createdAt: z.string(),
  createdBy: z.string(),
  expiresAt: z.string(),
  maxUses: z.int(),
  usesLeft: z.int(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  enrolledDevices: z.int(),
});

export const EnrollmentTokensResponseSchema = z.strictObject({ tokens: z.array(EnrollmentTokenSummarySchema) });
export const EnrollmentTokenParamsSchema = z.strictObject({ id: EnrollmentTokenIdSchema });

/**
 * Enrolment tokens for administrators (creating and revoking need role admin; a session also needs
 * its CSRF token and Origin, checked by requireAdmin):
 * - `POST /api/v1/admin/enrollment-tokens` `{ ttlHours?, uses? }` → 201 `{ id, token, uses,
 *   createdAt, expiresAt }`, `Cache-Control: no-store`. The token is in this answer only; recorded in
 *   the admin trail as `enrollment-token.created` with its id, uses and expiry (never the token).
 * - `GET /api/v1/admin/enrollment-tokens` → `{ tokens }` newest first (ids, uses, state; never a token).
 * - `POST /api/v1/admin/enrollment-tokens/:id/revoke` (no body) → the token's summary with no use
 *   left; 404 unknown. Recorded as `enrollment-token.revoked`.
 */
export const adminEnrollmentRoutes: FastifyPluginCallback<{ store: Store; auth: AdminAuth; clock: Clock }> = (app, { store, auth, clock }, done) => {
  requireAdmin(app, auth);
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post(
    ADMIN_ENROLLMENT_TOKENS_PATH,
    {
      config: { access: 'write' },
      bodyLimit: ENROLLMENT_TOKENS_BODY_LIMIT,
      schema: { body: EnrollmentTokenRequestSchema, response: { 201: IssuedEnrollmentTokenSchema } },
    },
    async (request, reply) => {
      const actor = actorOf(request).user;
      const now = clock();
      const issued = await createEnrollmentToken(store, { ttlHours: request.body.ttlHours, uses: request.body.uses, now, createdBy: actor });
      await recordAdminAction(store, now, actor, 'enrollment-token.created', {}, { tokenId: issued.id, uses: issued.uses, expiresAt: issued.expiresAt });
      request.log.info({ tokenId: issued.id, uses: issued.uses }, 'enrolment token created');
      return reply.code(201).header('cache-control', 'no-store').send(issued);
    },
  );

  api.get(
    ADMIN_ENROLLMENT_TOKENS_PATH,
    { config: { access: 'read' }, schema: { response: { 200: EnrollmentTokensResponseSchema } } },
    async () => ({ tokens: await store.listEnrollmentTokens() }),
  );

  api.post(
    `${ADMIN_ENROLLMENT_TOKENS_PATH}/:id/revoke`,
    { config: { access: 'write' }, bodyLimit: ENROLLMENT_TOKENS_BODY_LIMIT, schema: { params: EnrollmentTokenParamsSchema, response: { 200: EnrollmentTokenSummarySchema } } },
    async (request) => {
      const actor = actorOf(request).user;
      const now = clock();
      const revoked = await store.revokeEnrollmentToken(request.params.id, now.toISOString());
      if (revoked === null) throw new ApiHttpError('not-found', `no enrolment token ${request.params.id}`);
      await recordAdminAction(store, now, actor, 'enrollment-token.revoked', {}, { tokenId: revoked.id, enrolledDevices: revoked.enrolledDevices });
      request.log.info({ tokenId: revoked.id }, 'enrolment token revoked');
      return revoked;
    },
  );

  done();
};
