import type { FastifyPluginCallback } from 'fastify';
import {
  ApiPaths,
  CredentialsLookupRequestSchema,
  CredentialsPutResponseSchema,
  UserCredentialBundleSchema,
  type CredentialsPutResponse,
  type UserCredentialBundle,
} from '../../shared/api.js';
import type { Clock } from '../clock.js';
import type { DataKey } from '../data-key.js';
import { ApiHttpError } from '../http/api-error.js';
import { requireDevice } from '../http/device-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import type { Store } from '../store.js';
import { openBundle, sealBundle } from '../user-credentials.js';

/** A bundle is under 1 KiB; see ENROLL_BODY_LIMIT for why device bodies other than events are small. */
export const CREDENTIALS_BODY_LIMIT = 64 * 1024;

/**
 * Users' roaming credentials (device credential):
 * - `PUT /api/v1/credentials` (`UserCredentialBundle`): stores the bundle sealed, keyed by (tier of
 *   the uploading device, user), replacing an earlier one; remembers which device uploaded it.
 * - `POST /api/v1/credentials/lookup` (`{ user }`): the bundle when the asking device's tier holds
 *   one for the user, else 404 `not-found` — never a bundle of another tier.
 *
 * The device's tier is the one of its last heartbeat (`mynumber` before the first).
 * Nothing here logs a bundle, a user name or a secret.
 */
export const userCredentialRoutes: FastifyPluginCallback<{ store: Store; clock: Clock; dataKey: DataKey }> = (
  app,
  { store, clock, dataKey },
  done,
) => {
  const deviceIdOf = requireDevice(app, store);
  const api = app.withTypeProvider<ZodTypeProvider>();

  const tierOf = async (deviceId: string) => {
    const tier = await store.deviceTier(deviceId);
    if (tier === null) throw new ApiHttpError('unauthorized', 'device no longer enrolled');
    return tier;
  };

  api.put(
    ApiPaths.credentials,
    { bodyLimit: CREDENTIALS_BODY_LIMIT, schema: { body: UserCredentialBundleSchema, response: { 200: CredentialsPutResponseSchema } } },
    async (request): Promise<CredentialsPutResponse> => {
      const deviceId = deviceIdOf(request);
      const tier = await tierOf(deviceId);
      const bundle = request.body;
      const enrolledAt = clock().toISOString();
      const { replaced } = await store.putUserCredentials({ tier, user: bundle.user, sealedBundle: sealBundle(dataKey, tier, bundle), enrolledAt, deviceId });
      await store.noteDeviceUser(deviceId, bundle.user, 'enrolled', enrolledAt);
      request.log.info({ deviceId, tier, replaced }, 'user credentials stored');
      return { user: bundle.user, tier, enrolledAt, replaced };
    },
  );

  api.post(
    ApiPaths.credentialsLookup,
    { bodyLimit: CREDENTIALS_BODY_LIMIT, schema: { body: CredentialsLookupRequestSchema, response: { 200: UserCredentialBundleSchema } } },
    async (request): Promise<UserCredentialBundle> => {
      const deviceId = deviceIdOf(request);
      const tier = await tierOf(deviceId);
      const { user } = request.body;
      const record = await store.userCredentials(tier, user);
      if (record === null) throw new ApiHttpError('not-found', 'no enrolled credentials for this user on this tier');
      await store.noteDeviceUser(deviceId, user, 'fetched', clock().toISOString());
      return openBundle(dataKey, tier, user, record.sealedBundle);
    },
  );

  done();
};
