import type { FastifyPluginCallback } from 'fastify';
import { ApiPaths, HeartbeatRequestSchema, HeartbeatResponseSchema, type HeartbeatResponse } from '../../shared/api.js';
import type { Clock } from '../clock.js';
import { MAX_COMMANDS_PER_HEARTBEAT, commandsForHeartbeat } from '../commands.js';
import type { DataKey } from '../data-key.js';
import { ApiHttpError } from '../http/api-error.js';
import { requireDevice } from '../http/device-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import { heartbeatPolicyEtag } from '../requests.js';
import { syncRecoveryKey } from '../recovery.js';
import type { Store } from '../store.js';

/** A heartbeat's status is a few hundred bytes; see ENROLL_BODY_LIMIT for why the limit is small. */
export const HEARTBEAT_BODY_LIMIT = 64 * 1024;

/**
 * `POST /api/v1/heartbeat` (device credential): stores the agent's status (its first one also the
 * device's tier; none reported = `mynumber`, fail closed; afterwards only an administrator changes
 * it) and answers with what the server has acknowledged of its journal, the etag of the device's
 * policy for its STORED tier and department (null: none published; server/requests.ts) and the
 * device's open commands.
 *
 * In this order: the status is stored; `acks` close the device's commands (acks of unknown
 * commands or other devices' commands are ignored; an ok ack of `set-recovery-key` makes that key
 * current); `recovery` moves the server's copy of the recovery key to the agent's epoch and, when
 * due, queues a fresh key; then every open command (oldest first, at most 20) is sent, again
 * until acknowledged.
 */
export const heartbeatRoutes: FastifyPluginCallback<{ store: Store; clock: Clock; dataKey: DataKey }> = (app, { store, clock, dataKey }, done) => {
  const deviceIdOf = requireDevice(app, store);
  app.withTypeProvider<ZodTypeProvider>().post(
    ApiPaths.heartbeat,
    { bodyLimit: HEARTBEAT_BODY_LIMIT, schema: { body: HeartbeatRequestSchema, response: { 200: HeartbeatResponseSchema } } },
    async (request): Promise<HeartbeatResponse> => {
      const now = clock().toISOString();
      const deviceId = deviceIdOf(request);
      const { status, acks, recovery } = request.body;
      const hasAcks = acks !== undefined && acks.length > 0;
      // Nothing to process between storing the status and taking the commands (the common
      // heartbeat): the store takes them in the same group commit, no second statement.
      const deliver = !hasAcks && recovery === undefined ? { limit: MAX_COMMANDS_PER_HEARTBEAT } : undefined;
      const head = await store.recordHeartbeat(deviceId, status, now, deliver);
      // The device was authenticated a moment ago; it can only be gone if it was removed since.
      if (!head) throw new ApiHttpError('unauthorized', 'device no longer enrolled');
      if (hasAcks) {
        const closed = await store.acknowledgeCommands(deviceId, acks, now);
        for (const command of closed) {
          request.log.info({ deviceId, commandId: command.id, type: command.type, ok: command.ok }, 'command acknowledged');
        }
      }
      if (recovery !== undefined) await syncRecoveryKey({ store, dataKey }, deviceId, recovery, now);
      return {
        ackSeq: head.seq,
        ackHash: head.hash,
        serverTime: now,
        // The STORED tier's (and department's) policy; a differing reported tier is recorded as tamper, never honoured.
        policyEtag: await heartbeatPolicyEtag({ store, log: request.log }, deviceId, status.tier, head.seq, now),
        commands: await commandsForHeartbeat(store, dataKey, deviceId, now, head.commands),
      };
    },
  );
  done();
};
