import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminDeviceDetailSchema, AdminPaths, ApiPaths } from '../../shared/api.js';
import { EMPTY_HEAD, chainEntry, type JournalEntry } from '../../shared/journal.js';
import { SELFCHECK_DEFINITIONS, SELFCHECK_IDS, summarize, type SelfcheckCheck, type SelfcheckId, type SelfcheckRun } from '../../shared/selfcheck.js';
import { buildSelfcheckReport } from '../../shared/selfcheck-report.js';
import { sha256Hex } from '../../server/crypto.js';
import { AdminSelfcheckRunsResponseSchema, DepartmentResponseSchema, contentDisposition, reportSecurityPolicy } from '../../server/routes/admin-selfcheck.js';
import { compactForReport, fiscalYearOf } from '../../server/selfcheck-runs.js';
import { DATABASE_FILE } from '../../server/sqlite-store.js';
import { asSession, readySession, steppingClock, type Session } from './admin-helpers.js';
import { adminGet, adminPut, agentStatus, bootServer, enrolDevice, postJson, type TestServer } from './helpers.js';

type Results = Partial<Record<SelfcheckId, 'pass' | 'fail' | 'unknown'>>;

/** A run as the agent journals it (`selfcheck.result` data). */
function run(finishedAt: string, results: Results = {}, options: { trigger?: SelfcheckRun['trigger']; commandId?: string; evidence?: Record<string, unknown> } = {}): SelfcheckRun {
  const checks: SelfcheckCheck[] = SELFCHECK_IDS.map((id) => ({
    id,
    result: results[id] ?? 'pass',
    clause: SELFCHECK_DEFINITIONS[id].clause,
    evidence: (options.evidence ?? { checked: id, at: finishedAt }) as SelfcheckCheck['evidence'],
  }));
  return {
    runId: `${Date.parse(finishedAt)}-1`,
    trigger: options.trigger ?? 'daily',
    ...(options.commandId === undefined ? {} : { commandId: options.commandId }),
    startedAt: finishedAt,
    finishedAt,
    tier: 'mynumber',
    policyVersion: 4,
    policyOrigin: 'signed',
    agentVersion: '0.1.0',
    platform: 'linux',
    summary: summarize(checks),
    checks,
  };
}

/** Chained journal entries of the given types and data, continuing `from`. */
function entries(items: readonly { type: string; data: Record<string, unknown> }[], from: { seq: number; hash: string } = EMPTY_HEAD): JournalEntry[] {
  const out: JournalEntry[] = [];
  let head = from;
  for (const item of items) {
    const { entry } = chainEntry(head, { time: new Date(Date.UTC(2026, 10, 25, 0, 0, head.seq + 1)).toISOString(), tz: '+09:00', type: item.type, data: item.data }, sha256Hex);
    out.push(entry);
    head = entry;
  }
  return out;
}

const selfcheck = (data: unknown) => ({ type: 'selfcheck.result', data: data as Record<string, unknown> });

let server: TestServer;
let clock: ReturnType<typeof steppingClock>;
let admin: Session;
let auditor: Session;

beforeAll(async () => {
  clock = steppingClock();
  server = await bootServer({ clock });
  admin = await readySession(server, 'tanaka', 'admin', clock, clock.advance);
  auditor = await readySession(server, 'kansa', 'auditor', clock, clock.advance);
});

afterAll(async () => {
  await server.cleanup();
});

async function device(hostname: string, department: string | null): Promise<{ deviceId: string; credential: string }> {
  const { deviceId, credential } = await enrolDevice(server, { hostname });
  if (department !== null) expect((await adminPut(server, `${ApiPaths.adminDevices}/${deviceId}/department`, { department })).statusCode).toBe(200);
  return { deviceId, credential };
}

async function upload(credential: string, batch: JournalEntry[]) {
  return postJson(server.app, ApiPaths.events, { entries: batch }, credential);
}

const latestRuns = async (deviceId: string, limit = 10) => AdminSelfcheckRunsResponseSchema.parse((await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}/selfcheck?limit=${limit}`)).json());

describe('self-inspection runs arriving with the journal', () => {
  it('stores every valid selfcheck.result with its event, keeps an invalid one as an event only, and shows the latest run', async () => {
    const { deviceId, credential } = await device('soumu-pc-101', '総務課');
    const valid = run('2026-11-24T23:00:00.000Z', { mfa: 'fail', 'time-sync': 'unknown' });
    const tampered = { ...run('2026-11-24T23:30:00.000Z', { mfa: 'fail' }), summary: { pass: 12, fail: 0, unknown: 0, overall: 'pass' } };
    const notARun = { hello: 'world' };
    const onCommand = run('2026-11-25T00:00:00+09:00', {}, { trigger: 'command', commandId: 'cmd_0123456789abcdef01234567' });
    const batch = entries([{ type: 'device.attached', data: { vendorId: '0930' } }, selfcheck(valid), selfcheck(tampered), selfcheck(notARun), selfcheck(onCommand)]);
    const response = await upload(credential, batch);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ ackSeq: 5, accepted: 5 });

    // Every entry is an event (the chain is whole), only the valid runs are runs.
    expect(await server.store.countEvents(deviceId)).toBe(5);
    const all = await latestRuns(deviceId);
    expect(all.department).toBe('総務課');
    expect(all.runs.map((item) => [item.seq, item.trigger, item.commandId, item.summary.overall])).toEqual([
      [5, 'command', 'cmd_0123456789abcdef01234567', 'pass'],
      [2, 'daily', null, 'fail'],
    ]);
    const older = all.runs[1]!;
    expect(older.checks.find((check) => check.id === 'mfa')).toMatchObject({
      result: 'fail',
      clause: '6(3)①',
      label: SELFCHECK_DEFINITIONS.mfa.label,
      clauseText: { ja: expect.stringContaining('マイナンバー利用事務系') },
      evidence: { checked: 'mfa' },
    });
    expect(older.receivedAt).toBe(clock().toISOString());

    // Default: the latest run only.
    const latest = AdminSelfcheckRunsResponseSchema.parse((await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}/selfcheck`)).json());
    expect(latest.runs.map((item) => item.seq)).toEqual([5]);

    // The stored row: run id, trigger, command, finishedAt normalised to UTC, overall.
    const db = new Database(path.join(server.dataDir, DATABASE_FILE), { readonly: true });
    try {
      const rows = db.prepare('SELECT seq, run_id, trigger, command_id, finished_at, overall FROM selfcheck_runs WHERE device_id = ? ORDER BY seq').all(deviceId);
      expect(rows).toEqual([
        { seq: 2, run_id: valid.runId, trigger: 'daily', command_id: null, finished_at: '2026-11-24T23:00:00.000Z', overall: 'fail' },
        { seq: 5, run_id: onCommand.runId, trigger: 'command', command_id: 'cmd_0123456789abcdef01234567', finished_at: '2026-11-24T15:00:00.000Z', overall: 'pass' },
      ]);
    } finally {
      db.close();
    }

    // A replay stores nothing twice.
    expect((await upload(credential, batch)).json()).toMatchObject({ accepted: 0 });
    expect((await latestRuns(deviceId)).runs).toHaveLength(2);
  });

  it('stores the runs before a chain break with their events, and none after it', async () => {
    const { deviceId, credential } = await device('soumu-pc-102', null);
    const batch = entries([selfcheck(run('2026-11-24T01:00:00Z')), selfcheck(run('2026-11-24T02:00:00Z'))]);
    const broken = { ...batch[1]!, hash: 'f'.repeat(64) };
    const response = await upload(credential, [batch[0]!, broken]);
    expect(response.statusCode).toBe(409);
    expect((await latestRuns(deviceId)).runs.map((item) => item.seq)).toEqual([1]);
  });

  it('answers 404 for an unknown terminal and 400 for a bad limit', async () => {
    expect((await adminGet(server, `${ApiPaths.adminDevices}/dev_${'0'.repeat(32)}/selfcheck`)).statusCode).toBe(404);
    const { deviceId } = await device('soumu-pc-103', null);
    expect((await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}/selfcheck?limit=0`)).statusCode).toBe(400);
    expect((await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}/selfcheck?limit=51`)).statusCode).toBe(400);
    expect((await latestRuns(deviceId)).runs).toEqual([]);
  });
});

describe('departments (所属)', () => {
  it('sets, shows, changes and clears a terminal’s department, each change in the admin trail', async () => {
    const { deviceId } = await enrolDevice(server, { hostname: 'zei-pc-201' });
    const url = `${ApiPaths.adminDevices}/${deviceId}/department`;
    const set = await adminPut(server, url, { department: '  税務課  ' });
    expect(set.statusCode).toBe(200);
    expect(DepartmentResponseSchema.parse(set.json())).toEqual({ deviceId, department: '税務課', previous: null });
    expect(AdminDeviceDetailSchema.parse((await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}`)).json()).department).toBe('税務課');
    expect((await adminPut(server, url, { department: '市民課' })).json()).toMatchObject({ department: '市民課', previous: '税務課' });
    expect((await adminPut(server, url, { department: null })).json()).toMatchObject({ department: null, previous: '市民課' });
    expect(AdminDeviceDetailSchema.parse((await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}`)).json()).department).toBeNull();
    const trail = (await adminGet(server, `${ApiPaths.adminActions}?limit=10`)).json().actions as { action: string; deviceId: string; detail: unknown }[];
    expect(trail.filter((action) => action.action === 'device.department' && action.deviceId === deviceId).map((action) => action.detail)).toEqual([
      { department: null, previous: '市民課' },
      { department: '市民課', previous: '税務課' },
      { department: '税務課', previous: null },
    ]);
  });

  it('refuses an empty, over-long, control-character or extra-field department, and an unknown terminal', async () => {
    const { deviceId } = await enrolDevice(server, { hostname: 'zei-pc-202' });
    const url = `${ApiPaths.adminDevices}/${deviceId}/department`;
    for (const body of [{ department: '' }, { department: '   ' }, { department: 'x'.repeat(101) }, { department: '税務\n課' }, { department: '税務課', extra: 1 }, {}, { department: 5 }]) {
      const response = await adminPut(server, url, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().error.code).toBe('bad-request');
    }
    expect((await adminPut(server, `${ApiPaths.adminDevices}/dev_${'0'.repeat(32)}/department`, { department: '税務課' })).statusCode).toBe(404);
    expect(AdminDeviceDetailSchema.parse((await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}`)).json()).department).toBeNull();
  });
});

describe('the self-inspection report of a fiscal year', () => {
  const HOSTILE = '<script>alert("x")</script>';
  const FORMULA = '=HYPERLINK("http://evil.example","x")';
  let zeiA: string;
  let zeiHostile: string;
  let zeiFormula: string;
  let zeiNone: string;
  let fuku: string;

  beforeAll(async () => {
    const a = await device('zei-pc-001', '税務課');
    const hostile = await device(HOSTILE, '税務課');
    const formula = await device(FORMULA, '税務課');
    const none = await device('zei-pc-009', '税務課');
    const other = await device('fuku-pc-001', '福祉課');
    [zeiA, zeiHostile, zeiFormula, zeiNone, fuku] = [a.deviceId, hostile.deviceId, formula.deviceId, none.deviceId, other.deviceId];
    // zei-pc-001: an old failure of disk encryption in FY2026, fixed later; runs outside the year.
    expect(
      (
        await upload(
          a.credential,
          entries([
            selfcheck(run('2026-03-31T14:59:59Z', { mfa: 'fail' })), // FY2025 (2026-03-31 23:59:59 JST)
            selfcheck(run('2026-05-01T00:00:00Z', { 'disk-encryption': 'fail' })),
            selfcheck(run('2026-11-20T00:00:00Z')),
            selfcheck(run('2027-03-31T15:00:00Z', { mfa: 'fail' })), // FY2027
          ]),
        )
      ).statusCode,
    ).toBe(200);
    expect((await upload(hostile.credential, entries([selfcheck(run('2026-06-01T00:00:00Z', { 'idle-lock': 'fail' }, { evidence: { note: '<img src=x onerror=alert(1)>' } }))]))).statusCode).toBe(200);
    expect((await upload(formula.credential, entries([selfcheck(run('2026-07-01T00:00:00Z', { 'os-updates': 'unknown' }))]))).statusCode).toBe(200);
    expect((await upload(other.credential, entries([selfcheck(run('2026-07-01T00:00:00Z', { mfa: 'fail' }))]))).statusCode).toBe(200);
  });

  const report = (query: string, session: Session | null = null) =>
    session === null ? adminGet(server, `${AdminPaths.selfcheckReport}?${query}`) : asSession(server, session, 'GET', `${AdminPaths.selfcheckReport}?${query}`);

  it('serves CSV for Excel: one department, failing items first, the year’s runs only, formulas neutralised', async () => {
    const response = await report(`fiscalYear=2026&department=${encodeURIComponent('税務課')}&format=csv`);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(response.headers['content-disposition']).toBe(contentDisposition('attachment', 2026, '税務課', 'csv'));
    expect(response.headers['content-disposition']).toMatch(/^attachment; filename="selfcheck-report-FY2026\.csv"; filename\*=UTF-8''%E8%87%AA/);
    const csv = response.body;
    expect(csv.startsWith('\ufeff')).toBe(true);
    const lines = csv.slice(1).split('\r\n').filter((line) => line !== '');
    expect(lines[0]).toMatch(/^年度,所属,端末名,端末ID/);
    const rows = lines.slice(1);
    // 4 terminals of 税務課: three inspected (12 rows each), one never (1 row).
    expect(rows).toHaveLength(3 * 12 + 1);
    expect(csv).not.toContain('福祉課');
    expect(csv).not.toContain(fuku);
    // Failing first: the hostile host's idle lock; then the never-inspected terminal; then unknown.
    expect(rows[0]).toContain(zeiHostile);
    expect(rows[0]).toContain('idle-lock');
    expect(rows[0]).toContain('不適合');
    expect(rows[1]).toContain(zeiNone);
    expect(rows[1]).toContain('未実施');
    expect(rows[2]).toContain(zeiFormula);
    expect(rows[2]).toContain('判定不能');
    // zei-pc-001: disk encryption passes in its latest run of the year, one failure counted; FY2025/FY2027 runs ignored.
    const disk = rows.find((row) => row.includes(zeiA) && row.includes('disk-encryption'))!;
    expect(disk).toContain('適合');
    expect(disk).toContain(',2,1,');
    const mfa = rows.find((row) => row.includes(zeiA) && row.includes(',mfa,'))!;
    expect(mfa).toContain(',2,0,');
    // The formula host name is quoted and prefixed so a spreadsheet shows it as text.
    expect(csv).toContain(`"'=HYPERLINK(""http://evil.example"",""x"")"`);
    expect(csv).not.toMatch(/(^|,)=HYPERLINK/m);
  });

  it('serves printable HTML whose CSP allows exactly its own inline style, with every terminal text escaped', async () => {
    const response = await report(`fiscalYear=2026&department=${encodeURIComponent('税務課')}&format=html`);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.headers['content-disposition']).toMatch(/^inline; filename="selfcheck-report-FY2026\.html"/);
    const html = response.body;
    // No script, no style attribute, no event handler: nothing the CSP would have to allow but the <style>.
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<[a-z][^>]*\sstyle=/i);
    expect(html).not.toMatch(/<[a-z][^>]*\son[a-z]+=/i);
    expect(html.match(/<style\b/g)).toHaveLength(1);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).not.toContain('<img');
    const css = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const hash = crypto.createHash('sha256').update(css, 'utf8').digest('base64');
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toBe(`default-src 'none'; style-src 'sha256-${hash}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'`);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('script-src');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    // Failing rows before the rest.
    const classes = [...html.matchAll(/<tr class="([a-z-]+)">/g)].map((match) => match[1]);
    expect(classes[0]).toBe('fail');
    expect(classes.lastIndexOf('fail')).toBeLessThan(classes.indexOf('pass'));
    expect(classes.lastIndexOf('not-inspected')).toBeLessThan(classes.indexOf('unknown'));
    expect(html).toContain('令和8年度（2026年度）');
  });

  it('keeps the dashboard’s CSP on every other answer', async () => {
    const csv = await report('fiscalYear=2026&format=csv');
    expect(csv.headers['content-security-policy']).toContain("style-src 'self'");
    const json = await adminGet(server, `${ApiPaths.adminDevices}/${zeiA}/selfcheck`);
    expect(json.headers['content-security-policy']).toContain("style-src 'self'");
    expect(reportSecurityPolicy('<html><style>a{}</style><style>b{}</style></html>')).toBeNull();
  });

  it('covers every terminal without a department filter, naming unassigned terminals', async () => {
    const csv = (await report('fiscalYear=2026&format=csv')).body;
    expect(csv).toContain('福祉課');
    expect(csv).toContain('税務課');
    expect(csv).toContain('（所属未設定）');
  });

  it('defaults to the current fiscal year (JST) and to CSV', async () => {
    const response = await report('');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(response.headers['content-disposition']).toContain(`FY${fiscalYearOf(clock())}`);
  });

  it('answers an unknown department with an empty report and refuses bad queries with 400', async () => {
    const empty = await report(`fiscalYear=2026&department=${encodeURIComponent('存在しない課')}&format=csv`);
    expect(empty.statusCode).toBe(200);
    expect(empty.body.slice(1).split('\r\n').filter((line) => line !== '')).toHaveLength(1);
    for (const query of ['fiscalYear=abc', 'fiscalYear=1999', 'format=pdf', 'department=', 'other=1', `department=${'x'.repeat(101)}`]) {
      expect((await report(query)).statusCode, query).toBe(400);
    }
  });

  it('records each report in the admin trail', async () => {
    await report('fiscalYear=2026&format=html&department=%E7%A6%8F%E7%A5%89%E8%AA%B2');
    const [last] = (await adminGet(server, `${ApiPaths.adminActions}?limit=1`)).json().actions as { action: string; actor: string; detail: Record<string, unknown> }[];
    expect(last).toMatchObject({ action: 'report.selfcheck', actor: 'api-token', detail: { fiscalYear: 2026, department: '福祉課', format: 'html', terminals: 1, failingItems: 1 } });
  });

  it('lets an auditor read reports and runs but not set departments or queue a self-inspection', async () => {
    expect((await report('fiscalYear=2026&format=html', auditor)).statusCode).toBe(200);
    expect((await asSession(server, auditor, 'GET', `${ApiPaths.adminDevices}/${zeiA}/selfcheck`)).statusCode).toBe(200);
    const put = await asSession(server, auditor, 'PUT', `${ApiPaths.adminDevices}/${zeiA}/department`, { department: '監査室' });
    expect(put.statusCode).toBe(403);
    expect(put.json().error.code).toBe('forbidden');
    expect((await asSession(server, auditor, 'POST', `${ApiPaths.adminDevices}/${zeiA}/commands`, { type: 'selfcheck' })).statusCode).toBe(403);
    expect(AdminDeviceDetailSchema.parse((await adminGet(server, `${ApiPaths.adminDevices}/${zeiA}`)).json()).department).toBe('税務課');
    // An admin session may (with its CSRF token).
    const ok = await asSession(server, admin, 'PUT', `${ApiPaths.adminDevices}/${zeiNone}/department`, { department: '税務課' });
    expect(ok.statusCode).toBe(200);
  });
});

describe('the selfcheck command', () => {
  it('lets an admin queue a self-inspection, delivered with the next heartbeat; other params are refused', async () => {
    const { deviceId, credential } = await enrolDevice(server, { hostname: 'soumu-pc-301' });
    const url = `${ApiPaths.adminDevices}/${deviceId}/commands`;
    const queued = await asSession(server, admin, 'POST', url, { type: 'selfcheck' });
    expect(queued.statusCode).toBe(201);
    const { id } = queued.json<{ id: string }>();
    expect((await asSession(server, admin, 'POST', url, { type: 'selfcheck', params: {} })).statusCode).toBe(201);
    const bad = await asSession(server, admin, 'POST', url, { type: 'selfcheck', params: { now: true } });
    expect(bad.statusCode).toBe(400);
    const heartbeat = await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus() }, credential);
    expect(heartbeat.statusCode).toBe(200);
    expect(heartbeat.json<{ commands: { id: string; type: string }[] }>().commands[0]).toMatchObject({ id, type: 'selfcheck' });
  });
});

describe('compactForReport', () => {
  it('gives the same report as the full runs, with evidence only where the report shows it', () => {
    const runs = [
      run('2026-06-01T00:00:00Z', { mfa: 'fail' }, { evidence: { n: 1 } }),
      run('2026-05-01T00:00:00Z', { mfa: 'fail' }, { evidence: { n: 0 } }),
      run('2026-06-01T00:00:00Z', {}, { evidence: { n: 2 } }), // same finishedAt: later in the given order wins
      { broken: true },
    ];
    const compact = compactForReport(runs);
    const input = (terminalRuns: readonly unknown[]) => ({
      fiscalYear: 2026,
      department: null,
      generatedAt: '2027-04-01T00:00:00Z',
      terminals: [{ deviceId: `dev_${'a'.repeat(32)}`, hostname: 'pc', department: '課', tier: 'mynumber' as const, runs: terminalRuns }],
    });
    const full = buildSelfcheckReport(input(runs));
    const small = buildSelfcheckReport(input(compact));
    expect(small.csv).toBe(full.csv);
    expect(small.html).toBe(full.html);
    expect(small.summary.invalidRuns).toBe(1);
    expect((compact[2] as SelfcheckRun).checks.every((check) => JSON.stringify(check.evidence) === '{"n":2}')).toBe(true);
    expect((compact[0] as SelfcheckRun).checks.every((check) => JSON.stringify(check.evidence) === '{}')).toBe(true);
    expect(compact[3]).toEqual({ broken: true });
  });

  it('finds the fiscal year of an instant in Japan time', () => {
    expect(fiscalYearOf(new Date('2026-03-31T14:59:59.999Z'))).toBe(2025);
    expect(fiscalYearOf(new Date('2026-03-31T15:00:00.000Z'))).toBe(2026);
    expect(fiscalYearOf(new Date('2027-01-15T00:00:00.000Z'))).toBe(2026);
  });
});

describe('the report’s size guard', () => {
  it('refuses a report over the run limit with 400 on department, and serves a department within it', async () => {
    const small = await bootServer({ clock: steppingClock(), maxReportRuns: 2 });
    try {
      const send = async (hostname: string, department: string, finished: string[]) => {
        const { deviceId, credential } = await enrolDevice(small, { hostname });
        expect((await adminPut(small, `${ApiPaths.adminDevices}/${deviceId}/department`, { department })).statusCode).toBe(200);
        expect((await postJson(small.app, ApiPaths.events, { entries: entries(finished.map((at) => selfcheck(run(at)))) }, credential)).statusCode).toBe(200);
      };
      await send('a-pc', '会計課', ['2026-05-01T00:00:00Z', '2026-06-01T00:00:00Z']);
      await send('b-pc', '議会事務局', ['2026-05-01T00:00:00Z', '2027-05-01T00:00:00Z']);
      const all = await adminGet(small, `${AdminPaths.selfcheckReport}?fiscalYear=2026`);
      expect(all.statusCode).toBe(400);
      expect(all.json().error).toMatchObject({ code: 'bad-request', issues: [{ path: 'department' }] });
      expect(all.json().error.message).toContain('3 self-inspection runs');
      expect((await adminGet(small, `${AdminPaths.selfcheckReport}?fiscalYear=2026&department=${encodeURIComponent('会計課')}`)).statusCode).toBe(200);
      // The other fiscal year holds one run: within the limit.
      expect((await adminGet(small, `${AdminPaths.selfcheckReport}?fiscalYear=2027`)).statusCode).toBe(200);
    } finally {
      await small.cleanup();
    }
  });
});
