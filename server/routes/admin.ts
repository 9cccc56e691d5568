import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { ApiPaths, DeviceIdSchema, DeviceSummarySchema } from '../../shared/api.js';
import { HashSchema, JournalEntrySchema } from '../../shared/journal.js';
import { verifyStoredChain } from '../chain.js';
import { sha256Hex } from '../crypto.js';
import { ApiHttpError } from '../http/api-error.js';
import { requireAdmin, type AdminAuth } from '../http/admin-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import { TAMPER_RECORD_KINDS, type Store } from '../store.js';

/**
 * The admin API's own schemas. They live here until the dashboard needs them in shared/ (they are
 * server → dashboard only, not part of the agent protocol).
 */
export const MAX_EVENTS_PAGE = 1000;

export const AdminDevicesResponseSchema = z.strictObject({ devices: z.array(DeviceSummarySchema) });

export const DeviceParamsSchema = z.strictObject({ id: DeviceIdSchema });

export const AdminEventsQuerySchema = z
  .strictObject({
    /** Entries with seq greater than this (0 = from the start), oldest first. */
    after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
    /** Instead: entries with seq below this, newest first (the dashboard's timeline pages back with it). */
    before: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    limit: z.coerce.number().int().min(1).max(MAX_EVENTS_PAGE).default(100),
  })
  .refine((query) => query.before === undefined || query.after === 0, { message: 'give after or before, not both', path: ['before'] });

export const AdminEventsResponseSchema = z.strictObject({ events: z.array(JournalEntrySchema) });

export const TamperRecordSchema = z.strictObject({
  kind: z.enum(TAMPER_RECORD_KINDS),
  seq: z.number().int(),
  detail: z.record(z.string(), z.union([z.string(), z.number()])),
  detectedAt: z.string(),
});

export const ChainReportResponseSchema = z.strictObject({
  count: z.number().int().nonnegative(),
  /** The stored chain re-verified from genesis, up to the acknowledged head. */
  verified: z.boolean(),
  firstBadSeq: z.number().int().nullable(),
  reason: z.string().nullable(),
  head: z.strictObject({ seq: z.number().int().nonnegative(), hash: HashSchema }),
  /** Breaks the server refused at upload time (gap, fork, bad prev, bad hash). */
  tamper: z.array(TamperRecordSchema),
});

/**
 * The admin API (any administrator: all read-only): the device list, a device's events page by
 * page, and its chain re-verified from genesis. The dashboard is built on these.
 */
export const adminRoutes: FastifyPluginCallback<{ store: Store; auth: AdminAuth }> = (app, { store, auth }, done) => {
  requireAdmin(app, auth);
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get(ApiPaths.adminDevices, { config: { access: 'read' }, schema: { response: { 200: AdminDevicesResponseSchema } } }, async () => ({
    devices: await store.listDevices(),
  }));

  api.get(
    `${ApiPaths.adminDevices}/:id/events`,
    { config: { access: 'read' }, schema: { params: DeviceParamsSchema, querystring: AdminEventsQuerySchema, response: { 200: AdminEventsResponseSchema } } },
    async (request) => {
      const { id } = request.params;
      const { after, before, limit } = request.query;
      if ((await store.chainHead(id)) === null) throw unknownDevice(id);
      return { events: before === undefined ? await store.eventsAfter(id, after, limit) : await store.eventsBefore(id, before, limit) };
    },
  );

  api.get(
    `${ApiPaths.adminDevices}/:id/chain`,
    { config: { access: 'read' }, schema: { params: DeviceParamsSchema, response: { 200: ChainReportResponseSchema } } },
    async (request) => {
      const { id } = request.params;
      const report = await verifyStoredChain(store, id, sha256Hex);
      const head = await store.chainHead(id);
      if (report === null || head === null) throw unknownDevice(id);
      return { ...report, head, tamper: await store.tamperRecords(id) };
    },
  );

  done();
};

function unknownDevice(id: string): ApiHttpError {
  return new ApiHttpError('not-found', `no device ${id}`);
}
