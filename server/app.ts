import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { MAX_BODY_BYTES } from '../shared/api.js';
import { systemClock, type Clock } from './clock.js';
import { loadOrCreateAdminToken, prepareDataDir } from './data-dir.js';
import { loadOrCreateDataKey, type DataKey } from './data-key.js';
import { apiErrorBody, toApiError } from './http/api-error.js';
import { limitJsonDepth } from './http/json-depth.js';
import { zodSerializerCompiler, zodValidatorCompiler } from './http/zod-schemas.js';
import { loadOrCreatePolicyKey, type PolicySigningKey } from './policy-key.js';
import { adminCommandRoutes } from './routes/admin-commands.js';
import { adminPolicyRoutes } from './routes/admin-policies.js';
import { adminRecoveryRoutes } from './routes/admin-recovery.js';
import { adminUserRoutes } from './routes/admin-users.js';
import { adminRoutes } from './routes/admin.js';
import { enrollRoutes } from './routes/enroll.js';
import { eventsRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { heartbeatRoutes } from './routes/heartbeat.js';
import { policyRoutes } from './routes/policy.js';
import { userCredentialRoutes } from './routes/user-credentials.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
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
}

export interface SekimoriServer {
  /** Ready (plugins loaded), not listening: call `app.listen`, or `app.inject` in tests. */
  readonly app: FastifyInstance;
  readonly store: Store;
  /** Where the admin API's bearer token is kept. */
  readonly adminTokenFile: string;
  /** The policy-signing key's id and public key (the private key stays inside its signer). */
  readonly policyKey: Pick<PolicySigningKey, 'keyId' | 'publicKeyBase64'>;
  /** Stops accepting requests, waits for those in flight, closes the database. Idempotent. */
  close(): Promise<void>;
}

/** Longest a request may take to arrive in full, in ms: a slow client cannot hold a socket forever. */
const REQUEST_TIMEOUT_MS = 60_000;

/**
 * Builds the server: data directory, admin token, policy-signing key, data-encryption key, SQLite
 * store, and a fastify app with one plugin per concern (health, enroll, heartbeat, events, policy,
 * user credentials, admin, admin policies, admin recovery and trail, admin commands, admin users).
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
  const store = SqliteStore.open(options.dataDir, { create: true });

  let app: FastifyInstance;
  try {
    app = await buildApp({ store, adminToken: adminToken.token, policyKey, dataKey, clock }, options.logger);
  } catch (error) {
    await store.close();
    throw error;
  }

  let closing: Promise<void> | undefined;
  return {
    app,
    store,
    adminTokenFile: adminToken.file,
    policyKey: { keyId: policyKey.keyId, publicKeyBase64: policyKey.publicKeyBase64 },
    close: () => {
      closing ??= app.close().finally(() => store.close());
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
}

async function buildApp({ store, adminToken, policyKey, dataKey, clock }: AppDeps, logger: ServerOptions['logger']): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: MAX_BODY_BYTES,
    requestTimeout: REQUEST_TIMEOUT_MS,
    ...loggerOptions(logger),
  });
  try {
    configure(app);
    await app.register(healthRoutes, { version: serverVersion() });
    await app.register(enrollRoutes, { store, clock, policyPublicKey: policyKey.publicKeyBase64, dataKey });
    await app.register(heartbeatRoutes, { store, clock, dataKey });
    await app.register(eventsRoutes, { store, clock });
    await app.register(policyRoutes, { store });
    await app.register(userCredentialRoutes, { store, clock, dataKey });
    await app.register(adminRoutes, { store, adminToken });
    await app.register(adminPolicyRoutes, { store, adminToken, policyKey, clock });
    await app.register(adminRecoveryRoutes, { store, adminToken, dataKey, clock });
    await app.register(adminCommandRoutes, { store, adminToken, clock });
    await app.register(adminUserRoutes, { store, adminToken, clock });
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

  app.addHook('onSend', (_request, reply, payload, done) => {
    // API answers are per-device and may carry secrets (enrol): never cached, never sniffed.
    void reply.header('cache-control', 'no-store');
    void reply.header('x-content-type-options', 'nosniff');
    done(null, payload);
  });
}
