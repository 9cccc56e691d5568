import type { FastifyPluginCallback } from 'fastify';
import { ApiPaths, SignedPolicySchema, type SignedPolicy } from '../../shared/api.js';
import { ApiHttpError } from '../http/api-error.js';
import { requireDevice } from '../http/device-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import type { PolicySigningKey } from '../policy-key.js';
import { devicePolicy } from '../requests.js';
import type { Store } from '../store.js';

/**
 * `GET /api/v1/policy` (device credential): the signed policy of the device's group (its stored tier
 * and department) or else of its stored tier — set by its first heartbeat or by an administrator,
 * `mynumber` before either —, with the exceptions approved for this device and a version that never
 * goes backwards (`server/requests.ts`), or 404 `not-found` when none was published (the agent keeps
 * its built-in profile). The heartbeat's `policyEtag` says when to fetch it.
 */
export const policyRoutes: FastifyPluginCallback<{ store: Store; policyKey: PolicySigningKey }> = (app, { store, policyKey }, done) => {
  const deviceIdOf = requireDevice(app, store);
  app.withTypeProvider<ZodTypeProvider>().get(
    ApiPaths.policy,
    { schema: { response: { 200: SignedPolicySchema } } },
    async (request): Promise<SignedPolicy> => {
      const deviceId = deviceIdOf(request);
      const context = await store.devicePolicyContext(deviceId);
      if (context === null) throw new ApiHttpError('unauthorized', 'device no longer enrolled');
      const policy = await devicePolicy(store, policyKey, deviceId, context);
      if (policy === null) throw new ApiHttpError('not-found', `no policy published for tier ${context.tier}`);
      return policy.signed;
    },
  );
  done();
};
