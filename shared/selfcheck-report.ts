import { canonicalJson } from './canonical-json.js';
import { TIER_LABELS, type Tier } from './policy.js';
import {
  SEED_CLAUSES,
  SELFCHECK_DEFINITIONS,
  SELFCHECK_IDS,
  SELFCHECK_RESULT_LABELS,
  SelfcheckRunSchema,
  type SelfcheckId,
  type SelfcheckResult,
  type SelfcheckRun,
} from './selfcheck.js';

/**
 * The per-department self-inspection report (自己点検結果報告書) for one fiscal year (年度: April 1
 * to March 31, Japan time), as CSV (for Excel: UTF-8 with BOM, CRLF) and as a printable HTML page
 * in Japanese. Failing items come first. Pure: the server gathers each terminal's `selfcheck.result`
 * entries and passes them in; nothing here reads a clock, a file or the network.
 *
 * Everything a terminal sent (host names, department names, evidence) is untrusted: runs are
 * re-validated here (an invalid one is skipped and counted), every HTML text is escaped, and CSV
 * cells that a spreadsheet would read as a formula are neutralised.
 */

export interface SelfcheckReportTerminal {
  readonly deviceId: string;
  readonly hostname: string;
  /** The department (所属) the terminal belongs to, as the server records it. */
  readonly department: string;
  readonly tier: Tier | null;
  /** The `data` of this terminal's `selfcheck.result` journal entries, any order; validated here. */
  readonly runs: readonly unknown[];
}

export interface SelfcheckReportInput {
  /** The fiscal year by its starting calendar year: 2026 = 2026-04-01 … 2027-03-31 (JST). */
  readonly fiscalYear: number;
  /** Only terminals of this department; null = every terminal passed in. */
  readonly department: string | null;
  /** The organisation named in the title (e.g. `今治市`); optional. */
  readonly organisation?: string;
  /** When the report was made (ISO 8601), printed in the footer. */
  readonly generatedAt: string;
  readonly terminals: readonly SelfcheckReportTerminal[];
}

/** `not-inspected`: no run of this terminal in the fiscal year carried the check. */
export type ReportResult = SelfcheckResult | 'not-inspected';

export interface SelfcheckReportRow {
  readonly department: string;
  readonly hostname: string;
  readonly deviceId: string;
  readonly tier: Tier | null;
  /** Null for a terminal with no run at all in the year (one row says so). */
  readonly checkId: SelfcheckId | null;
  readonly result: ReportResult;
  /** `finishedAt` of the run the result comes from. */
  readonly inspectedAt: string | null;
  /** Runs in the year that carried the check, and how many of them failed it. */
  readonly runs: number;
  readonly failures: number;
  readonly evidence: string;
}

export interface SelfcheckReportSummary {
  readonly terminals: number;
  readonly inspectedTerminals: number;
  readonly terminalsWithFailures: number;
  readonly failingItems: number;
  readonly unknownItems: number;
  readonly notInspectedItems: number;
  /** Runs skipped because they did not validate (a tampered or too-new agent). */
  readonly invalidRuns: number;
}

export interface SelfcheckReport {
  readonly rows: readonly SelfcheckReportRow[];
  readonly summary: SelfcheckReportSummary;
  readonly csv: string;
  readonly html: string;
}

const RESULT_RANK: Readonly<Record<ReportResult, number>> = { fail: 0, 'not-inspected': 1, unknown: 2, pass: 3 };
const RESULT_TEXT: Readonly<Record<ReportResult, string>> = {
  fail: SELFCHECK_RESULT_LABELS.fail.ja,
  unknown: SELFCHECK_RESULT_LABELS.unknown.ja,
  pass: SELFCHECK_RESULT_LABELS.pass.ja,
  'not-inspected': '未実施',
};
const JST_OFFSET_MS = 9 * 3_600_000;
const MAX_EVIDENCE_IN_REPORT = 500;

/** Start (inclusive) and end (exclusive) of a fiscal year, epoch ms. */
export function fiscalYearBounds(fiscalYear: number): { startMs: number; endMs: number } {
  if (!Number.isInteger(fiscalYear) || fiscalYear < 1989 || fiscalYear > 9998) throw new RangeError(`not a fiscal year: ${fiscalYear}`);
  return { startMs: Date.UTC(fiscalYear, 3, 1) - JST_OFFSET_MS, endMs: Date.UTC(fiscalYear + 1, 3, 1) - JST_OFFSET_MS };
}

/** `令和8年度（2026年度）`; years before Reiwa by the Western year only. */
export function fiscalYearLabel(fiscalYear: number): string {
  if (fiscalYear < 2019) return `${fiscalYear}年度`;
  const era = fiscalYear - 2018;
  return `令和${era === 1 ? '元' : era}年度（${fiscalYear}年度）`;
}

/** An ISO instant as Japan time, `2026-11-25 18:00`; `''` for null or an unparseable text. */
export function formatJst(iso: string | null): string {
  if (iso === null) return '';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return '';
  const d = new Date(ms + JST_OFFSET_MS);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
}

/** Builds the report. Throws only for a bad `fiscalYear` (a caller bug). */
export function buildSelfcheckReport(input: SelfcheckReportInput): SelfcheckReport {
  const { startMs, endMs } = fiscalYearBounds(input.fiscalYear);
  const terminals = input.department === null ? input.terminals : input.terminals.filter((terminal) => terminal.department === input.department);
  const rows: SelfcheckReportRow[] = [];
  let invalidRuns = 0;
  let inspectedTerminals = 0;
  for (const terminal of terminals) {
    const runs: SelfcheckRun[] = [];
    for (const raw of terminal.runs) {
      const parsed = SelfcheckRunSchema.safeParse(raw);
      if (!parsed.success) {
        invalidRuns += 1;
        continue;
      }
      const at = Date.parse(parsed.data.finishedAt);
      if (at >= startMs && at < endMs) runs.push(parsed.data);
    }
    const base = { department: terminal.department, hostname: terminal.hostname, deviceId: terminal.deviceId, tier: terminal.tier };
    if (runs.length === 0) {
      rows.push({ ...base, checkId: null, result: 'not-inspected', inspectedAt: null, runs: 0, failures: 0, evidence: '' });
      continue;
    }
    inspectedTerminals += 1;
    runs.sort((a, b) => Date.parse(a.finishedAt) - Date.parse(b.finishedAt));
    for (const id of SELFCHECK_IDS) {
      let latest: { run: SelfcheckRun; check: SelfcheckRun['checks'][number] } | null = null;
      let carried = 0;
      let failures = 0;
      for (const run of runs) {
        const check = run.checks.find((item) => item.id === id);
        if (!check) continue;
        carried += 1;
        if (check.result === 'fail') failures += 1;
        latest = { run, check };
      }
      rows.push({
        ...base,
        checkId: id,
        result: latest?.check.result ?? 'not-inspected',
        inspectedAt: latest?.run.finishedAt ?? null,
        runs: carried,
        failures,
        evidence: latest ? shorten(canonicalJson(latest.check.evidence), MAX_EVIDENCE_IN_REPORT) : '',
      });
    }
  }
  rows.sort(compareRows);
  const failingTerminals = new Set(rows.filter((row) => row.result === 'fail' || row.result === 'not-inspected').map((row) => row.deviceId));
  const summary: SelfcheckReportSummary = {
    terminals: terminals.length,
    inspectedTerminals,
    terminalsWithFailures: failingTerminals.size,
    failingItems: rows.filter((row) => row.result === 'fail').length,
    unknownItems: rows.filter((row) => row.result === 'unknown').length,
    notInspectedItems: rows.filter((row) => row.result === 'not-inspected').length,
    invalidRuns,
  };
  return { rows, summary, csv: toCsv(input, rows), html: toHtml(input, rows, summary) };
}

function compareRows(a: SelfcheckReportRow, b: SelfcheckReportRow): number {
  return (
    RESULT_RANK[a.result] - RESULT_RANK[b.result] ||
    compareText(a.department, b.department) ||
    compareText(a.hostname, b.hostname) ||
    compareText(a.deviceId, b.deviceId) ||
    checkOrder(a.checkId) - checkOrder(b.checkId)
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkOrder(id: SelfcheckId | null): number {
  return id === null ? -1 : SELFCHECK_IDS.indexOf(id);
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function tierText(tier: Tier | null): string {
  return tier === null ? '' : TIER_LABELS[tier].ja;
}

function checkText(id: SelfcheckId | null): { label: string; clause: string } {
  if (id === null) return { label: '自己点検（全項目）', clause: SEED_CLAUSES['6(9)'].ja };
  const definition = SELFCHECK_DEFINITIONS[id];
  return { label: definition.label.ja, clause: SEED_CLAUSES[definition.clause].ja };
}

// --- CSV ----------------------------------------------------------------------------------------

const CSV_HEADER = ['年度', '所属', '端末名', '端末ID', '区分', '点検項目ID', '点検項目', '根拠条項', '結果', '最終点検日時(JST)', '年度内点検回数', '年度内不適合回数', '証跡'];

/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, quote or line break. A cell a spreadsheet
 * would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'` (OWASP CSV injection).
 */
export function csvCell(value: string | number): string {
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function toCsv(input: SelfcheckReportInput, rows: readonly SelfcheckReportRow[]): string {
  const year = String(input.fiscalYear);
  const lines = [CSV_HEADER.map(csvCell).join(',')];
  for (const row of rows) {
    const { label, clause } = checkText(row.checkId);
    lines.push(
      [year, row.department, row.hostname, row.deviceId, tierText(row.tier), row.checkId ?? '', label, clause, RESULT_TEXT[row.result], formatJst(row.inspectedAt), row.runs, row.failures, row.evidence]
        .map(csvCell)
        .join(','),
    );
  }
  // BOM: Excel on Japanese Windows reads UTF-8 CSV as Shift_JIS without it.
  return `\ufeff${lines.join('\r\n')}\r\n`;
}

// --- HTML ---------------------------------------------------------------------------------------

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char] ?? char);
}

const STYLE = `
  @page { size: A4 landscape; margin: 12mm; }
  body { font-family: "BIZ UDPGothic", "Yu Gothic", "Meiryo", "Noto Sans CJK JP", sans-serif; font-size: 10pt; color: #000; margin: 0 1em; }
  h1 { font-size: 15pt; margin: 0.5em 0 0.2em; }
  p.period { margin: 0 0 0.8em; }
  table { border-collapse: collapse; width: 100%; margin-bottom: 1em; }
  th, td { border: 1px solid #444; padding: 2px 4px; vertical-align: top; text-align: left; }
  th { background: #e8e8e8; }
  thead { display: table-header-group; }
  tr { page-break-inside: avoid; }
  td.result { white-space: nowrap; font-weight: bold; }
  tr.fail td.result, tr.not-inspected td.result { color: #a00000; }
  tr.unknown td.result { color: #805000; }
  td.evidence { font-family: monospace; font-size: 8pt; word-break: break-all; max-width: 30em; }
  table.summary { width: auto; }
  table.approval { width: auto; margin-left: auto; }
  table.approval td { width: 6em; height: 4em; }
  footer { font-size: 8pt; color: #333; }
`;

function toHtml(input: SelfcheckReportInput, rows: readonly SelfcheckReportRow[], summary: SelfcheckReportSummary): string {
  const { startMs, endMs } = fiscalYearBounds(input.fiscalYear);
  const department = input.department ?? '全所属';
  const title = `${input.organisation ? `${input.organisation} ` : ''}自己点検結果報告書 ${department} ${fiscalYearLabel(input.fiscalYear)}`;
  const period = `${formatJst(new Date(startMs).toISOString()).slice(0, 10)} ～ ${formatJst(new Date(endMs - 1).toISOString()).slice(0, 10)}`;
  const e = escapeHtml;
  const summaryRows: [string, number][] = [
    ['対象端末数', summary.terminals],
    ['点検実施端末数', summary.inspectedTerminals],
    ['不適合または未実施のある端末数', summary.terminalsWithFailures],
    ['不適合項目数', summary.failingItems],
    ['未実施項目数', summary.notInspectedItems],
    ['判定不能項目数', summary.unknownItems],
  ];
  if (summary.invalidRuns > 0) summaryRows.push(['検証できず除外した点検記録数', summary.invalidRuns]);
  const body = rows
    .map((row) => {
      const { label, clause } = checkText(row.checkId);
      return (
        `<tr class="${row.result}">` +
        `<td class="result">${e(RESULT_TEXT[row.result])}</td>` +
        `<td>${e(row.department)}</td><td>${e(row.hostname)}<br><small>${e(row.deviceId)}</small></td><td>${e(tierText(row.tier))}</td>` +
        `<td>${e(label)}</td><td>${e(clause)}</td><td>${e(formatJst(row.inspectedAt))}</td>` +
        `<td>${row.runs}</td><td>${row.failures}</td><td class="evidence">${e(row.evidence)}</td></tr>`
      );
    })
    .join('\n');
  return `<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${e(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${e(title)}</h1>
<p class="period">対象期間: ${e(period)}（日本時間）／ 根拠: 情報セキュリティ基本方針 ${e(SEED_CLAUSES['6(9)'].ja)}、7 情報セキュリティ監査及び自己点検の実施</p>
<table class="approval"><tr><th>点検責任者</th><th>確認者</th></tr><tr><td></td><td></td></tr></table>
<table class="summary"><tbody>
${summaryRows.map(([name, value]) => `<tr><th>${e(name)}</th><td>${value}</td></tr>`).join('\n')}
</tbody></table>
<table class="results">
<thead><tr><th>結果</th><th>所属</th><th>端末</th><th>区分</th><th>点検項目</th><th>根拠条項</th><th>最終点検日時</th><th>年度内点検回数</th><th>年度内不適合回数</th><th>証跡</th></tr></thead>
<tbody>
${body}
</tbody>
</table>
<footer>作成日時: ${e(formatJst(input.generatedAt))}（日本時間）／ 不適合・未実施の項目を先に掲載しています。証跡は端末が報告した内容です。</footer>
</body>
</html>
`;
}
