import type { FastifyPluginCallback } from 'fastify';
import {
  ApiPaths,
  EventsBatchRequestSchema,
  EventsBatchResponseSchema,
  type ApiErrorCode,
  type EventsBatchResponse,
} from '../../shared/api.js';
import { assertNever } from '../../shared/result.js';
import type { Clock } from '../clock.js';
import { ApiHttpError } from '../http/api-error.js';
import { requireDevice } from '../http/device-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import type { Store, TamperKind } from '../store.js';

/**
 * `POST /api/v1/events` (device credential): a batch of journal entries continuing the device's
 * chain. Replays are idempotent (200, `accepted` counts only new entries). A gap, fork, bad link
 * or bad hash is recorded as tamper and answered 409 with the code of the break, the server's
 * `ackSeq` and the offending `seq`; valid entries before the break are kept (see `planBatch`).
 * `selfcheck.result` entries whose data validates are also stored as self-inspection runs, in the
 * same transaction (server/sqlite-selfcheck.ts); the others are kept as events and logged.
 */
export const eventsRoutes: FastifyPluginCallback<{ store: Store; clock: Clock }> = (app, { store, clock }, done) => {
  const deviceIdOf = requireDevice(app, store);
  app.withTypeProvider<ZodTypeProvider>().post(
    ApiPaths.events,
    { schema: { body: EventsBatchRequestSchema, response: { 200: EventsBatchResponseSchema } } },
    async (request): Promise<EventsBatchResponse> => {
      const deviceId = deviceIdOf(request);
      const outcome = await store.appendEvents(deviceId, request.body.entries, clock().toISOString());
      if (outcome.status !== 'unknown-device' && outcome.selfcheck !== undefined && outcome.selfcheck.invalidSeqs.length > 0) {
        // Kept as events (the chain is intact), left out of the self-inspection runs and reports.
        request.log.warn({ deviceId, seqs: outcome.selfcheck.invalidSeqs.slice(0, 20), count: outcome.selfcheck.invalidSeqs.length }, 'selfcheck.result data does not validate');
      }
      switch (outcome.status) {
        case 'accepted':
          return { ackSeq: outcome.head.seq, ackHash: outcome.head.hash, accepted: outcome.accepted };
        case 'rejected': {
          const { rejection, head } = outcome;
          request.log.warn(
            { deviceId, kind: rejection.kind, seq: rejection.seq, ackSeq: head.seq, accepted: outcome.accepted },
            'journal chain broken: tamper recorded',
          );
          throw new ApiHttpError(chainErrorCode(rejection.kind), rejection.message, { ackSeq: head.seq, seq: rejection.seq });
        }
        case 'unknown-device':
          throw new ApiHttpError('unauthorized', 'device no longer enrolled');
        default:
          return assertNever(outcome, 'append outcome');
      }
    },
  );
  done();
};

function chainErrorCode(kind: TamperKind): ApiErrorCode {
  switch (kind) {
    case 'fork':
      return 'chain-fork';
    case 'gap':
      return 'chain-gap';
    case 'bad-prev':
      return 'chain-bad-prev';
    case 'bad-hash':
      return 'chain-bad-hash';
    default:
      return assertNever(kind, 'tamper kind');
  }
}
