import type { FastifyInstance } from 'fastify';
import { bearerToken } from '../credentials.js';
import { secretMatchesHash, sha256Hex } from '../crypto.js';
import { ApiHttpError } from './api-error.js';

/**
 * Adds an onRequest hook to `app` (the admin plugin's scope) that requires
 * `Authorization: Bearer <admin token>` and answers 401 `unauthorized` otherwise. The comparison is
 * constant-time over digests. (Administrator accounts with password + TOTP and roles replace this
 * single token with the dashboard, DESIGN.md §8.)
 */
export function requireAdmin(app: FastifyInstance, adminToken: string): void {
  const expectedHash = sha256Hex(adminToken);
  app.addHook('onRequest', (request, _reply, done) => {
    const presented = bearerToken(request.headers.authorization);
    if (presented === null || !secretMatchesHash(presented, expectedHash)) {
      done(new ApiHttpError('unauthorized', 'missing or invalid admin token'));
      return;
    }
    done();
  });
}
