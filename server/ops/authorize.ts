import type { FastifyRequest } from 'fastify';
import { bearerToken } from '../credentials.js';
import { secretMatchesHash, sha256Hex } from '../crypto.js';

/**
 * Who may use an operations endpoint (`/metrics`, the audit export). True lets the request
 * through; false is answered 401 `unauthorized` with `WWW-Authenticate: Bearer`. To answer 403
 * (a signed-in auditor without the right role), throw `new ApiHttpError('forbidden', …)` instead.
 * Runs in `onRequest`, before any body is read.
 */
export type Authorize = (request: FastifyRequest) => boolean | Promise<boolean>;

/**
 * Accepts `Authorization: Bearer <token>` for any of `tokens` (the admin token, and/or a separate
 * scrape token so Prometheus need not hold the admin token). Constant-time over SHA-256 digests,
 * like the admin API's own check (server/http/admin-auth.ts).
 */
export function bearerAuthorizer(...tokens: readonly string[]): Authorize {
  if (tokens.length === 0) throw new Error('bearerAuthorizer needs at least one token');
  const hashes = tokens.map((token) => sha256Hex(token));
  return (request) => {
    const presented = bearerToken(request.headers.authorization);
    if (presented === null) return false;
    // Every hash is compared, so the time taken does not say which token matched.
    let matched = false;
    for (const hash of hashes) matched = secretMatchesHash(presented, hash) || matched;
    return matched;
  };
}

/**
 * No credential: for `/metrics` bound to a separate, firewalled listener (or a loopback-only
 * deployment). Named so the choice is visible in the composition root.
 */
export const allowEveryone: Authorize = () => true;
