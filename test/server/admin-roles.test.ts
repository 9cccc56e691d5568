import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminPaths, ApiPaths, API_PREFIX } from '../../shared/api.js';
import type { AdminAuthService } from '../../server/admin-accounts.js';
import type { RouteSummary } from '../../server/app.js';
import { sha256Hex } from '../../server/crypto.js';
import { requireAdmin } from '../../server/http/admin-auth.js';
import { asSession, readySession, steppingClock, type Session } from './admin-helpers.js';
import { bootServer, enrolDevice, type TestServer } from './helpers.js';

/**
 * Roles on EVERY admin route, taken from the routes the app actually registered: a route added
 * later without a role decision either fails at start-up (no `access`) or shows up here.
 */

const ADMIN_PREFIX = `${API_PREFIX}/admin/`;
/** The only admin route without authentication. */
const PUBLIC_ADMIN_ROUTES = new Set([`POST ${AdminPaths.login}`]);
/** State-changing routes an auditor may use: only their own session. */
const SELF_WRITE_ROUTES = new Set([`POST ${AdminPaths.logout}`, `POST ${AdminPaths.password}`]);
const READ_METHODS = new Set(['GET', 'HEAD']);

let server: TestServer;
let admin: Session;
let auditor: Session;
let deviceId: string;
let adminRoutes: RouteSummary[];

beforeAll(async () => {
  const clock = steppingClock();
  server = await bootServer({ clock });
  ({ deviceId } = await enrolDevice(server));
  admin = await readySession(server, 'tanaka', 'admin', clock, clock.advance);
  auditor = await readySession(server, 'kansa', 'auditor', clock, clock.advance);
  adminRoutes = server.routes.filter((route) => route.url.startsWith(ADMIN_PREFIX) && !PUBLIC_ADMIN_ROUTES.has(`${route.method} ${route.url}`));
});

afterAll(async () => {
  await server.cleanup();
});

function concrete(url: string): string {
  return url.replace(':id', deviceId).replace(':tier', 'mynumber').replace(':user', 'tanaka');
}

function name(route: RouteSummary): string {
  return `${route.method} ${route.url}`;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';

function call(session: Session | null, route: RouteSummary): ReturnType<typeof asSession> {
  const url = concrete(route.url);
  const method = route.method as Method;
  const body = READ_METHODS.has(method) || method === 'DELETE' ? undefined : {};
  if (session === null) {
    return server.app.inject({ method, url, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, payload: '{}' }) });
  }
  return asSession(server, session, method, url, body);
}

describe('roles on every admin route', () => {
  it('finds the admin routes, each with a declared access', () => {
    expect(adminRoutes.length).toBeGreaterThanOrEqual(18);
    expect(adminRoutes.filter((route) => route.access === undefined).map(name)).toEqual([]);
    // The known state-changing routes are among them (the list is the app's, not this test's).
    const names = adminRoutes.map(name);
    for (const expected of [
      `PUT ${ApiPaths.adminPolicies}/:tier`,
      `POST ${ApiPaths.adminDevices}/:id/commands`,
      `DELETE ${ApiPaths.adminUsers}/:user/credentials`,
      `POST ${ApiPaths.adminRecovery}`,
      `POST ${AdminPaths.recoveryDecode}`,
    ]) {
      expect(names).toContain(expected);
    }
  });

  it('declares every state-changing admin route write (role admin), except the caller’s own session', () => {
    const notWrite = adminRoutes.filter((route) => !READ_METHODS.has(route.method) && route.access !== 'write').map(name);
    expect(new Set(notWrite)).toEqual(SELF_WRITE_ROUTES);
  });

  it('refuses every admin route without a session or token (401)', async () => {
    const refused = [];
    for (const route of adminRoutes) {
      const response = await call(null, route);
      if (response.statusCode !== 401) refused.push(`${name(route)} → ${response.statusCode}`);
    }
    expect(refused).toEqual([]);
  });

  it('lets an auditor read every GET route and refuses every write route with 403, route by route', async () => {
    const wrong: string[] = [];
    for (const route of adminRoutes) {
      // Their own session: logging out here would end the session the rest of this test uses.
      if (SELF_WRITE_ROUTES.has(name(route))) continue;
      const response = await call(auditor, route);
      if (READ_METHODS.has(route.method)) {
        if (response.statusCode === 401 || response.statusCode === 403) wrong.push(`${name(route)} read → ${response.statusCode}`);
      } else {
        if (response.statusCode !== 403) wrong.push(`${name(route)} write → ${response.statusCode} ${response.body.slice(0, 200)}`);
        else expect(response.json()).toMatchObject({ error: { code: 'forbidden', message: expect.stringMatching(/auditor/) } });
      }
    }
    expect(wrong).toEqual([]);
  });

  it('lets an admin through the role check on every route (the answer is the route’s own)', async () => {
    const wrong: string[] = [];
    for (const route of adminRoutes) {
      if (route.url === AdminPaths.logout || route.url === AdminPaths.password) continue;
      const response = await call(admin, route);
      if (response.statusCode === 401 || response.statusCode === 403) wrong.push(`${name(route)} → ${response.statusCode} ${response.body.slice(0, 200)}`);
    }
    expect(wrong).toEqual([]);
  });

  it('refuses an auditor exactly the acts the issue names: approve (later), policy change, command, user reset, recovery', async () => {
    const acts: [Method, string, unknown][] = [
      ['PUT', `${ApiPaths.adminPolicies}/mynumber`, {}],
      ['POST', `${ApiPaths.adminDevices}/${deviceId}/commands`, { type: 'lock' }],
      ['DELETE', `${ApiPaths.adminUsers}/tanaka/credentials`, undefined],
      ['POST', ApiPaths.adminRecovery, { challenge: '00000-00000-00000-00000-00000-00000' }],
      ['POST', AdminPaths.recoveryDecode, { challenge: '00000-00000-00000-00000-00000-00000' }],
    ];
    for (const [method, url, body] of acts) expect((await asSession(server, auditor, method, url, body)).statusCode, `${method} ${url}`).toBe(403);
    // Nothing was queued.
    expect((await asSession(server, admin, 'GET', `${ApiPaths.adminDevices}/${deviceId}/commands`)).json()).toEqual({ commands: [] });
  });
});

describe('an admin route without a role decision', () => {
  it('fails at start-up', async () => {
    const app = Fastify();
    await app.register((scope, _options, done) => {
      requireAdmin(scope, { tokenHash: sha256Hex('t'), service: {} as AdminAuthService });
      scope.get('/api/v1/admin/forgotten', () => 'no role');
      done();
    });
    await expect(app.ready()).rejects.toThrow(/declare no access .*GET \/api\/v1\/admin\/forgotten/);
    await app.close().catch(() => undefined);
  });
});
