import type { FastifyPluginCallback } from 'fastify';
import { ApiPaths, HeartbeatRequestSchema, HeartbeatResponseSchema, type HeartbeatResponse } from '../../shared/api.js';
import type { Clock } from '../clock.js';
import { ApiHttpError } from '../http/api-error.js';
import { requireDevice } from '../http/device-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import { policyEtag } from '../policies.js';
import { DEFAULT_DEVICE_TIER, type Store } from '../store.js';

/** A heartbeat's status is a few hundred bytes; see ENROLL_BODY_LIMIT for why the limit is small. */
export const HEARTBEAT_BODY_LIMIT = 64 * 1024;

/**
 * `POST /api/v1/heartbeat` (device credential): stores the agent's status (and with it the device's
 * tier; none reported = `mynumber`, fail closed) and answers with what the server has acknowledged
 * of its journal and the etag of the tier's current signed policy (null: none published). Commands
 * come in a later issue, hence `commands: []`.
 */
export const heartbeatRoutes: FastifyPluginCallback<{ store: Store; clock: Clock }> = (app, { store, clock }, done) => {
  const deviceIdOf = requireDevice(app, store);
  app.withTypeProvider<ZodTypeProvider>().post(
    ApiPaths.heartbeat,
    { bodyLimit: HEARTBEAT_BODY_LIMIT, schema: { body: HeartbeatRequestSchema, response: { 200: HeartbeatResponseSchema } } },
    async (request): Promise<HeartbeatResponse> => {
      const now = clock().toISOString();
      const { status } = request.body;
      const head = await store.recordHeartbeat(deviceIdOf(request), status, now);
      // The device was authenticated a moment ago; it can only be gone if it was removed since.
      if (!head) throw new ApiHttpError('unauthorized', 'device no longer enrolled');
      const policy = await store.policyHead(status.tier ?? DEFAULT_DEVICE_TIER);
      return { ackSeq: head.seq, ackHash: head.hash, serverTime: now, policyEtag: policy ? policyEtag(policy) : null, commands: [] };
    },
  );
  done();
};
