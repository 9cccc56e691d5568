import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ADMIN_CSRF_HEADER, ADMIN_SESSION_COOKIE } from '../../shared/api.js';
import { API_TOKEN_ACTOR, csrfTokenMatches, type AdminActor, type AdminAuthService } from '../admin-accounts.js';
import { bearerToken } from '../credentials.js';
import { secretMatchesHash } from '../crypto.js';
import { ApiHttpError } from './api-error.js';

/**
 * Who may call an admin route, declared on every route as `config: { access }`:
 * - `read`: any administrator, `admin` or `auditor` (GET routes);
 * - `write`: role `admin` only (anything that changes a terminal, a user, a policy, or recovers);
 * - `self`: any logged-in administrator, even one who must still change the initial password
 *   (their own session: who am I, log out, change my password).
 * A route registered under `requireAdmin` without `access` fails at start-up, so no admin route
 * can exist without a decision about roles.
 */
export type AdminAccess = 'read' | 'write' | 'self';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: AdminAccess;
  }
  interface FastifyRequest {
    /** The authenticated administrator (set by `requireAdmin`'s hook; null elsewhere). */
    adminActor: AdminActor | null;
  }
}

export interface AdminAuth {
  /** SHA-256 hex of the admin token (automation: `Authorization: Bearer …`, acts as `api-token`, role admin). */
  readonly tokenHash: string;
  readonly service: AdminAuthService;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Adds to `app` (an admin plugin's scope) the start-up check that every route declares its
 * `access`, and an onRequest hook (before the body is read) that authenticates and authorises:
 *
 * 1. `Authorization: Bearer <admin token>` → actor `api-token`, role admin; a present but wrong
 *    Authorization header is 401 (no fall-back to the cookie).
 * 2. Otherwise the session cookie → the session's account; none, unknown or expired → 401.
 *    On POST/PUT/DELETE/PATCH a cookie session must also send the CSRF token (`x-sekimori-csrf`,
 *    bound to the session) and an `Origin` of this server; `Sec-Fetch-Site`, when sent, must be
 *    `same-origin` → otherwise 403. The token is not needed with the bearer token, which a
 *    browser never sends on its own.
 * 3. An account that must change its initial password may only use `self` routes → 403.
 * 4. `write` routes need role admin → 403 for an auditor.
 */
export function requireAdmin(app: FastifyInstance, auth: AdminAuth): void {
  const undeclared: string[] = [];
  app.addHook('onRoute', (route) => {
    const access = (route.config as { access?: unknown } | undefined)?.access;
    if (access !== 'read' && access !== 'write' && access !== 'self') undeclared.push(`${String(route.method)} ${route.url}`);
  });
  // Reported when the app gets ready (a throw inside onRoute would escape the plugin loader).
  app.addHook('onReady', (done) => {
    done(undeclared.length === 0 ? undefined : new Error(`admin routes declare no access (config.access: 'read', 'write' or 'self'): ${undeclared.join(', ')}`));
  });
  app.addHook('onRequest', async (request) => {
    request.adminActor = await authenticateAdmin(request, auth);
  });
}

/** The actor of a request that passed `requireAdmin` (a route outside it calling this is a bug). */
export function actorOf(request: FastifyRequest): AdminActor {
  if (request.adminActor === null) throw new Error('admin route without requireAdmin');
  return request.adminActor;
}

/**
 * The same check for a route outside an admin plugin (the operations endpoints take an
 * `Authorize` function): resolves true with `request.adminActor` set, or throws the 401/403
 * `ApiHttpError` described at `requireAdmin`.
 */
export function adminAuthorizer(auth: AdminAuth, access: AdminAccess): (request: FastifyRequest) => Promise<boolean> {
  return async (request) => {
    request.adminActor = await authenticateAdmin(request, auth, access);
    return true;
  };
}

async function authenticateAdmin(request: FastifyRequest, auth: AdminAuth, routeAccess?: AdminAccess): Promise<AdminActor> {
  const access = routeAccess ?? request.routeOptions.config.access;
  if (access === undefined) throw new Error(`admin route ${request.method} ${request.url} declares no access`);
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const presented = bearerToken(authorization);
    if (presented === null || !secretMatchesHash(presented, auth.tokenHash)) throw new ApiHttpError('unauthorized', 'missing or invalid admin token');
    return { user: API_TOKEN_ACTOR, role: 'admin', via: 'token', session: null };
  }
  const sessionId = cookieValue(request.headers.cookie, ADMIN_SESSION_COOKIE);
  if (sessionId === null) throw new ApiHttpError('unauthorized', 'not logged in (no session, no admin token)');
  const result = await auth.service.authenticate(sessionId);
  if (!result.ok) throw new ApiHttpError('unauthorized', result.error.message);
  const actor = result.value;
  if (!SAFE_METHODS.has(request.method)) {
    const refusal = crossSiteRefusal(request, true);
    if (refusal !== null) throw new ApiHttpError('forbidden', refusal);
    const presented = request.headers[ADMIN_CSRF_HEADER];
    if (!csrfTokenMatches(sessionId, typeof presented === 'string' ? presented : undefined)) {
      throw new ApiHttpError('forbidden', `missing or wrong CSRF token (header ${ADMIN_CSRF_HEADER})`);
    }
  }
  if (actor.session?.mustChangePassword === true && access !== 'self') {
    throw new ApiHttpError('forbidden', 'change the initial password first');
  }
  if (access === 'write' && actor.role !== 'admin') throw new ApiHttpError('forbidden', `role ${actor.role} may only read`);
  return actor;
}

/**
 * Why a browser request looks cross-site, or null. `Origin` must name this server (same host and
 * port, as the `Host` header says; scheme http only when the request itself is plain HTTP);
 * when `originRequired`, a missing Origin is refused too (browsers send it on every POST, PUT and
 * DELETE). `Sec-Fetch-Site`, when sent, must be `same-origin` or `none`.
 */
export function crossSiteRefusal(request: FastifyRequest, originRequired: boolean): string | null {
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return `cross-site request refused (Sec-Fetch-Site: ${site.slice(0, 40)})`;
  const origin = request.headers.origin;
  if (typeof origin !== 'string') return originRequired ? 'missing Origin header' : null;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return 'malformed Origin header';
  }
  const schemeOk = url.protocol === 'https:' || (url.protocol === 'http:' && request.protocol === 'http');
  if (!schemeOk || origin !== url.origin || url.host !== hostOf(url.protocol, request.headers.host)) return `cross-origin request refused (Origin ${origin.slice(0, 100)})`;
  return null;
}

/** The Host header as a URL with `scheme` would normalise it (default port dropped, lower case), or null. */
function hostOf(scheme: string, host: string | undefined): string | null {
  if (host === undefined || host === '') return null;
  try {
    return new URL(`${scheme}//${host}`).host;
  } catch {
    return null;
  }
}

/** The value of cookie `name` in a `Cookie` header, or null. */
export function cookieValue(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  for (const part of header.split(';')) {
    const index = part.indexOf('=');
    if (index < 0) continue;
    if (part.slice(0, index).trim() === name) return part.slice(index + 1).trim();
  }
  return null;
}

/**
 * Sets the session cookie: HttpOnly (no script reads it), SameSite=Strict (never sent with a
 * request started by another site), Path=/, Secure (browsers accept Secure cookies on
 * http://127.0.0.1 and http://localhost; elsewhere the dashboard needs HTTPS), and the `__Host-`
 * prefix that makes the browser insist on those. No Max-Age: it ends with the browser; the server
 * ends it at the idle and absolute timeouts anyway.
 */
export function setSessionCookie(reply: FastifyReply, sessionId: string): void {
  void reply.header('set-cookie', `${ADMIN_SESSION_COOKIE}=${sessionId}; Path=/; HttpOnly; Secure; SameSite=Strict`);
}

export function clearSessionCookie(reply: FastifyReply): void {
  void reply.header('set-cookie', `${ADMIN_SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0`);
}

/** Whether the connection comes from this machine (the dashboard over plain HTTP is allowed only then). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}
