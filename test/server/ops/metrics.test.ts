import { afterEach, describe, expect, it } from 'vitest';
import { ApiPaths } from '../../../shared/api.js';
import { GENESIS_HASH } from '../../../shared/journal.js';
import { MAX_SERIES_PER_METRIC, MetricsRegistry, RateWindow, ServerMetrics, escapeLabelValue } from '../../../server/ops/metrics.js';
import { agentStatus, journal, movableClock, postJson } from '../helpers.js';
import { bootOpsServer, enrol, type OpsServer } from './ops-app.js';

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/**
 * A strict reader of the text exposition format 0.0.4: every line is a HELP, a TYPE or a sample;
 * label values may only contain the escapes \\ \" \n; every sample belongs to a family whose TYPE
 * came first; HELP and TYPE appear once per family. Throws on anything else.
 */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  expect(text.endsWith('\n')).toBe(true);
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  const familyOf = (name: string) => {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && types.get(base) === 'histogram') return base;
    }
    return name;
  };
  for (const line of text.slice(0, -1).split('\n')) {
    let match = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) ((?:[^\\\n]|\\\\|\\n)*)$/.exec(line);
    if (match) {
      if (helps.has(match[1]!)) throw new Error(`HELP twice for ${match[1]}`);
      helps.add(match[1]!);
      continue;
    }
    match = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (match) {
      if (types.has(match[1]!)) throw new Error(`TYPE twice for ${match[1]}`);
      types.set(match[1]!, match[2]!);
      continue;
    }
    match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*",?)*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${JSON.stringify(line)}`);
    const name = match[1]!;
    if (!types.has(familyOf(name))) throw new Error(`sample ${name} before its TYPE`);
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"/g)) {
      labels[label[1]!] = label[2]!.replace(/\\(\\|"|n)/g, (_all, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = match[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw);
    if (raw !== 'NaN' && Number.isNaN(value)) throw new Error(`bad value ${raw}`);
    samples.push({ name, labels, value });
  }
  return { samples, types };
}

function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))?.value;
}

describe('metrics exposition', () => {
  it('escapes backslash, double quote and line feed in label values', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });

  it('keeps the format intact whatever a label value holds', () => {
    const registry = new MetricsRegistry();
    const counter = registry.counter('test_total', 'A test.\nWith a line feed and a \\ in its help.', ['target']);
    const hostile = 'x"} 1\n# TYPE evil counter\nevil_total{a="b"} 999\\';
    counter.inc({ target: hostile }, 2);
    counter.inc({ target: '総務課' });
    const { samples, types } = parseExposition(registry.render());
    expect([...types.keys()]).toEqual(['test_total']);
    expect(samples).toEqual([
      { name: 'test_total', labels: { target: hostile }, value: 2 },
      { name: 'test_total', labels: { target: '総務課' }, value: 1 },
    ]);
  });

  it('renders histograms with cumulative buckets, +Inf equal to the count, sum and count', () => {
    const registry = new MetricsRegistry();
    const histogram = registry.histogram('test_seconds', 'Durations.', ['route'], [0.1, 1]);
    for (const value of [0.05, 0.5, 0.5, 3]) histogram.observe({ route: '/a' }, value);
    const { samples } = parseExposition(registry.render());
    expect(samples.map((sample) => [sample.name, sample.labels.le ?? '', sample.value])).toEqual([
      ['test_seconds_bucket', '0.1', 1],
      ['test_seconds_bucket', '1', 3],
      ['test_seconds_bucket', '+Inf', 4],
      ['test_seconds_sum', '', 4.05],
      ['test_seconds_count', '', 4],
    ]);
  });

  it('refuses bad names, a decreasing counter, and label sets beyond the cap', () => {
    const registry = new MetricsRegistry();
    expect(() => registry.counter('bad-name', 'x')).toThrow();
    expect(() => registry.counter('ok_total', 'x', ['le'])).toThrow();
    const counter = registry.counter('capped_total', 'x', ['n']);
    expect(() => counter.inc({ n: 'a' }, -1)).toThrow();
    for (let i = 0; i < MAX_SERIES_PER_METRIC + 5; i += 1) counter.inc({ n: String(i) });
    expect(registry.droppedSeries).toBe(5);
    expect(() => registry.counter('capped_total', 'again')).toThrow(/twice/);
  });

  it('computes the ingest rate over whole past seconds only', () => {
    const window = new RateWindow(10);
    const t0 = 1_000_000_000;
    window.add(50, t0);
    window.add(50, t0 + 500);
    window.add(30, t0 + 1000);
    expect(window.perSecond(t0 + 999)).toBe(0);
    expect(window.perSecond(t0 + 2000)).toBe(13);
    expect(window.perSecond(t0 + 12_500)).toBe(0);
  });

  it('counts stored events in the ingest counter', () => {
    const metrics = new ServerMetrics(() => new Date(0));
    metrics.recordIngest(7);
    metrics.recordIngest(0);
    expect(metrics.eventsIngested.get()).toBe(7);
  });
});

describe('GET /metrics on the real app', () => {
  let ops: OpsServer | undefined;
  afterEach(async () => {
    await ops?.cleanup();
    ops = undefined;
  });

  const scrape = async (server: OpsServer) => {
    const response = await server.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${server.adminToken}` } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    return { text: response.body, ...parseExposition(response.body) };
  };

  it('needs the admin bearer token by default', async () => {
    ops = await bootOpsServer();
    const none = await ops.app.inject({ method: 'GET', url: '/metrics' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    const wrong = await ops.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer not-the-token-not-the-token-not-the-tok' } });
    expect(wrong.statusCode).toBe(401);
  });

  it('counts requests by route template, method and status, never by raw URL', async () => {
    ops = await bootOpsServer();
    for (let i = 0; i < 3; i += 1) expect((await ops.app.inject({ method: 'GET', url: ApiPaths.health })).statusCode).toBe(200);
    await ops.app.inject({ method: 'GET', url: '/no/such/route"}\n' });
    const unknownDevice = `${ApiPaths.adminDevices}/dev_${'0'.repeat(32)}/events`;
    await ops.app.inject({ method: 'GET', url: unknownDevice, headers: { authorization: `Bearer ${ops.adminToken}` } });
    const { samples, text } = await scrape(ops);
    expect(valueOf(samples, 'sekimori_http_requests_total', { route: ApiPaths.health, method: 'GET', status: '200' })).toBe(3);
    expect(valueOf(samples, 'sekimori_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBe(1);
    expect(valueOf(samples, 'sekimori_http_requests_total', { route: `${ApiPaths.adminDevices}/:id/events`, method: 'GET', status: '404' })).toBe(1);
    expect(valueOf(samples, 'sekimori_http_request_duration_seconds_count', { route: ApiPaths.health, method: 'GET' })).toBe(3);
    expect(text).not.toContain('no/such/route');
    expect(text).not.toContain(`dev_${'0'.repeat(32)}`);
  });

  it('reports terminals online within the window, tamper records and pending commands, never a hostname', async () => {
    const clock = movableClock();
    ops = await bootOpsServer({ clock, onlineWindowMs: 3 * 60_000 });
    const hostile = 'evil"} 1\nsekimori_terminals 999\n<script>';
    const a = await enrol(ops, { hostname: hostile }, clock());
    await enrol(ops, { hostname: '総務課-PC-002' }, clock());
    expect((await postJson(ops.app, ApiPaths.heartbeat, { status: agentStatus() }, a.credential)).statusCode).toBe(200);
    const chain = journal(3);
    expect((await postJson(ops.app, ApiPaths.events, { entries: chain }, a.credential)).statusCode).toBe(200);
    // A gap: recorded as a tamper record.
    expect((await postJson(ops.app, ApiPaths.events, { entries: journal(1, { seq: 9, hash: GENESIS_HASH }) }, a.credential)).statusCode).toBe(409);
    const queued = await ops.app.inject({
      method: 'POST',
      url: `${ApiPaths.adminDevices}/${a.deviceId}/commands`,
      headers: { authorization: `Bearer ${ops.adminToken}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ type: 'lock' }),
    });
    expect(queued.statusCode).toBe(201);

    clock.advanceHours(2 / 60);
    const first = await scrape(ops);
    let { samples } = first;
    const { text } = first;
    expect(valueOf(samples, 'sekimori_terminals')).toBe(2);
    expect(valueOf(samples, 'sekimori_terminals_online', { window_seconds: '180' })).toBe(1);
    expect(valueOf(samples, 'sekimori_tamper_records_total')).toBe(1);
    expect(valueOf(samples, 'sekimori_terminals_with_tamper')).toBe(1);
    expect(valueOf(samples, 'sekimori_commands_pending')).toBe(1);
    expect(text).not.toContain('evil');
    expect(text).not.toContain('総務課');

    clock.advanceHours(2 / 60);
    ({ samples } = await scrape(ops));
    expect(valueOf(samples, 'sekimori_terminals_online', { window_seconds: '180' })).toBe(0);
  });

  it('takes the online window as a parameter', async () => {
    const clock = movableClock();
    ops = await bootOpsServer({ clock, onlineWindowMs: 60 * 60_000 });
    const a = await enrol(ops, {}, clock());
    await postJson(ops.app, ApiPaths.heartbeat, { status: agentStatus() }, a.credential);
    clock.advanceHours(0.5);
    const { samples } = await scrape(ops);
    expect(valueOf(samples, 'sekimori_terminals_online', { window_seconds: '3600' })).toBe(1);
  });
});
