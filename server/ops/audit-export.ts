import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { API_PREFIX, DeviceIdSchema } from '../../shared/api.js';
import { ApiHttpError } from '../http/api-error.js';
import { DepartmentSchema } from '../selfcheck-runs.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import type { Authorize } from './authorize.js';
import { UTF8_BOM, csvRecord } from './csv.js';
import { eventFields } from './event-fields.js';
import { START_CURSOR, type AuditEventRow, type EventCursor, type OpsQueries, type TimeRange } from './ops-db.js';

/**
 * `GET /api/v1/admin/audit/events.csv?from=&to=[&device=ID…][&hostnamePrefix=P][&department=D]`: the events of a
 * period as CSV for auditors, streamed (never buffered: 10M rows flow through a few windows of
 * memory), RFC 4180, UTF-8 with BOM, formula cells defused (csv.ts).
 *
 * Period: `from` and `to` are a date (`2026-04-01`, a day in Japan Standard Time) or an instant
 * with its offset (`2026-04-01T09:00:00+09:00`, `…Z`). The export holds the events whose `time`
 * (the terminal's clock, UTC) is ≥ from and < to; a date-only `to` means the END of that day, so
 * `from=2026-04-01&to=2026-04-30` is all of April in JST. Order: by terminal id, then seq.
 *
 * Scope: all terminals, or those named by `device` (repeat it, or comma-separate; at most 1000),
 * and/or those whose hostname starts with `hostnamePrefix` (a naming convention), and/or those an
 * administrator assigned to `department` (所属, exact name). Several given: terminals matching all.
 */
export const AUDIT_EVENTS_CSV_PATH = `${API_PREFIX}/admin/audit/events.csv`;

/** Most device ids one export may name. */
export const MAX_EXPORT_DEVICES = 1000;
/** Rows read per step: bounds the time one step holds the event loop (a few ms), whatever the period. */
export const EXPORT_WINDOW_ROWS = 2000;

export const CSV_COLUMNS = [
  'time_jst',
  'time_utc',
  'received_at_utc',
  'device_id',
  'hostname',
  'seq',
  'type',
  'user',
  'usb_id',
  'usb_manufacturer',
  'usb_name',
  'usb_serial',
  'decision',
  'rule',
  'approval_or_exception_id',
  'hash',
  'data',
] as const;

const DeviceListSchema = z.union([z.string().max(40 * MAX_EXPORT_DEVICES), z.array(z.string().max(40)).max(MAX_EXPORT_DEVICES)]);

export const AuditExportQuerySchema = z.strictObject({
  /** A JST date (`2026-04-01`) or an instant with offset (`2026-04-01T00:00:00+09:00`). */
  from: z.string().min(10).max(40),
  /** Exclusive; a date means the end of that JST day. */
  to: z.string().min(10).max(40),
  /** Device ids (`dev_…`): repeated, or comma-separated. */
  device: DeviceListSchema.optional(),
  hostnamePrefix: z.string().min(1).max(255).optional(),
  /** Only terminals of this department (所属, as set with `PUT /admin/devices/:id/department`). */
  department: DepartmentSchema.optional(),
});
export type AuditExportQuery = z.infer<typeof AuditExportQuerySchema>;

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const JST_OFFSET_MS = 9 * 3_600_000;
const DAY_MS = 86_400_000;

/**
 * A query bound as a UTC ISO string with ms (how `events.time` is stored, so text order is time
 * order), or null when it is neither a valid date nor an instant with an explicit offset (a local
 * time without offset is ambiguous and refused).
 */
export function parseBound(text: string, end: boolean): string | null {
  const date = DATE_ONLY.exec(text);
  if (date) {
    const [year, month, day] = [Number(date[1]), Number(date[2]), Number(date[3])];
    const utcMidnight = Date.UTC(year, month - 1, day);
    const check = new Date(utcMidnight);
    if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return null;
    // JST has no daylight saving: midnight in Japan is 15:00 UTC the day before.
    return new Date(utcMidnight - JST_OFFSET_MS + (end ? DAY_MS : 0)).toISOString();
  }
  if (!INSTANT.test(text)) return null;
  const ms = Date.parse(text);
  if (Number.isNaN(ms) || ms < 0 || ms > Date.UTC(9999, 11, 31)) return null;
  return new Date(ms).toISOString();
}

/** `2026-11-25T09:00:00.123Z` → `2026-11-25 18:00:00.123` (Japan Standard Time, UTC+9, no DST); unparsable → as given. */
export function toJst(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return new Date(ms + JST_OFFSET_MS).toISOString().replace('T', ' ').replace('Z', '');
}

/** One CSV record for an event row. */
export function csvRowFor(row: AuditEventRow): string {
  let data: unknown = null;
  try {
    data = JSON.parse(row.dataJson);
  } catch {
    // Stored data is canonical JSON; a row edited behind the server's back still exports (raw, in `data`).
  }
  const fields = eventFields(data);
  return csvRecord([
    toJst(row.time),
    row.time,
    row.receivedAt,
    row.deviceId,
    row.hostname,
    row.seq,
    row.type,
    fields.user,
    fields.usbId,
    fields.usbManufacturer,
    fields.usbName,
    fields.usbSerial,
    fields.decision,
    fields.rule,
    fields.exceptionId,
    row.hash,
    row.dataJson,
  ]);
}

export interface AuditExportScope {
  readonly range: TimeRange;
  /** Null: every terminal. Otherwise sorted device ids (possibly empty: nothing matches). */
  readonly deviceIds: readonly string[] | null;
}

/**
 * The CSV as text chunks (BOM and header first, then one chunk per window with rows). Between
 * windows it yields to the event loop, so heartbeats and uploads keep flowing during a long
 * export; a consumer that stops reading (slow client) stops the reading of the database too.
 */
export async function* auditCsvChunks(queries: OpsQueries, scope: AuditExportScope, windowRows = EXPORT_WINDOW_ROWS): AsyncGenerator<string> {
  yield UTF8_BOM + csvRecord(CSV_COLUMNS);
  const devices: readonly (string | undefined)[] = scope.deviceIds ?? [undefined];
  for (const deviceId of devices) {
    let cursor: EventCursor | null = deviceId === undefined ? START_CURSOR : { deviceId, seq: 0 };
    while (cursor !== null) {
      const { rows, next }: { rows: AuditEventRow[]; next: EventCursor | null } = queries.eventWindow(cursor, scope.range, windowRows, deviceId);
      if (rows.length > 0) yield rows.map(csvRowFor).join('');
      cursor = next;
      await nextTurn();
    }
  }
}

/** What was exported, for the admin trail. */
export interface AuditExportSummary {
  readonly from: string;
  readonly to: string;
  /** Null: all terminals. */
  readonly devices: readonly string[] | null;
  readonly hostnamePrefix: string | null;
  /** Null: any department. */
  readonly department: string | null;
  /** How many terminals the scope resolved to (null: all). */
  readonly terminals: number | null;
}

export interface AuditExportRoutesOptions {
  readonly queries: OpsQueries;
  /** Who may export (see authorize.ts). A false answer is 401. */
  readonly authorize?: Authorize;
  /**
   * Called with the plugin's own scope before its route is added: where the composition root adds
   * its admin authentication (`(scope) => requireAdmin(scope, auth)`; the route declares
   * `config.access: 'read'`). At least one of `authorize` and `scope` is required.
   */
  readonly scope?: (app: FastifyInstance) => void;
  /**
   * Called once per export before the first byte is sent (the admin trail: who exported which
   * period of which terminals). A rejection answers 500 and exports nothing: an export that
   * cannot be recorded does not happen.
   */
  readonly onExport?: (request: FastifyRequest, summary: AuditExportSummary) => Promise<void> | void;
}

/** The audit export route; see AUDIT_EVENTS_CSV_PATH. */
export const auditExportRoutes: FastifyPluginCallback<AuditExportRoutesOptions> = (app, options, done) => {
  const { authorize, scope } = options;
  if (authorize === undefined && scope === undefined) {
    done(new Error('auditExportRoutes: no authorization (authorize or scope)'));
    return;
  }
  scope?.(app);
  if (authorize !== undefined) {
    app.addHook('onRequest', async (request) => {
      if (!(await authorize(request))) throw new ApiHttpError('unauthorized', 'missing or invalid admin credential');
    });
  }

  // `access` for the lead's requireAdmin (role-checked scope); `openapi` for the document.
  const config = { access: 'read' as const, openapi: { summary: 'Audit export: events of a period as CSV (UTF-8 with BOM)', produces: 'text/csv' } };

  app.withTypeProvider<ZodTypeProvider>().get(AUDIT_EVENTS_CSV_PATH, { config, schema: { querystring: AuditExportQuerySchema } }, async (request, reply) => {
    const query = request.query;
    const from = parseBound(query.from, false);
    const to = parseBound(query.to, true);
    const issues: { path: string; message: string }[] = [];
    if (from === null) issues.push({ path: 'query.from', message: 'a date (2026-04-01, JST) or an instant with offset (2026-04-01T09:00:00+09:00)' });
    if (to === null) issues.push({ path: 'query.to', message: 'a date (2026-04-30, JST, inclusive) or an instant with offset (exclusive)' });
    if (from !== null && to !== null && !(from < to)) issues.push({ path: 'query.to', message: 'must be after from' });
    const requested = query.device === undefined ? null : deviceList(query.device);
    if (requested !== null) {
      requested.forEach((id, index) => {
        if (!DeviceIdSchema.safeParse(id).success) issues.push({ path: `query.device[${index}]`, message: 'not a device id' });
      });
      if (requested.length > MAX_EXPORT_DEVICES) issues.push({ path: 'query.device', message: `at most ${MAX_EXPORT_DEVICES} devices` });
    }
    if (issues.length > 0 || from === null || to === null) throw new ApiHttpError('bad-request', 'invalid export query', { issues: issues.slice(0, 20) });

    const deviceIds = resolveScope(options.queries, requested, query.hostnamePrefix ?? null, query.department ?? null);
    const summary: AuditExportSummary = {
      from,
      to,
      devices: requested,
      hostnamePrefix: query.hostnamePrefix ?? null,
      department: query.department ?? null,
      terminals: deviceIds === null ? null : deviceIds.length,
    };
    await options.onExport?.(request, summary);
    request.log.info({ from, to, terminals: summary.terminals }, 'audit export started');

    const stream = Readable.from(auditCsvChunks(options.queries, { range: { from, to }, deviceIds }), { objectMode: false });
    stream.on('error', (error) => request.log.error({ err: error }, 'audit export failed mid-stream'));
    // The period's first and last JST days (to is exclusive): `sekimori-events-2026-04-01-2026-04-30.csv`.
    const name = `sekimori-events-${toJst(from).slice(0, 10)}-${toJst(new Date(Date.parse(to) - 1).toISOString()).slice(0, 10)}.csv`;
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="${name}"`)
      .send(stream);
  });
  done();
};

function deviceList(value: string | readonly string[]): string[] {
  const items = typeof value === 'string' ? [value] : value;
  return items.flatMap((item) => item.split(',')).map((item) => item.trim()).filter((item) => item !== '');
}

/** Sorted device ids of the scope (every filter given), or null for every terminal. Unknown ids and departments simply match nothing. */
function resolveScope(queries: OpsQueries, requested: readonly string[] | null, prefix: string | null, department: string | null): string[] | null {
  const sets = [
    requested === null ? null : queries.existingDeviceIds(requested),
    prefix === null ? null : queries.deviceIdsByHostnamePrefix(prefix),
    department === null ? null : queries.deviceIdsByDepartment(department),
  ].filter((ids): ids is string[] => ids !== null);
  const [first, ...rest] = sets;
  if (first === undefined) return null;
  const others = rest.map((ids) => new Set(ids));
  return first.filter((id) => others.every((ids) => ids.has(id))).sort();
}
