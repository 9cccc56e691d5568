import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { AdminAccountSchema, AdminLoginRequestSchema, AdminPasswordChangeSchema, AdminPaths, AdminSessionSchema, type AdminSession } from '../../shared/api.js';
import { assertNever } from '../../shared/result.js';
import { csrfTokenOf, sessionExpiry, type AdminActor } from '../admin-accounts.js';
import { recordAdminAction } from '../admin-trail.js';
import type { Clock } from '../clock.js';
import { ApiHttpError } from '../http/api-error.js';
import { actorOf, clearSessionCookie, crossSiteRefusal, isLoopback, requireAdmin, setSessionCookie, type AdminAuth } from '../http/admin-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import type { Store } from '../store.js';

/** A login or password change is a few hundred bytes. */
export const SESSION_BODY_LIMIT = 16 * 1024;

export const AdminAccountsResponseSchema = z.strictObject({ accounts: z.array(AdminAccountSchema) });

/**
 * `POST /api/v1/admin/login` `{ user, password, code }` (no authentication; the only admin route
 * without it):
 * - over plain HTTP only from this machine (loopback), since the session cookie is `Secure`;
 *   otherwise 403;
 * - a browser request from another origin (`Origin`, `Sec-Fetch-Site`) → 403;
 * - while the account or the client address is throttled → 429 `rate-limited` with Retry-After
 *   (nothing is checked);
 * - a wrong name, password or code (or a code already used) → 401, one answer for all, recorded as
 *   `login.failed`;
 * - success → 200 `AdminSession` (with the CSRF token) and the session cookie, recorded as `login`.
 */
export const adminLoginRoutes: FastifyPluginCallback<{ store: Store; auth: AdminAuth; clock: Clock }> = (app, { store, auth, clock }, done) => {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post(
    AdminPaths.login,
    { bodyLimit: SESSION_BODY_LIMIT, schema: { body: AdminLoginRequestSchema, response: { 200: AdminSessionSchema } } },
    async (request, reply) => {
      const crossSite = crossSiteRefusal(request, false);
      if (crossSite !== null) throw new ApiHttpError('forbidden', crossSite);
      if (request.protocol !== 'https' && !isLoopback(request.socket.remoteAddress)) {
        throw new ApiHttpError('forbidden', 'administrator login needs HTTPS (or a connection from this machine)');
      }
      const ip = request.ip;
      const result = await auth.service.login(request.body, ip);
      if (!result.ok) {
        const failure = result.failure;
        switch (failure.code) {
          case 'throttled':
            request.log.warn({ ip }, 'login throttled');
            void reply.header('retry-after', String(failure.retryAfterSeconds));
            throw new ApiHttpError('rate-limited', `too many failed logins: try again in ${failure.retryAfterSeconds} s`);
          case 'bad-credentials':
            await recordAdminAction(store, clock(), request.body.user, 'login.failed', {}, { ip, knownAccount: failure.knownAccount, throttledFromNow: failure.blocked });
            throw new ApiHttpError('unauthorized', 'wrong user name, password or code');
          default:
            return assertNever(failure, 'login failure');
        }
      }
      const { sessionId, session } = result.value;
      setSessionCookie(reply, sessionId);
      await recordAdminAction(store, clock(), session.user, 'login', {}, { ip, role: session.role });
      request.log.info({ role: session.role }, 'administrator logged in');
      return sessionView({ user: session.user, role: session.role, via: 'session', session: { ...session, id: sessionId } });
    },
  );

  done();
};

/**
 * The logged-in administrator's own session (`self`: allowed even before the initial password is
 * changed) and the account list:
 * - `GET /admin/session` → `AdminSession` (who, role, CSRF token, expiry);
 * - `POST /admin/logout` (no body) → 204, the session deleted and the cookie cleared;
 * - `POST /admin/session/password` `{ currentPassword, newPassword }` → `AdminSession`; a wrong
 *   current password counts as a failed login (throttle) → 400 with `issues[currentPassword]`; a
 *   new one under 12 characters or equal to the current → 400 `issues[newPassword]`. Ends the
 *   account's other sessions;
 * - `GET /admin/accounts` (`read`) → `{ accounts }`, never a secret.
 */
export const adminSessionRoutes: FastifyPluginCallback<{ store: Store; auth: AdminAuth; clock: Clock }> = (app, { store, auth, clock }, done) => {
  requireAdmin(app, auth);
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get(AdminPaths.session, { config: { access: 'self' }, schema: { response: { 200: AdminSessionSchema } } }, (request) => Promise.resolve(sessionView(actorOf(request))));

  api.post(AdminPaths.logout, { config: { access: 'self' }, bodyLimit: SESSION_BODY_LIMIT }, async (request, reply) => {
    const actor = actorOf(request);
    if (actor.session === null) throw new ApiHttpError('bad-request', 'the admin token has no session to end');
    await auth.service.logout(actor.session.id);
    clearSessionCookie(reply);
    await recordAdminAction(store, clock(), actor.user, 'logout', {}, { ip: request.ip });
    return reply.code(204).send();
  });

  api.post(
    AdminPaths.password,
    { config: { access: 'self' }, bodyLimit: SESSION_BODY_LIMIT, schema: { body: AdminPasswordChangeSchema, response: { 200: AdminSessionSchema } } },
    async (request, reply) => {
      const actor = actorOf(request);
      const result = await auth.service.changePassword(actor, request.body, request.ip);
      if (!result.ok) {
        const { code, message } = result.error;
        switch (code) {
          case 'throttled':
            void reply.header('retry-after', '30');
            throw new ApiHttpError('rate-limited', message);
          case 'wrong-password':
            throw new ApiHttpError('bad-request', message, { issues: [{ path: 'currentPassword', message }] });
          case 'password-too-short':
          case 'password-too-long':
          case 'same-password':
            throw new ApiHttpError('bad-request', message, { issues: [{ path: 'newPassword', message }] });
          case 'no-session':
            throw new ApiHttpError('bad-request', message);
          default:
            return assertNever(code, 'password change error');
        }
      }
      await recordAdminAction(store, clock(), actor.user, 'password.changed', {}, { ip: request.ip });
      return sessionView({ ...actor, session: actor.session === null ? null : { ...actor.session, mustChangePassword: false } });
    },
  );

  api.get(AdminPaths.accounts, { config: { access: 'read' }, schema: { response: { 200: AdminAccountsResponseSchema } } }, async () => ({
    accounts: (await store.listAdminAccounts()).map((account) => ({
      user: account.name,
      role: account.role,
      createdAt: account.createdAt,
      totpConfirmed: account.totpLastStep !== null,
      mustChangePassword: account.mustChangePassword,
      lastLoginAt: account.lastLoginAt,
    })),
  }));

  done();
};

function sessionView(actor: AdminActor): AdminSession {
  const session = actor.session;
  if (session === null) {
    return { user: actor.user, role: actor.role, via: 'token', csrfToken: null, mustChangePassword: false, idleExpiresAt: null, absoluteExpiresAt: null };
  }
  const expiry = sessionExpiry(session);
  return {
    user: actor.user,
    role: actor.role,
    via: 'session',
    csrfToken: csrfTokenOf(session.id),
    mustChangePassword: session.mustChangePassword,
    idleExpiresAt: new Date(expiry.idle).toISOString(),
    absoluteExpiresAt: new Date(expiry.absolute).toISOString(),
  };
}
