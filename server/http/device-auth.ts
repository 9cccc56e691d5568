import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authenticateDevice } from '../credentials.js';
import type { Store } from '../store.js';
import { ApiHttpError } from './api-error.js';

/** Reads the device id that `requireDevice`'s hook authenticated for a request. */
export type DeviceIdOf = (request: FastifyRequest) => string;

/**
 * Adds an onRequest hook to `app` (one plugin's scope) that requires a device credential
 * (`Authorization: Bearer <credential>`) and answers 401 `unauthorized` otherwise. It runs before
 * the body is read, so an unauthenticated client cannot make the server parse megabytes.
 */
export function requireDevice(app: FastifyInstance, store: Store): DeviceIdOf {
  const authenticated = new WeakMap<FastifyRequest, string>();
  app.addHook('onRequest', async (request) => {
    const deviceId = await authenticateDevice(store, request.headers.authorization);
    if (deviceId === null) throw new ApiHttpError('unauthorized', 'missing or invalid device credential');
    authenticated.set(request, deviceId);
  });
  return (request) => {
    const deviceId = authenticated.get(request);
    // A route outside the hook's scope asking for a device is a programming error.
    if (deviceId === undefined) throw new Error('requireDevice: request was not authenticated');
    return deviceId;
  };
}
