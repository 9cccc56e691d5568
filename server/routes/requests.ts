import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { ApiPaths } from '../../shared/api.js';
import {
  ApproveRequestSchema,
  DeviceRequestSchema,
  DeviceRequestSubmissionSchema,
  RejectRequestSchema,
  RequestIdSchema,
  deviceMatchRule,
  narrowApproval,
  REQUEST_STATES,
} from '../../shared/requests.js';
import { recordAdminAction } from '../admin-trail.js';
import type { Clock } from '../clock.js';
import { ApiHttpError } from '../http/api-error.js';
import { actorOf, requireAdmin, type AdminAuth } from '../http/admin-auth.js';
import { requireDevice } from '../http/device-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import { toDeviceRequest } from '../requests.js';
import type { Store, StoredDeviceRequest } from '../store.js';

export const REQUESTS_BODY_LIMIT = 64 * 1024;
const MAX_PAGE = 500;

const SubmittedSchema = z.strictObject({ id: RequestIdSchema, state: z.enum(REQUEST_STATES) });
const RequestListSchema = z.strictObject({ requests: z.array(DeviceRequestSchema) });
/** The administrators' list: one page, and `next` to pass as `before` for the following (older) one; null on the last page. */
export const AdminRequestListSchema = z.strictObject({ requests: z.array(DeviceRequestSchema), next: z.string().nullable() });
const IdParamsSchema = z.strictObject({ id: RequestIdSchema });
const AdminListQuerySchema = z.strictObject({
  state: z.enum(['pending', 'approved', 'rejected', 'revoked']).optional(),
  device: z.string().max(100).optional(),
  /** `next` of the previous page (opaque to clients). */
  before: z
    .string()
    .max(200)
    .regex(/^\d{4}-\d{2}-\d{2}T[\d:.]+Z\|req_[0-9a-f]{24}$/, 'not a cursor of this list (pass the previous page’s next)')
    .optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(100),
});

/**
 * Device requests (申請 → 承認/却下), DESIGN.md §8.
 *
 * Terminal side (device credential):
 * - `POST /api/v1/requests` (`DeviceRequestSubmission`): the agent forwards a staff member's request
 *   with the device identity from its own record; the exception's match rule is derived here from
 *   that identity (never taken from the request). Resending the same id is answered 200 with the
 *   stored state; a new request 201.
 * - `GET /api/v1/requests`: this terminal's requests and their states (the app shows them).
 *
 * Administrators:
 * - `GET /api/v1/admin/requests?state=&device=&before=&limit=` newest first, read access:
 *   `{ requests, next }`, where `next` (null on the last page) is the `before` of the next page
 *   (keyset: the last row's `receivedAt|id`, so a page costs the same however deep).
 * - `POST …/:id/approve` (`{until?, access?, comment?}` — may narrow, never widen), `…/reject`
 *   (`{reason}`), `…/revoke` (an approved one): write access, recorded in the admin trail. An
 *   approval or revocation changes that terminal's next signed policy (`server/requests.ts`);
 *   approving needs a published policy for the terminal's tier (409 otherwise).
 */
export const requestRoutes: FastifyPluginCallback<{ store: Store; clock: Clock; auth: AdminAuth }> = (app, { store, clock, auth }, done) => {
  // Terminal side.
  void app.register((device, _options, registered) => {
    const deviceIdOf = requireDevice(device, store);
    const routes = device.withTypeProvider<ZodTypeProvider>();
    routes.post(
      ApiPaths.requests,
      { bodyLimit: REQUESTS_BODY_LIMIT, schema: { body: DeviceRequestSubmissionSchema, response: { 200: SubmittedSchema, 201: SubmittedSchema } } },
      async (request, reply) => {
        const deviceId = deviceIdOf(request);
        const body = request.body;
        const now = clock();
        if (Date.parse(body.until) <= now.getTime()) throw new ApiHttpError('bad-request', 'until: the requested window has already ended');
        const outcome = await store.addDeviceRequest({
          id: body.id,
          deviceId,
          user: body.user,
          device: body.device,
          rule: deviceMatchRule(body.device),
          purpose: body.purpose,
          from: new Date(Date.parse(body.from)).toISOString(),
          until: new Date(Date.parse(body.until)).toISOString(),
          access: body.access,
          submittedAt: new Date(Date.parse(body.submittedAt)).toISOString(),
          receivedAt: now.toISOString(),
        });
        if (outcome === 'conflict') throw new ApiHttpError('conflict', 'this request id belongs to another terminal');
        const stored = (await store.deviceRequest(body.id))!;
        request.log.info({ deviceId, requestId: body.id, outcome }, 'device request received');
        return reply.code(outcome === 'added' ? 201 : 200).send({ id: stored.id, state: toDeviceRequest(stored, now.getTime()).state });
      },
    );
    routes.get(ApiPaths.requests, { schema: { response: { 200: RequestListSchema } } }, async (request) => {
      const deviceId = deviceIdOf(request);
      const now = clock().getTime();
      return { requests: (await store.listDeviceRequests({ deviceId, limit: 100 })).map((stored) => toDeviceRequest(stored, now)) };
    });
    registered();
  });

  // Administrators.
  void app.register((admin, _options, registered) => {
    requireAdmin(admin, auth);
    const routes = admin.withTypeProvider<ZodTypeProvider>();
    routes.get(
      ApiPaths.adminRequests,
      { config: { access: 'read' }, schema: { querystring: AdminListQuerySchema, response: { 200: AdminRequestListSchema } } },
      async (request) => {
        const { state, device, before, limit } = request.query;
        const now = clock().getTime();
        // One row more than asked: whether an older page exists, without a count.
        const rows = await store.listDeviceRequests({ state, deviceId: device, before, limit: limit + 1 });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return { requests: page.map((stored) => toDeviceRequest(stored, now)), next: rows.length > limit && last !== undefined ? `${last.receivedAt}|${last.id}` : null };
      },
    );

    const decided = async (stored: StoredDeviceRequest | null, id: string, expect: string): Promise<StoredDeviceRequest> => {
      if (stored !== null) return stored;
      const current = await store.deviceRequest(id);
      if (current === null) throw new ApiHttpError('not-found', `no request ${id}`);
      throw new ApiHttpError('conflict', `request ${id} is ${current.state}, not ${expect}`);
    };

    routes.post(
      `${ApiPaths.adminRequests}/:id/approve`,
      { config: { access: 'write' }, bodyLimit: REQUESTS_BODY_LIMIT, schema: { params: IdParamsSchema, body: ApproveRequestSchema, response: { 200: DeviceRequestSchema } } },
      async (request) => {
        const { id } = request.params;
        const now = clock();
        const current = await store.deviceRequest(id);
        if (current === null) throw new ApiHttpError('not-found', `no request ${id}`);
        if (current.state !== 'pending') throw new ApiHttpError('conflict', `request ${id} is ${current.state}, not pending`);
        const tier = await store.deviceTier(current.deviceId);
        if (tier === null || (await store.policyHead(tier)) === null) {
          throw new ApiHttpError('conflict', `no policy is published for this terminal's tier (${tier ?? 'unknown'}): publish one, then approve`);
        }
        const narrowed = narrowApproval(current, request.body, now.getTime());
        if (!narrowed.ok) throw new ApiHttpError('bad-request', narrowed.message);
        const actor = actorOf(request).user;
        const stored = await decided(
          await store.decideDeviceRequest({ id, expect: 'pending', state: 'approved', at: now.toISOString(), by: actor, approvedUntil: narrowed.until, approvedAccess: narrowed.access, reason: request.body.comment }),
          id,
          'pending',
        );
        await recordAdminAction(store, now, actor, 'request.approved', { deviceId: stored.deviceId, user: stored.user }, { requestId: id, until: narrowed.until, access: narrowed.access, rule: stored.rule });
        return toDeviceRequest(stored, now.getTime());
      },
    );

    routes.post(
      `${ApiPaths.adminRequests}/:id/reject`,
      { config: { access: 'write' }, bodyLimit: REQUESTS_BODY_LIMIT, schema: { params: IdParamsSchema, body: RejectRequestSchema, response: { 200: DeviceRequestSchema } } },
      async (request) => {
        const { id } = request.params;
        const now = clock();
        const actor = actorOf(request).user;
        const stored = await decided(await store.decideDeviceRequest({ id, expect: 'pending', state: 'rejected', at: now.toISOString(), by: actor, reason: request.body.reason }), id, 'pending');
        await recordAdminAction(store, now, actor, 'request.rejected', { deviceId: stored.deviceId, user: stored.user }, { requestId: id, reason: request.body.reason });
        return toDeviceRequest(stored, now.getTime());
      },
    );

    routes.post(
      `${ApiPaths.adminRequests}/:id/revoke`,
      { config: { access: 'write' }, schema: { params: IdParamsSchema, response: { 200: DeviceRequestSchema } } },
      async (request) => {
        const { id } = request.params;
        const now = clock();
        const actor = actorOf(request).user;
        const stored = await decided(await store.decideDeviceRequest({ id, expect: 'approved', state: 'revoked', at: now.toISOString(), by: actor }), id, 'approved');
        await recordAdminAction(store, now, actor, 'request.revoked', { deviceId: stored.deviceId, user: stored.user }, { requestId: id });
        return toDeviceRequest(stored, now.getTime());
      },
    );
    registered();
  });

  done();
};
