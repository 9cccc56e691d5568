import { createHash } from 'node:crypto';
import type { FastifyPluginCallback, FastifyReply } from 'fastify';
import { z } from 'zod';
import { AdminPaths, ApiPaths, DeviceIdSchema } from '../../shared/api.js';
import { TierSchema } from '../../shared/policy.js';
import {
  SEED_CLAUSES,
  SELFCHECK_DEFINITIONS,
  SELFCHECK_TRIGGERS,
  SelfcheckIdSchema,
  SelfcheckResultSchema,
  SelfcheckSummarySchema,
  type SeedClauseRef,
} from '../../shared/selfcheck.js';
import { buildSelfcheckReport, fiscalYearBounds } from '../../shared/selfcheck-report.js';
import { recordAdminAction } from '../admin-trail.js';
import type { Clock } from '../clock.js';
import { ApiHttpError } from '../http/api-error.js';
import { actorOf, requireAdmin, type AdminAuth } from '../http/admin-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import { DepartmentSchema, fiscalYearOf } from '../selfcheck-runs.js';
import type { Store, StoredSelfcheckRun } from '../store.js';
import { DeviceParamsSchema } from './admin.js';

/** The department a report shows for a terminal no administrator has assigned one. */
export const UNASSIGNED_DEPARTMENT = '（所属未設定）';
export const MAX_SELFCHECK_RUNS_PAGE = 50;
/**
 * Most runs one report covers. `buildSelfcheckReport` takes every run of the year and is
 * synchronous: measured on the 2-core build machine, 50 terminals × 365 runs (18,250) took about
 * 2 s and 50 MiB; beyond this the report is refused (choose a department) rather than stalling
 * the server for minutes or exhausting its heap.
 */
export const MAX_REPORT_RUNS = 100_000;
const DEPARTMENT_BODY_LIMIT = 4 * 1024;

export const DepartmentRequestSchema = z.strictObject({
  /** Null clears it. */
  department: DepartmentSchema.nullable(),
});
export const DepartmentResponseSchema = z.strictObject({ deviceId: DeviceIdSchema, department: z.string().nullable(), previous: z.string().nullable() });

export const SelfcheckRunsQuerySchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(MAX_SELFCHECK_RUNS_PAGE).default(1) });

const BilingualSchema = z.strictObject({ ja: z.string(), en: z.string() });

/** One check of a stored run, with the labels the dashboard shows (from shared/selfcheck.ts). */
export const AdminSelfcheckCheckSchema = z.strictObject({
  id: SelfcheckIdSchema,
  result: SelfcheckResultSchema,
  /** The clause as the agent reported it (`6(3)①`). */
  clause: z.string(),
  evidence: z.record(z.string(), z.json()),
  label: BilingualSchema,
  criterion: BilingualSchema,
  /** The clause's text in the seed policy; null for a clause this server does not know. */
  clauseText: BilingualSchema.nullable(),
});

export const AdminSelfcheckRunSchema = z.strictObject({
  seq: z.int().min(1),
  receivedAt: z.string(),
  runId: z.string(),
  trigger: z.enum(SELFCHECK_TRIGGERS),
  commandId: z.string().nullable(),
  startedAt: z.string(),
  finishedAt: z.string(),
  tier: TierSchema,
  policyVersion: z.int(),
  policyOrigin: z.enum(['built-in', 'signed']),
  agentVersion: z.string(),
  platform: z.string(),
  summary: SelfcheckSummarySchema,
  checks: z.array(AdminSelfcheckCheckSchema),
});

export const AdminSelfcheckRunsResponseSchema = z.strictObject({
  deviceId: DeviceIdSchema,
  department: z.string().nullable(),
  /** Newest first (journal order). */
  runs: z.array(AdminSelfcheckRunSchema),
});

export const SelfcheckReportQuerySchema = z.strictObject({
  /** By its starting year (2026 = 2026-04-01 … 2027-03-31, JST); default: the current one. */
  fiscalYear: z.coerce.number().int().min(2000).max(2200).optional(),
  /** Only terminals of this department; absent: every terminal. */
  department: DepartmentSchema.optional(),
  format: z.enum(['csv', 'html']).default('csv'),
});

/**
 * Self-inspection (自己点検) for administrators:
 * - `PUT /api/v1/admin/devices/:id/department` `{ department }` (write; null clears) → the terminal's
 *   department (所属) for the per-department report; recorded in the admin trail.
 * - `GET /api/v1/admin/devices/:id/selfcheck?limit=N` (read) → its newest stored runs, with labels.
 * - `GET /api/v1/admin/reports/selfcheck?fiscalYear=&department=&format=csv|html` (read) → the
 *   report of the fiscal year (`buildSelfcheckReport`), failing items first; recorded in the trail.
 */
export const adminSelfcheckRoutes: FastifyPluginCallback<{ store: Store; auth: AdminAuth; clock: Clock; maxReportRuns?: number }> = (
  app,
  { store, auth, clock, maxReportRuns = MAX_REPORT_RUNS },
  done,
) => {
  requireAdmin(app, auth);
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.put(
    `${ApiPaths.adminDevices}/:id/department`,
    {
      config: { access: 'write' },
      bodyLimit: DEPARTMENT_BODY_LIMIT,
      schema: { params: DeviceParamsSchema, body: DepartmentRequestSchema, response: { 200: DepartmentResponseSchema } },
    },
    async (request) => {
      const deviceId = request.params.id;
      const { department } = request.body;
      const changed = await store.setDeviceDepartment(deviceId, department);
      if (changed === null) throw new ApiHttpError('not-found', `no device ${deviceId}`);
      const actor = actorOf(request).user;
      await recordAdminAction(store, clock(), actor, 'device.department', { deviceId }, { department, previous: changed.previous });
      request.log.info({ deviceId }, 'department set');
      return { deviceId, department, previous: changed.previous };
    },
  );

  api.get(
    `${ApiPaths.adminDevices}/:id/selfcheck`,
    { config: { access: 'read' }, schema: { params: DeviceParamsSchema, querystring: SelfcheckRunsQuerySchema, response: { 200: AdminSelfcheckRunsResponseSchema } } },
    async (request) => {
      const deviceId = request.params.id;
      const terminal = await store.terminal(deviceId);
      const runs = terminal === null ? null : await store.selfcheckRuns(deviceId, request.query.limit);
      if (terminal === null || runs === null) throw new ApiHttpError('not-found', `no device ${deviceId}`);
      return { deviceId, department: terminal.department, runs: runs.map(toAdminRun) };
    },
  );

  api.get(
    AdminPaths.selfcheckReport,
    {
      config: { access: 'read', openapi: { summary: 'Self-inspection report of a fiscal year (CSV, UTF-8 with BOM; or printable HTML with format=html)', produces: 'text/csv' } },
      schema: { querystring: SelfcheckReportQuerySchema },
      // After the app's onSend hook (route hooks run last): the report page gets a CSP that allows
      // its one inline <style> by hash (see reportSecurityPolicy).
      onSend: (_request, reply, payload, next) => {
        const type = reply.getHeader('content-type');
        const policy = typeof payload === 'string' && typeof type === 'string' && type.startsWith('text/html') ? reportSecurityPolicy(payload) : null;
        if (policy !== null) void reply.header('content-security-policy', policy);
        next(null, payload);
      },
    },
    async (request, reply) => {
      const now = clock();
      const { format } = request.query;
      const fiscalYear = request.query.fiscalYear ?? fiscalYearOf(now);
      const department = request.query.department ?? null;
      const { startMs, endMs } = fiscalYearBounds(fiscalYear);
      const range = { department, from: new Date(startMs).toISOString(), until: new Date(endMs).toISOString() };
      const runs = await store.countSelfcheckRuns(range);
      if (runs > maxReportRuns) {
        throw new ApiHttpError('bad-request', `${runs} self-inspection runs in fiscal year ${fiscalYear} exceed one report's limit of ${maxReportRuns}: choose a department`, {
          issues: [{ path: 'department', message: `too many runs (${runs} > ${maxReportRuns})` }],
        });
      }
      const sources = await store.selfcheckReportSources(range);
      const report = buildSelfcheckReport({
        fiscalYear,
        department,
        generatedAt: now.toISOString(),
        terminals: sources.map((source) => ({ ...source, department: source.department ?? UNASSIGNED_DEPARTMENT })),
      });
      await recordAdminAction(store, now, actorOf(request).user, 'report.selfcheck', {}, { fiscalYear, department, format, ...report.summary });
      request.log.info({ fiscalYear, format, terminals: report.summary.terminals }, 'self-inspection report');
      return format === 'csv' ? sendCsv(reply, report.csv, fiscalYear, department) : sendHtml(reply, report.html, fiscalYear, department);
    },
  );

  done();
};

function toAdminRun(stored: StoredSelfcheckRun): z.infer<typeof AdminSelfcheckRunSchema> {
  const { run } = stored;
  return {
    seq: stored.seq,
    receivedAt: stored.receivedAt,
    runId: run.runId,
    trigger: run.trigger,
    commandId: run.commandId ?? null,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    tier: run.tier,
    policyVersion: run.policyVersion,
    policyOrigin: run.policyOrigin,
    agentVersion: run.agentVersion,
    platform: run.platform,
    summary: run.summary,
    checks: run.checks.map((check) => {
      const definition = SELFCHECK_DEFINITIONS[check.id];
      return {
        id: check.id,
        result: check.result,
        clause: check.clause,
        evidence: check.evidence,
        label: definition.label,
        criterion: definition.criterion,
        clauseText: isSeedClause(check.clause) ? SEED_CLAUSES[check.clause] : null,
      };
    }),
  };
}

function isSeedClause(clause: string): clause is SeedClauseRef {
  return Object.hasOwn(SEED_CLAUSES, clause);
}

/** `attachment`/`inline` with an ASCII fallback name and the Japanese one (RFC 6266 / RFC 8187). */
export function contentDisposition(kind: 'attachment' | 'inline', fiscalYear: number, department: string | null, extension: 'csv' | 'html'): string {
  const ascii = `selfcheck-report-FY${fiscalYear}.${extension}`;
  const name = `自己点検結果報告書_${department ?? '全所属'}_${fiscalYear}年度.${extension}`;
  const encoded = encodeURIComponent(name).replace(/['()*!]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

function sendCsv(reply: FastifyReply, csv: string, fiscalYear: number, department: string | null): FastifyReply {
  return reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', contentDisposition('attachment', fiscalYear, department, 'csv')).send(csv);
}

function sendHtml(reply: FastifyReply, html: string, fiscalYear: number, department: string | null): FastifyReply {
  return reply
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-disposition', contentDisposition('inline', fiscalYear, department, 'html'))
    .send(html);
}

/**
 * The report page's CSP: the dashboard's (`style-src 'self'`) would block the report's inline
 * `<style>`, and `'unsafe-inline'` would allow any; this allows exactly its one `<style>` element by
 * SHA-256 and nothing else (no script, no style attribute — the page has none —, no image, no
 * connection, no form). Null (the dashboard's policy stays) for a page without exactly one `<style>`.
 */
export function reportSecurityPolicy(html: string): string | null {
  const style = /<style>([\s\S]*?)<\/style>/.exec(html);
  if (style === null || (html.match(/<style\b/g) ?? []).length !== 1) return null;
  const hash = createHash('sha256').update(style[1] ?? '', 'utf8').digest('base64');
  return `default-src 'none'; style-src 'sha256-${hash}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'`;
}
