import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { AdminCommandRequestSchema, AdminCommandSchema, ApiPaths, type AdminCommand } from '../../shared/api.js';
import { recordAdminAction } from '../admin-trail.js';
import type { Clock } from '../clock.js';
import { newCommandId } from '../commands.js';
import { ApiHttpError } from '../http/api-error.js';
import { actorOf, requireAdmin, type AdminAuth } from '../http/admin-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import type { Store, StoredCommand } from '../store.js';
import { DeviceParamsSchema } from './admin.js';

export const COMMANDS_BODY_LIMIT = 16 * 1024;
export const MAX_COMMANDS_PAGE = 1000;

export const AdminCommandCreatedSchema = z.strictObject({ id: z.string() });
export const AdminCommandsQuerySchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(MAX_COMMANDS_PAGE).default(100) });
export const AdminCommandsResponseSchema = z.strictObject({ commands: z.array(AdminCommandSchema) });

/**
 * Remote commands for one terminal (administrators; queuing needs role admin):
 * - `POST /api/v1/admin/devices/:id/commands` (`AdminCommandRequest`: `lock`, `resync`,
 *   `reset-factors`) → 201 `{ id }`; unknown device 404. Recorded in the admin trail.
 * - `GET /api/v1/admin/devices/:id/commands?limit=N` → `{ commands }`, newest first, with their
 *   state (queued, delivered, succeeded, failed, cancelled).
 */
export const adminCommandRoutes: FastifyPluginCallback<{ store: Store; auth: AdminAuth; clock: Clock }> = (
  app,
  { store, auth, clock },
  done,
) => {
  requireAdmin(app, auth);
  const api = app.withTypeProvider<ZodTypeProvider>();
  const path = `${ApiPaths.adminDevices}/:id/commands`;

  const requireDeviceExists = async (id: string) => {
    if ((await store.deviceTier(id)) === null) throw new ApiHttpError('not-found', `no device ${id}`);
  };

  api.post(
    path,
    {
      config: { access: 'write' },
      bodyLimit: COMMANDS_BODY_LIMIT,
      schema: { params: DeviceParamsSchema, body: AdminCommandRequestSchema, response: { 201: AdminCommandCreatedSchema } },
    },
    async (request, reply) => {
      const actor = actorOf(request).user;
      const deviceId = request.params.id;
      await requireDeviceExists(deviceId);
      const now = clock();
      const { type, params } = request.body;
      const id = newCommandId();
      await store.addCommands([{ id, deviceId, type, params: params ?? null, createdAt: now.toISOString(), createdBy: actor }]);
      const user = type === 'reset-factors' && typeof params?.['user'] === 'string' ? params['user'] : null;
      await recordAdminAction(store, now, actor, 'command.queued', { deviceId, user }, { commandId: id, type, params: params ?? null });
      request.log.info({ deviceId, commandId: id, type }, 'command queued');
      return reply.code(201).send({ id });
    },
  );

  api.get(
    path,
    { config: { access: 'read' }, schema: { params: DeviceParamsSchema, querystring: AdminCommandsQuerySchema, response: { 200: AdminCommandsResponseSchema } } },
    async (request) => {
      const deviceId = request.params.id;
      await requireDeviceExists(deviceId);
      return { commands: (await store.listCommands(deviceId, request.query.limit)).map(toAdminCommand) };
    },
  );

  done();
};

function toAdminCommand(command: StoredCommand): AdminCommand {
  return {
    id: command.id,
    deviceId: command.deviceId,
    type: command.type,
    params: command.params as AdminCommand['params'],
    state: command.state,
    createdAt: command.createdAt,
    createdBy: command.createdBy,
    deliveredAt: command.deliveredAt,
    ackedAt: command.ackedAt,
    ok: command.ok,
    detail: command.detail,
  };
}
