import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { ApiPaths, DeviceIdSchema } from '../../shared/api.js';
import { recordAdminAction } from '../admin-trail.js';
import type { Clock } from '../clock.js';
import { ApiHttpError } from '../http/api-error.js';
import { actorOf, requireAdmin, type AdminAuth } from '../http/admin-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import type { Store, StoredViolationAck } from '../store.js';
import { DeviceParamsSchema } from './admin.js';

export const MAX_VIOLATION_ACKS_PAGE = 100;
export const VIOLATION_ACK_COMMENT_MAX = 500;
const ACK_BODY_LIMIT = 8 * 1024;

/** Why the violations were acknowledged: trimmed, 1–500 characters, no control characters. */
export const ViolationAckCommentSchema = z
  .string()
  .trim()
  .min(1)
  .max(VIOLATION_ACK_COMMENT_MAX)
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  .refine((value) => !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(value), { message: 'control characters are not allowed' });

export const ViolationAckRequestSchema = z.strictObject({
  comment: ViolationAckCommentSchema,
  /**
   * The highest journal seq acknowledged: the dashboard sends the `ackSeq` of the page it showed, so
   * violations that arrived since stay open. Absent: everything received so far.
   */
  upToSeq: z.int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
});

export const ViolationAckSchema = z.strictObject({
  id: z.int().min(1),
  at: z.string(),
  /** The administrator account (`api-token` for the admin token). */
  actor: z.string(),
  comment: z.string(),
  /** The violations with seq in (fromSeq, upToSeq] were acknowledged. */
  fromSeq: z.int().min(0),
  upToSeq: z.int().min(1),
  violations: z.int().min(1),
});

export const ViolationAckResponseSchema = z.strictObject({
  deviceId: DeviceIdSchema,
  acknowledgement: ViolationAckSchema,
  /** Violations still open after this (those received after `upToSeq`). */
  openViolations: z.int().min(0),
});

export const ViolationAcksQuerySchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(MAX_VIOLATION_ACKS_PAGE).default(20) });

export const ViolationAcksResponseSchema = z.strictObject({
  deviceId: DeviceIdSchema,
  /** Newest first. */
  acknowledgements: z.array(ViolationAckSchema),
});

/**
 * Acknowledging a terminal's violations (違反の確認):
 * - `POST /api/v1/admin/devices/:id/violations/acknowledge` `{ comment, upToSeq? }` (write) → the
 *   violations received up to `upToSeq` (default: all) and not yet acknowledged are acknowledged;
 *   the terminal list and detail count only the rest as open. 409 when there is none to acknowledge.
 *   Recorded in the admin trail as `violations.acknowledged`.
 * - `GET /api/v1/admin/devices/:id/violations/acknowledgements?limit=N` (read) → who acknowledged
 *   what, when and why, newest first.
 */
export const adminViolationRoutes: FastifyPluginCallback<{ store: Store; auth: AdminAuth; clock: Clock }> = (app, { store, auth, clock }, done) => {
  requireAdmin(app, auth);
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post(
    `${ApiPaths.adminDevices}/:id/violations/acknowledge`,
    {
      config: { access: 'write' },
      bodyLimit: ACK_BODY_LIMIT,
      schema: { params: DeviceParamsSchema, body: ViolationAckRequestSchema, response: { 200: ViolationAckResponseSchema } },
    },
    async (request) => {
      const deviceId = request.params.id;
      const { comment, upToSeq } = request.body;
      const now = clock();
      const actor = actorOf(request).user;
      const outcome = await store.acknowledgeViolations({ deviceId, upToSeq: upToSeq ?? null, at: now.toISOString(), actor, comment });
      if (outcome === null) throw new ApiHttpError('not-found', `no device ${deviceId}`);
      if (outcome.status === 'nothing') {
        throw new ApiHttpError('conflict', `no unacknowledged violation up to seq ${upToSeq ?? 'head'} (acknowledged up to seq ${outcome.ackedSeq}; ${outcome.open} open)`);
      }
      const { ack } = outcome;
      await recordAdminAction(store, now, actor, 'violations.acknowledged', { deviceId }, { comment, fromSeq: ack.fromSeq, upToSeq: ack.upToSeq, violations: ack.violations });
      request.log.info({ deviceId, upToSeq: ack.upToSeq, violations: ack.violations }, 'violations acknowledged');
      return { deviceId, acknowledgement: toAck(ack), openViolations: outcome.open };
    },
  );

  api.get(
    `${ApiPaths.adminDevices}/:id/violations/acknowledgements`,
    { config: { access: 'read' }, schema: { params: DeviceParamsSchema, querystring: ViolationAcksQuerySchema, response: { 200: ViolationAcksResponseSchema } } },
    async (request) => {
      const deviceId = request.params.id;
      const acks = await store.violationAcks(deviceId, request.query.limit);
      if (acks === null) throw new ApiHttpError('not-found', `no device ${deviceId}`);
      return { deviceId, acknowledgements: acks.map(toAck) };
    },
  );

  done();
};

function toAck(ack: StoredViolationAck): z.infer<typeof ViolationAckSchema> {
  return { id: ack.id, at: ack.at, actor: ack.actor, comment: ack.comment, fromSeq: ack.fromSeq, upToSeq: ack.upToSeq, violations: ack.violations };
}
