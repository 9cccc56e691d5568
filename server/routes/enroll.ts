import type { FastifyPluginCallback } from 'fastify';
import { ApiPaths, EnrollRequestSchema, EnrollResponseSchema } from '../../shared/api.js';
import { assertNever } from '../../shared/result.js';
import { enrollDevice } from '../enrollment.js';
import { ApiHttpError } from '../http/api-error.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import type { Clock } from '../clock.js';
import type { DataKey } from '../data-key.js';
import type { Store } from '../store.js';

/**
 * Anyone may call enroll, so its body limit is far below the events limit: a valid request is
 * under 2 KiB, and an unauthenticated client must not make the server buffer megabytes.
 */
export const ENROLL_BODY_LIMIT = 64 * 1024;

/** `POST /api/v1/enroll`: spends a one-time token, creates a device, returns its credential and first recovery key (once). */
export const enrollRoutes: FastifyPluginCallback<{ store: Store; clock: Clock; policyPublicKey: string; dataKey: DataKey }> = (
  app,
  { store, clock, policyPublicKey, dataKey },
  done,
) => {
  app.withTypeProvider<ZodTypeProvider>().post(
    ApiPaths.enroll,
    { bodyLimit: ENROLL_BODY_LIMIT, schema: { body: EnrollRequestSchema, response: { 200: EnrollResponseSchema } } },
    async (request) => {
      const result = await enrollDevice(store, request.body, clock(), { policyPublicKey, dataKey });
      if (!result.ok) {
        switch (result.error.code) {
          case 'token-invalid':
            throw new ApiHttpError('token-invalid', result.error.message);
          default:
            return assertNever(result.error.code, 'enrolment error');
        }
      }
      request.log.info({ deviceId: result.value.deviceId }, 'device enrolled');
      return result.value;
    },
  );
  done();
};
