import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest, onResponseHookHandler } from 'fastify';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import { ApiHttpError } from '../http/api-error.js';
import type { Authorize } from './authorize.js';
import type { ForwarderStats } from './forwarder.js';
import type { OpsStats } from './ops-db.js';

/**
 * Prometheus metrics (text exposition format 0.0.4) without a client library: a small registry of
 * counters, gauges and histograms, the `onResponse` hook that counts every HTTP answer, and the
 * `GET /metrics` plugin that adds the database gauges (terminals online, tamper records, pending
 * commands…) at scrape time.
 *
 * Label values never carry terminal-supplied text (hostnames, user names, device strings): labels
 * are route templates, methods, status codes and the operator's own forwarding-target names. They
 * are escaped anyway (`\\`, `\"`, `\n`), so even a hostile value cannot break the format.
 */

/** What Prometheus scrapes. */
export const METRICS_PATH = '/metrics';
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Seconds; fits an API whose requests take milliseconds and whose slowest (CSV export) takes minutes. */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Most label sets one metric keeps; later new ones are dropped (and counted) so a bug cannot exhaust memory. */
export const MAX_SERIES_PER_METRIC = 2000;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export type Labels = Readonly<Record<string, string>>;
type MetricType = 'counter' | 'gauge' | 'histogram';

/** `\` → `\\`, `"` → `\"`, line feed → `\n` (the exposition format's label-value escaping). */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'));
}

/** `\` → `\\`, line feed → `\n` (HELP text escaping). */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === '\\' ? '\\\\' : '\\n'));
}

/** A sample value as the format spells it: `+Inf`, `-Inf`, `NaN`, or a JavaScript number. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function formatLabels(labels: Labels, extra?: readonly [string, string]): string {
  const parts = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

abstract class Metric<Series> {
  protected readonly series = new Map<string, { labels: Labels; value: Series }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: readonly string[],
    private readonly onDroppedSeries: () => void,
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`bad metric name ${name}`);
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith('__') || label === 'le') throw new Error(`bad label name ${label} on ${name}`);
    }
  }

  protected abstract fresh(): Series;

  /** The series for `labels` (exactly the declared label names), created on first use; null when the cap is reached. */
  protected seriesFor(labels: Labels): Series | null {
    const values = this.labelNames.map((name) => {
      const value = labels[name];
      if (value === undefined) throw new Error(`metric ${this.name}: missing label ${name}`);
      return value;
    });
    const key = JSON.stringify(values);
    const found = this.series.get(key);
    if (found) return found.value;
    if (this.series.size >= MAX_SERIES_PER_METRIC) {
      this.onDroppedSeries();
      return null;
    }
    const ordered: Record<string, string> = {};
    this.labelNames.forEach((name, index) => {
      ordered[name] = values[index] as string;
    });
    const created = { labels: ordered, value: this.fresh() };
    this.series.set(key, created);
    return created.value;
  }

  /** Removes every series (gauges refreshed from the database at each scrape). */
  reset(): void {
    this.series.clear();
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, value } of this.series.values()) lines.push(...this.samples(labels, value));
    return lines.join('\n');
  }

  protected abstract samples(labels: Labels, value: Series): string[];
}

export class Counter extends Metric<{ value: number }> {
  protected fresh(): { value: number } {
    return { value: 0 };
  }

  /** Adds `by` (≥ 0; a negative amount is a bug and throws). */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`counter ${this.name} can only increase`);
    const series = this.seriesFor(labels);
    if (series) series.value += by;
  }

  /** Sets the running total read from elsewhere (a count kept in the database). */
  setTotal(labels: Labels, total: number): void {
    const series = this.seriesFor(labels);
    if (series) series.value = total;
  }

  get(labels: Labels = {}): number {
    return this.series.get(JSON.stringify(this.labelNames.map((name) => labels[name])))?.value.value ?? 0;
  }

  protected samples(labels: Labels, series: { value: number }): string[] {
    return [`${this.name}${formatLabels(labels)} ${formatValue(series.value)}`];
  }
}

export class Gauge extends Metric<{ value: number }> {
  protected fresh(): { value: number } {
    return { value: 0 };
  }

  set(labels: Labels, value: number): void {
    const series = this.seriesFor(labels);
    if (series) series.value = value;
  }

  protected samples(labels: Labels, series: { value: number }): string[] {
    return [`${this.name}${formatLabels(labels)} ${formatValue(series.value)}`];
  }
}

interface HistogramSeries {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric<HistogramSeries> {
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    onDroppedSeries: () => void,
    readonly buckets: readonly number[],
  ) {
    super(name, help, 'histogram', labelNames, onDroppedSeries);
    for (let i = 1; i < buckets.length; i += 1) {
      if (!((buckets[i] as number) > (buckets[i - 1] as number))) throw new Error(`histogram ${name}: buckets must increase`);
    }
  }

  protected fresh(): HistogramSeries {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  observe(labels: Labels, value: number): void {
    const series = this.seriesFor(labels);
    if (!series || Number.isNaN(value)) return;
    // Stored per bucket, made cumulative when rendered.
    const index = this.buckets.findIndex((bound) => value <= bound);
    if (index >= 0) series.counts[index] = (series.counts[index] ?? 0) + 1;
    series.sum += value;
    series.count += 1;
  }

  protected samples(labels: Labels, series: HistogramSeries): string[] {
    const lines: string[] = [];
    let cumulative = 0;
    this.buckets.forEach((bound, index) => {
      cumulative += series.counts[index] ?? 0;
      lines.push(`${this.name}_bucket${formatLabels(labels, ['le', formatValue(bound)])} ${cumulative}`);
    });
    lines.push(`${this.name}_bucket${formatLabels(labels, ['le', '+Inf'])} ${series.count}`);
    lines.push(`${this.name}_sum${formatLabels(labels)} ${formatValue(series.sum)}`);
    lines.push(`${this.name}_count${formatLabels(labels)} ${series.count}`);
    return lines;
  }
}

/** A set of metrics rendered together, in registration order. */
export class MetricsRegistry {
  private readonly metrics: { readonly name: string; render(): string }[] = [];
  private readonly names = new Set<string>();
  private droppedSeriesCount = 0;

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, 'counter', labelNames, this.dropped));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, 'gauge', labelNames, this.dropped));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[] = DEFAULT_DURATION_BUCKETS): Histogram {
    return this.add(new Histogram(name, help, labelNames, this.dropped, buckets));
  }

  /** Label sets refused because a metric reached MAX_SERIES_PER_METRIC. */
  get droppedSeries(): number {
    return this.droppedSeriesCount;
  }

  /** The whole exposition, ending with a line feed. */
  render(): string {
    return `${this.metrics.map((metric) => metric.render()).join('\n')}\n`;
  }

  private readonly dropped = (): void => {
    this.droppedSeriesCount += 1;
  };

  private add<M extends { readonly name: string; render(): string }>(metric: M): M {
    if (this.names.has(metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.names.add(metric.name);
    this.metrics.push(metric);
    return metric;
  }
}

/** Events per second over a sliding window, from per-second buckets (no timer). */
export class RateWindow {
  private readonly buckets: number[];
  private readonly stamps: number[];

  constructor(readonly windowSeconds = 60) {
    this.buckets = new Array<number>(windowSeconds).fill(0);
    this.stamps = new Array<number>(windowSeconds).fill(-1);
  }

  add(count: number, nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    const slot = second % this.windowSeconds;
    if (this.stamps[slot] !== second) {
      this.stamps[slot] = second;
      this.buckets[slot] = 0;
    }
    this.buckets[slot] = (this.buckets[slot] ?? 0) + count;
  }

  /** Mean per second over the last `windowSeconds` whole seconds before now (the current second excluded: it is not over). */
  perSecond(nowMs: number): number {
    const now = Math.floor(nowMs / 1000);
    let total = 0;
    for (let slot = 0; slot < this.windowSeconds; slot += 1) {
      const stamp = this.stamps[slot] as number;
      if (stamp < now && stamp >= now - this.windowSeconds) total += this.buckets[slot] ?? 0;
    }
    return total / this.windowSeconds;
  }
}

const STANDARD_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

/**
 * The server's metrics. One instance per server process; `metricsOnResponse` feeds the HTTP
 * series, `recordIngest` the ingest series (called with every stored batch, see event-tap.ts),
 * and `metricsRoutes` adds the database gauges at each scrape.
 */
export class ServerMetrics {
  readonly registry = new MetricsRegistry();
  readonly httpRequests = this.registry.counter('sekimori_http_requests_total', 'HTTP requests answered, by route template, method and status code.', ['route', 'method', 'status']);
  readonly httpDuration = this.registry.histogram('sekimori_http_request_duration_seconds', 'Time from receiving a request to sending its answer, in seconds.', ['route', 'method']);
  readonly eventsIngested = this.registry.counter('sekimori_events_ingested_total', 'Journal events stored by this process (new entries of accepted batches, replays not counted).');
  readonly ingestRate = this.registry.gauge('sekimori_events_ingest_rate', 'Journal events stored per second, mean over the last 60 seconds.');
  readonly terminals = this.registry.gauge('sekimori_terminals', 'Enrolled terminals.');
  readonly terminalsOnline = this.registry.gauge('sekimori_terminals_online', 'Terminals whose last heartbeat is more recent than the online window (window_seconds label).', ['window_seconds']);
  readonly tamperRecords = this.registry.counter('sekimori_tamper_records_total', 'Chain breaks (gap, fork, bad prev, bad hash) recorded at upload, all terminals.');
  readonly terminalsWithTamper = this.registry.gauge('sekimori_terminals_with_tamper', 'Terminals with at least one tamper record.');
  readonly commandsPending = this.registry.gauge('sekimori_commands_pending', 'Remote commands queued or delivered and not yet acknowledged.');
  readonly forwardQueued = this.registry.gauge('sekimori_forward_queue_length', 'Events waiting to be forwarded to a SIEM target.', ['target']);
  readonly forwardSent = this.registry.counter('sekimori_forward_sent_total', 'Events forwarded to a SIEM target (written to the socket or file).', ['target']);
  readonly forwardDropped = this.registry.counter('sekimori_forward_dropped_total', 'Events dropped before forwarding because the target queue was full (oldest dropped first).', ['target']);
  readonly forwardErrors = this.registry.counter('sekimori_forward_errors_total', 'Send, write or connection errors of a SIEM target.', ['target']);
  readonly scrapeErrors = this.registry.counter('sekimori_metrics_scrape_errors_total', 'Scrapes whose database gauges could not be read (they keep their previous values).');
  readonly droppedSeries = this.registry.counter('sekimori_metrics_series_dropped_total', 'Label sets refused because a metric reached its series limit.');
  readonly startTime = this.registry.gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.');

  private readonly rate = new RateWindow(60);

  constructor(private readonly clock: Clock = systemClock) {
    this.startTime.set({}, Math.floor(clock().getTime() / 1000));
  }

  /** Counts one answered request. `route` is the route template (`/api/v1/admin/devices/:id/events`), never the raw URL. */
  observeResponse(route: string | undefined, method: string, statusCode: number, seconds: number): void {
    const routeLabel = route ?? 'unmatched';
    const methodLabel = STANDARD_METHODS.has(method) ? method : 'OTHER';
    const status = Number.isInteger(statusCode) && statusCode >= 100 && statusCode <= 599 ? String(statusCode) : 'other';
    this.httpRequests.inc({ route: routeLabel, method: methodLabel, status });
    this.httpDuration.observe({ route: routeLabel, method: methodLabel }, seconds);
  }

  /** `count` new journal events were stored. */
  recordIngest(count: number): void {
    if (count <= 0) return;
    this.eventsIngested.inc({}, count);
    this.rate.add(count, this.clock().getTime());
  }

  /** Refreshes the gauges that come from elsewhere, then renders everything. */
  render(sources: { stats?: OpsStats | null; onlineWindowSeconds: number; forwarders?: readonly ForwarderStats[] }): string {
    this.ingestRate.set({}, this.rate.perSecond(this.clock().getTime()));
    const { stats } = sources;
    if (stats) {
      this.terminals.set({}, stats.terminals);
      this.terminalsOnline.reset();
      this.terminalsOnline.set({ window_seconds: String(sources.onlineWindowSeconds) }, stats.terminalsOnline);
      this.tamperRecords.setTotal({}, stats.tamperRecords);
      this.terminalsWithTamper.set({}, stats.terminalsWithTamper);
      this.commandsPending.set({}, stats.commandsPending);
    }
    for (const target of sources.forwarders ?? []) {
      const labels = { target: target.name };
      this.forwardQueued.set(labels, target.queued);
      this.forwardSent.setTotal(labels, target.sent);
      this.forwardDropped.setTotal(labels, target.dropped);
      this.forwardErrors.setTotal(labels, target.errors);
    }
    this.droppedSeries.setTotal({}, this.registry.droppedSeries);
    return this.registry.render();
  }
}

/**
 * The `onResponse` hook that counts every answer (404s and errors included). Add it at the root
 * of the app before the route plugins: `app.addHook('onResponse', metricsOnResponse(metrics))`.
 */
export function metricsOnResponse(metrics: ServerMetrics): onResponseHookHandler {
  return (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    metrics.observeResponse(request.routeOptions.url, request.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  };
}

export interface MetricsRoutesOptions {
  readonly metrics: ServerMetrics;
  /** Who may scrape. Default wiring: the admin bearer token (see authorize.ts); false → 401. */
  readonly authorize?: Authorize;
  /** Called with the plugin's scope before its route is added (another authentication hook). At least one of `authorize` and `scope` is required. */
  readonly scope?: (app: FastifyInstance) => void;
  /** Database gauges, read at each scrape (ops-db.ts). Absent: only the in-process metrics. */
  readonly stats?: { stats(onlineSince: string): OpsStats };
  /** A terminal counts as online when its last heartbeat is younger than this, in ms. Default 3 × 60 s (3 heartbeat intervals of the built-in profiles). */
  readonly onlineWindowMs?: number;
  /** SIEM forwarders whose counters are exposed. */
  readonly forwarders?: () => readonly ForwarderStats[];
  readonly clock?: Clock;
  /** Default `/metrics`. */
  readonly path?: string;
}

/** 3 heartbeat intervals of the built-in profiles (`report.heartbeatSeconds: 60`). */
export const DEFAULT_ONLINE_WINDOW_MS = 3 * 60_000;

/**
 * `GET /metrics`: Prometheus text format. The database gauges are read at scrape time (a handful
 * of COUNTs over indexes, under a millisecond at 100,000 terminals); a failing read is counted in
 * `sekimori_metrics_scrape_errors_total` and the previous values are kept, so a busy database
 * never turns a scrape into a 500.
 */
export const metricsRoutes: FastifyPluginCallback<MetricsRoutesOptions> = (app, options, done) => {
  const clock = options.clock ?? systemClock;
  const windowMs = options.onlineWindowMs ?? DEFAULT_ONLINE_WINDOW_MS;
  if (!(windowMs > 0)) {
    done(new Error('metricsRoutes: onlineWindowMs must be positive'));
    return;
  }

  const { authorize, scope } = options;
  if (authorize === undefined && scope === undefined) {
    done(new Error('metricsRoutes: no authorization (authorize or scope; allowEveryone to say so)'));
    return;
  }
  scope?.(app);
  if (authorize !== undefined) {
    app.addHook('onRequest', async (request) => {
      if (!(await authorize(request))) throw new ApiHttpError('unauthorized', 'metrics need a valid bearer token');
    });
  }

  // `access` for an admin scope's role check (read-only data); `openapi` for the document.
  const config = { access: 'read' as const, openapi: { summary: 'Prometheus metrics (text exposition format 0.0.4)', produces: 'text/plain' } };
  app.get(options.path ?? METRICS_PATH, { config }, (request, reply) => {
    let stats: OpsStats | null = null;
    if (options.stats) {
      try {
        stats = options.stats.stats(new Date(clock().getTime() - windowMs).toISOString());
      } catch (error) {
        options.metrics.scrapeErrors.inc();
        request.log.warn({ err: error }, 'metrics: database gauges unavailable');
      }
    }
    const body = options.metrics.render({ stats, onlineWindowSeconds: windowMs / 1000, forwarders: options.forwarders?.() ?? [] });
    void reply.header('content-type', METRICS_CONTENT_TYPE).send(body);
  });
  done();
};
