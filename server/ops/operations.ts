import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import type { Store } from '../store.js';
import { auditExportRoutes, type AuditExportSummary } from './audit-export.js';
import type { Authorize } from './authorize.js';
import { fanOut, withEventTap, type EventsStoredListener } from './event-tap.js';
import { EventForwarder, type ForwardingConfig } from './forwarder.js';
import { DEFAULT_ONLINE_WINDOW_MS, ServerMetrics, metricsOnResponse, metricsRoutes } from './metrics.js';
import { openApiRoutes } from './openapi.js';
import { SqliteOpsQueries, type OpsQueries } from './ops-db.js';

export interface OperationsOptions {
  /** The server's data directory; its database must exist already (open the store first). */
  readonly dataDir: string;
  readonly clock?: Clock;
  /** SIEM forwarding; absent or null: none. Invalid: `open` throws a ZodError (refuse to start). */
  readonly forwarding?: ForwardingConfig | null;
  /** Operational log of forwarding errors (never event content) and of listener failures. */
  readonly onError?: (what: string, error: unknown) => void;
}

export interface OperationsPluginOptions {
  readonly version: string;
  /** Who may scrape `/metrics` (e.g. `bearerAuthorizer(adminToken)`); or give `metricsScope`. */
  readonly authorizeMetrics?: Authorize;
  /** Adds authentication to the metrics plugin's scope instead (`(scope) => requireAdmin(scope, auth)`). */
  readonly metricsScope?: (app: FastifyInstance) => void;
  /** Who may export audit CSV; or give `exportScope`. */
  readonly authorizeExport?: Authorize;
  /** Adds authentication to the export plugin's scope instead (`(scope) => requireAdmin(scope, auth)`: sessions, roles, the actor for `onExport`). */
  readonly exportScope?: (app: FastifyInstance) => void;
  /** Admin trail of exports (see AuditExportRoutesOptions.onExport). */
  readonly onExport?: (request: FastifyRequest, summary: AuditExportSummary) => Promise<void> | void;
  /** Online window of `sekimori_terminals_online`, ms; default 3 × 60 s. */
  readonly onlineWindowMs?: number;
  /** Modules whose `…Schema` exports name the OpenAPI components (shared/api.ts is always used). */
  readonly schemaModules?: readonly Readonly<Record<string, unknown>>[];
}

/**
 * The operations features in one object for the composition root (server/app.ts): metrics, the
 * read-only ops database connection, the SIEM forwarder, and the store tap that feeds both.
 *
 *   const store = ops.tap(SqliteStore.open(dataDir, { create: true }));   // after Operations.open
 *   ops.registerFirst(app, …)   // before the route plugins: OpenAPI catalogue + metrics hook
 *   ops.registerRoutes(app, …)  // /metrics and the audit export
 *   await ops.close()           // after app.close()
 */
export class Operations {
  readonly metrics: ServerMetrics;
  readonly queries: OpsQueries;
  readonly forwarder: EventForwarder | null;

  private constructor(queries: OpsQueries, forwarder: EventForwarder | null, private readonly options: OperationsOptions) {
    this.metrics = new ServerMetrics(options.clock ?? systemClock);
    this.queries = queries;
    this.forwarder = forwarder;
  }

  static open(options: OperationsOptions): Operations {
    const queries = SqliteOpsQueries.open(options.dataDir);
    let forwarder: EventForwarder | null = null;
    try {
      if (options.forwarding) {
        forwarder = EventForwarder.create(options.forwarding, {
          hostnameOf: (deviceId) => queries.hostnameOf(deviceId),
          ...(options.clock ? { clock: options.clock } : {}),
          onError: (target, error) => options.onError?.(`forwarding to ${target}`, error),
        });
        forwarder.start();
      }
    } catch (error) {
      queries.close();
      throw error;
    }
    return new Operations(queries, forwarder, options);
  }

  /** `store` whose stored batches count in the metrics and go to the forwarder. */
  tap(store: Store): Store {
    const onError = (error: unknown) => this.options.onError?.('events listener', error);
    const listeners: EventsStoredListener[] = [(_deviceId, entries) => this.metrics.recordIngest(entries.length)];
    const forwarder = this.forwarder;
    if (forwarder) listeners.push((deviceId, entries) => forwarder.forward(deviceId, entries));
    return withEventTap(store, fanOut(listeners, onError), onError);
  }

  /**
   * Adds the metrics hook and queues the OpenAPI plugin. Call right after the app's root
   * configuration, BEFORE any route plugin (fastify loads plugins in registration order).
   */
  registerFirst(app: FastifyInstance, options: Pick<OperationsPluginOptions, 'version' | 'schemaModules'>): void {
    app.addHook('onResponse', metricsOnResponse(this.metrics));
    void app.register(openApiRoutes, { version: options.version, ...(options.schemaModules ? { schemaModules: options.schemaModules } : {}) });
  }

  /** Queues `/metrics` and the audit export; anywhere among the route plugins, before `ready()`. */
  registerRoutes(app: FastifyInstance, options: OperationsPluginOptions): void {
    const forwarder = this.forwarder;
    void app.register(metricsRoutes, {
      metrics: this.metrics,
      ...(options.authorizeMetrics ? { authorize: options.authorizeMetrics } : {}),
      ...(options.metricsScope ? { scope: options.metricsScope } : {}),
      stats: this.queries,
      onlineWindowMs: options.onlineWindowMs ?? DEFAULT_ONLINE_WINDOW_MS,
      forwarders: () => forwarder?.stats() ?? [],
      ...(this.options.clock ? { clock: this.options.clock } : {}),
    });
    void app.register(auditExportRoutes, {
      queries: this.queries,
      ...(options.authorizeExport ? { authorize: options.authorizeExport } : {}),
      ...(options.exportScope ? { scope: options.exportScope } : {}),
      ...(options.onExport ? { onExport: options.onExport } : {}),
    });
  }

  /** Flushes the forwarder (≤ 2 s) and closes the ops connection. Call after the app closed. */
  async close(): Promise<void> {
    await this.forwarder?.close();
    this.queries.close();
  }
}
