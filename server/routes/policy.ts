import type { FastifyPluginCallback } from 'fastify';
import { ApiPaths, SignedPolicySchema, type SignedPolicy } from '../../shared/api.js';
import { ApiHttpError } from '../http/api-error.js';
import { requireDevice } from '../http/device-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import { toSignedPolicy } from '../policies.js';
import type { Store } from '../store.js';

/**
 * `GET /api/v1/policy` (device credential): the signed policy of the device's tier — the tier of its
 * last heartbeat, `mynumber` before its first one — or 404 `not-found` when none was published
 * (the agent keeps its built-in profile). The heartbeat's `policyEtag` says when to fetch it.
 */
export const policyRoutes: FastifyPluginCallback<{ store: Store }> = (app, { store }, done) => {
  const deviceIdOf = requireDevice(app, store);
  app.withTypeProvider<ZodTypeProvider>().get(
    ApiPaths.policy,
    { schema: { response: { 200: SignedPolicySchema } } },
    async (request): Promise<SignedPolicy> => {
      const tier = await store.deviceTier(deviceIdOf(request));
      if (tier === null) throw new ApiHttpError('unauthorized', 'device no longer enrolled');
      const current = await store.currentPolicy(tier);
      if (current === null) throw new ApiHttpError('not-found', `no policy published for tier ${tier}`);
      return toSignedPolicy(current);
    },
  );
  done();
};
