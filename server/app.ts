import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { MAX_BODY_BYTES } from '../shared/api.js';
import { AdminAuthService } from './admin-accounts.js';
import { systemClock, type Clock } from './clock.js';
import { sha256Hex } from './crypto.js';
import { loadOrCreateAdminToken, prepareDataDir } from './data-dir.js';
import { loadOrCreateDataKey, type DataKey } from './data-key.js';
import { apiErrorBody, toApiError } from './http/api-error.js';
import { actorOf, requireAdmin, type AdminAccess, type AdminAuth } from './http/admin-auth.js';
import { recordAdminAction } from './admin-trail.js';
import { bearerAuthorizer } from './ops/authorize.js';
import type { ForwardingConfig } from './ops/forwarder.js';
import { Operations } from './ops/operations.js';
import { requestRoutes } from './routes/requests.js';
import { limitJsonDepth } from './http/json-depth.js';
import { zodSerializerCompiler, zodValidatorCompiler } from './http/zod-schemas.js';
import { loadOrCreatePolicyKey, type PolicySigningKey } from './policy-key.js';
import { adminCommandRoutes } from './routes/admin-commands.js';
import { adminEnrollmentRoutes } from './routes/admin-enrollment.js';
import { adminPolicyRoutes } from './routes/admin-policies.js';
import { adminRecoveryRoutes } from './routes/admin-recovery.js';
import { MAX_REPORT_RUNS, adminSelfcheckRoutes } from './routes/admin-selfcheck.js';
import { adminLoginRoutes, adminSessionRoutes } from './routes/admin-session.js';
import { adminTerminalRoutes } from './routes/admin-terminals.js';
import { adminUserRoutes } from './routes/admin-users.js';
import { adminViolationRoutes } from './routes/admin-violations.js';
import { adminRoutes } from './routes/admin.js';
import { dashboardRoutes, defaultDashboardDir } from './routes/dashboard.js';
import { enrollRoutes } from './routes/enroll.js';
import { eventsRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { heartbeatRoutes } from './routes/heartbeat.js';
import { policyRoutes } from './routes/policy.js';
import { userCredentialRoutes } from './routes/user-credentials.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
import type { TlsFiles } from './tls.js';
import { serverVersion } from './version.js';

export interface ServerOptions {
  /** Holds `sekimori.db`, `admin-token`, `policy-signing-key.pem` and `data-encryption-key`; created with mode 0700 when missing. */
  readonly dataDir: string;
  /**
   * Request and error logging. Absent or false: none (tests). True: fastify's own JSON logger on
   * stdout, Authorization redacted. A logger object: used as is (main.ts passes winston, through
   * `fastifyLoggerFor`).
   */
  readonly logger?: boolean | FastifyBaseLogger;
  /** Now, for token expiry and timestamps; tests move it. */
  readonly clock?: Clock;
  /** The built dashboard (default: `dashboard/` next to the server's code, i.e. dist/server/dashboard). */
  readonly dashboardDir?: string;
  /** SIEM forwarding of received events (server/ops/README.md); absent or null: none. */
  readonly forwarding?: ForwardingConfig | null;
  /** A terminal counts as online in /metrics while its last heartbeat is younger than this (default: the dashboard's 5 min). */
  readonly onlineWindowMs?: number;
  /** Most self-inspection runs one report may cover (default MAX_REPORT_RUNS in routes/admin-selfcheck.ts). */
  readonly maxReportRuns?: number;
  /**
   * Serve HTTPS with this certificate and key (server/tls.ts); absent or null: plain HTTP. Under
   * TLS `request.protocol` is `https` (the socket is encrypted), which the admin login's "HTTPS or
   * this machine" rule and the Origin check rely on.
   */
  readonly tls?: TlsFiles | null;
}

/** A registered route and, for admin routes, who may call it. */
export interface RouteSummary {
  readonly method: string;
  readonly url: string;
  /** Undefined for routes outside the admin API's authentication (agent routes, login, dashboard files). */
  readonly access: AdminAccess | undefined;
}

export interface SekimoriServer {
  /** Ready (plugins loaded), not listening: call `app.listen`, or `app.inject` in tests. */
  readonly app: FastifyInstance;
  readonly store: Store;
  /** Where the admin API's bearer token is kept. */
  readonly adminTokenFile: string;
  /** The policy-signing key's id and public key (the private key stays inside its signer). */
  readonly policyKey: Pick<PolicySigningKey, 'keyId' | 'publicKeyBase64'>;
  /** The data-encryption key (sealing secrets the server reads back: recovery keys, bundles, admin TOTP). */
  readonly dataKey: DataKey;
  /** Metrics, OpenAPI, SIEM forwarding, audit export (server/ops/). */
  readonly operations: Operations;
  /** Every route registered, in registration order (tests check each admin route's access). */
  readonly routes: readonly RouteSummary[];
  /** Stops accepting requests, waits for those in flight, closes the database. Idempotent. */
  close(): Promise<void>;
}

/**
 * Sent with every answer. `form-action 'none'`: the dashboard's forms are submitted by script only;
 * a form that would submit natively (script failed) must not put a password into a URL.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'";

/** Longest a request may take to arrive in full, in ms: a slow client cannot hold a socket forever. */
const REQUEST_TIMEOUT_MS = 60_000;

/**
 * Builds the server: data directory, admin token, policy-signing key, data-encryption key, SQLite
 * store, and a fastify app with one plugin per concern (health, enroll, heartbeat, events, policy,
 * user credentials, admin login and session, admin, admin terminals, admin policies, admin recovery
 * and trail, admin commands, admin users, device requests, self-inspection, the dashboard's static files).
 *
 * Error contract: every error answer has the `ApiErrorSchema` shape — malformed JSON 400
 * `invalid-json`; a body that fails its schema (wrong types, unknown fields) 400 `bad-request`
 * with `issues`; over MAX_BODY_BYTES 413; not JSON 415; unknown route 404; no or bad credential 401.
 * Client input never causes a 500.
 *
 * Throws DataDirError / StoreOpenError (expected: message for people) when the data directory or
 * database cannot be used.
 */
export async function createServer(options: ServerOptions): Promise<SekimoriServer> {
  const clock = options.clock ?? systemClock;
  prepareDataDir(options.dataDir);
  const adminToken = loadOrCreateAdminToken(options.dataDir);
  const policyKey = loadOrCreatePolicyKey(options.dataDir);
  const dataKey = loadOrCreateDataKey(options.dataDir);
  const rawStore = SqliteStore.open(options.dataDir, { create: true });
  let ops: Operations;
  try {
    ops = Operations.open({ dataDir: options.dataDir, clock, forwarding: options.forwarding ?? null });
  } catch (error) {
    // A bad forwarding configuration: refuse to start rather than drop events silently.
    await rawStore.close();
    throw error;
  }
  // Stored event batches feed the ingest metric and the SIEM forwarder; routes stay unchanged.
  const store = ops.tap(rawStore);
  const routes: RouteSummary[] = [];

  let app: FastifyInstance;
  try {
    app = await buildApp(
      {
        store,
        adminToken: adminToken.token,
        policyKey,
        dataKey,
        clock,
        dashboardDir: options.dashboardDir ?? defaultDashboardDir(),
        routes,
        ops,
        onlineWindowMs: options.onlineWindowMs ?? 300_000,
        maxReportRuns: options.maxReportRuns ?? MAX_REPORT_RUNS,
      },
      options.logger,
      options.tls ?? null,
    );
  } catch (error) {
    await ops.close();
    await store.close();
    throw error;
  }

  let closing: Promise<void> | undefined;
  return {
    app,
    store,
    adminTokenFile: adminToken.file,
    policyKey: { keyId: policyKey.keyId, publicKeyBase64: policyKey.publicKeyBase64 },
    dataKey,
    operations: ops,
    routes,
    close: () => {
      closing ??= app
        .close()
        .finally(() => ops.close())
        .finally(() => store.close());
      return closing;
    },
  };
}

interface AppDeps {
  readonly store: Store;
  readonly adminToken: string;
  readonly policyKey: PolicySigningKey;
  readonly dataKey: DataKey;
  readonly clock: Clock;
  readonly dashboardDir: string;
  /** Filled with every route as it is registered. */
  readonly routes: RouteSummary[];
  readonly ops: Operations;
  readonly onlineWindowMs: number;
  readonly maxReportRuns: number;
}

async function buildApp({ store, adminToken, policyKey, dataKey, clock, dashboardDir, routes, ops, onlineWindowMs, maxReportRuns }: AppDeps, logger: ServerOptions['logger'], tls: TlsFiles | null = null): Promise<FastifyInstance> {
  const fastifyOptions = { bodyLimit: MAX_BODY_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, ...loggerOptions(logger) };
  const app: FastifyInstance = tls === null ? Fastify(fastifyOptions) : Fastify({ ...fastifyOptions, https: { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' } });
  try {
    configure(app);
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const access = route.config?.access;
      for (const method of methods) routes.push({ method, url: route.url, access });
    });
    // Before every route plugin: the metrics hook sees every request, the OpenAPI document every route.
    ops.registerFirst(app, { version: serverVersion() });
    const auth: AdminAuth = { tokenHash: sha256Hex(adminToken), service: new AdminAuthService(store, dataKey, clock) };
    await app.register(healthRoutes, { version: serverVersion() });
    await app.register(enrollRoutes, { store, clock, policyPublicKey: policyKey.publicKeyBase64, dataKey });
    await app.register(heartbeatRoutes, { store, clock, dataKey });
    await app.register(eventsRoutes, { store, clock });
    await app.register(policyRoutes, { store, policyKey });
    await app.register(userCredentialRoutes, { store, clock, dataKey });
    await app.register(adminLoginRoutes, { store, auth, clock });
    await app.register(adminSessionRoutes, { store, auth, clock });
    await app.register(adminRoutes, { store, auth });
    await app.register(adminTerminalRoutes, { store, auth, clock });
    await app.register(adminPolicyRoutes, { store, auth, policyKey, clock });
    await app.register(adminRecoveryRoutes, { store, auth, dataKey, clock });
    await app.register(adminCommandRoutes, { store, auth, clock });
    await app.register(adminEnrollmentRoutes, { store, auth, clock });
    await app.register(adminUserRoutes, { store, auth, clock });
    await app.register(requestRoutes, { store, auth, clock });
    await app.register(adminSelfcheckRoutes, { store, auth, clock, maxReportRuns });
    await app.register(adminViolationRoutes, { store, auth, clock });
    ops.registerRoutes(app, {
      version: serverVersion(),
      authorizeMetrics: bearerAuthorizer(adminToken),
      onlineWindowMs,
      exportScope: (scope) => requireAdmin(scope, auth),
      onExport: (request, summary) => recordAdminAction(store, clock(), actorOf(request).user, 'audit.export', {}, { ...summary }),
    });
    await app.register(dashboardRoutes, { dashboardDir });
    await app.ready();
    return app;
  } catch (error) {
    await app.close();
    throw error;
  }
}

function loggerOptions(logger: ServerOptions['logger']): { logger?: object | boolean; loggerInstance?: FastifyBaseLogger } {
  if (logger === undefined || logger === false) return { logger: false };
  // pino's default request serializer leaves headers out; the redaction is a second line of defence.
  if (logger === true) return { logger: { redact: ['req.headers.authorization'] } };
  return { loggerInstance: logger };
}

/** What every plugin inherits: body parsing, zod schemas, the error contract, response headers. */
function configure(app: FastifyInstance): void {
  // JSON only: a text/plain body is refused with 415 rather than reaching a schema as a string.
  app.removeContentTypeParser('text/plain');
  limitJsonDepth(app);
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setSerializerCompiler(zodSerializerCompiler);

  app.setErrorHandler((error, request, reply) => {
    const { statusCode, body } = toApiError(error);
    if (statusCode >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ statusCode, code: body.error.code }, body.error.message);
    if (statusCode === 401) void reply.header('www-authenticate', 'Bearer');
    return reply.code(statusCode).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    const route = request.url.split('?')[0]?.slice(0, 200) ?? '';
    return reply.code(404).send(apiErrorBody('not-found', `no route ${request.method} ${route}`));
  });

  app.decorateRequest('adminActor', null);

  app.addHook('onSend', (_request, reply, payload, done) => {
    // API answers are per-device and may carry secrets (enrol): never cached, never sniffed.
    void reply.header('cache-control', 'no-store');
    void reply.header('x-content-type-options', 'nosniff');
    // The dashboard's pages, and anything else a browser might render: no inline script or style,
    // nothing from elsewhere, never framed, no Referer leaving the page.
    void reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    void reply.header('referrer-policy', 'no-referrer');
    void reply.header('x-frame-options', 'DENY');
    void reply.header('cross-origin-opener-policy', 'same-origin');
    done(null, payload);
  });
}
