import type { Locale } from '../../shared/i18n.js';
import { apiPaths, paths } from './api-client.js';
import type { PageContext } from './app.js';
import { dataCell, h, replace, summary, table } from './dom.js';
import { dataText, formatTime } from './format.js';

/**
 * A terminal's latest self-inspection (自己点検) on its page: when and why it ran, the overall
 * result, every check with its label, seed clause and evidence (text only), links to the fiscal
 * year's report (CSV and printable HTML) for the terminal's department, and — role admin — a button
 * that queues a `selfcheck` command. Labels of checks and clauses come with the answer (the server
 * takes them from shared/selfcheck.ts); this panel's own few texts are below in both languages.
 */

interface Bilingual {
  readonly ja: string;
  readonly en: string;
}

/** `GET /admin/devices/:id/selfcheck` (AdminSelfcheckRunsResponseSchema in server/routes/admin-selfcheck.ts). */
interface SelfcheckAnswer {
  readonly deviceId: string;
  readonly department: string | null;
  readonly runs: readonly {
    readonly seq: number;
    readonly receivedAt: string;
    readonly trigger: 'start' | 'daily' | 'command';
    readonly finishedAt: string;
    readonly policyVersion: number;
    readonly policyOrigin: string;
    readonly agentVersion: string;
    readonly summary: { readonly pass: number; readonly fail: number; readonly unknown: number; readonly overall: Result };
    readonly checks: readonly {
      readonly id: string;
      readonly result: Result;
      readonly clause: string;
      readonly evidence: Readonly<Record<string, unknown>>;
      readonly label: Bilingual;
      readonly clauseText: Bilingual | null;
    }[];
  }[];
}

type Result = 'pass' | 'fail' | 'unknown';

const TEXTS = {
  heading: { ja: '自己点検（最新）', en: 'Self-inspection (latest)' },
  none: { ja: 'この端末の自己点検の結果はまだありません。', en: 'No self-inspection result from this terminal yet.' },
  finishedAt: { ja: '実施日時', en: 'Finished' },
  trigger: { ja: '契機', en: 'Trigger' },
  overall: { ja: '総合判定', en: 'Overall' },
  counts: { ja: '項目数', en: 'Checks' },
  policy: { ja: 'ポリシー', en: 'Policy' },
  agent: { ja: 'エージェントの版', en: 'Agent version' },
  result: { ja: '結果', en: 'Result' },
  check: { ja: '点検項目', en: 'Check' },
  clause: { ja: '根拠条項', en: 'Policy clause' },
  evidence: { ja: '証跡', en: 'Evidence' },
  department: { ja: '所属', en: 'Department' },
  allDepartments: { ja: '全所属', en: 'all departments' },
  reportCsv: { ja: '年度報告書をダウンロード（CSV）', en: 'Download the fiscal-year report (CSV)' },
  reportHtml: { ja: '年度報告書を表示（印刷用HTML）', en: 'Open the fiscal-year report (printable HTML)' },
  reportScope: { ja: '報告書の範囲', en: 'Report covers' },
  runNow: { ja: '今すぐ点検する', en: 'Inspect now' },
  queued: { ja: '点検を指示しました。端末の次の通信で実行されます。', en: 'Inspection queued: the terminal runs it at its next contact.' },
} as const satisfies Record<string, Bilingual>;

const RESULTS: Readonly<Record<Result, Bilingual>> = {
  pass: { ja: '適合', en: 'Pass' },
  fail: { ja: '不適合', en: 'Fail' },
  unknown: { ja: '判定不能', en: 'Unknown' },
};

const TRIGGERS: Readonly<Record<string, Bilingual>> = {
  start: { ja: '起動時', en: 'At start' },
  daily: { ja: '定期（日次）', en: 'Daily' },
  command: { ja: '管理者の指示', en: 'Administrator request' },
};

function say(text: Bilingual, locale: Locale): string {
  return text[locale];
}

function resultClass(result: Result): string {
  return result === 'pass' ? 'ok' : result === 'fail' ? 'bad' : 'muted';
}

/** The Japanese fiscal year (April–March, JST) of an instant, by its starting year. */
export function fiscalYearOf(iso: string): number {
  const jst = new Date(Date.parse(iso) + 9 * 3_600_000);
  return jst.getUTCMonth() < 3 ? jst.getUTCFullYear() - 1 : jst.getUTCFullYear();
}

/** The report's URL for a fiscal year, a department (null: every terminal) and a format. */
export function reportUrl(fiscalYear: number, department: string | null, format: 'csv' | 'html'): string {
  const query = new URLSearchParams({ fiscalYear: String(fiscalYear), format });
  if (department !== null) query.set('department', department);
  return `${paths.selfcheckReport}?${query.toString()}`;
}

export function selfcheckHeading(locale: Locale): string {
  return say(TEXTS.heading, locale);
}

export function departmentLabel(locale: Locale): string {
  return say(TEXTS.department, locale);
}

/** Fills `box` with the terminal's latest run, the report links and (role admin) the run-now button. */
export async function loadSelfcheck(context: PageContext, deviceId: string, serverTime: string, box: HTMLElement, reloadCommands: () => Promise<void>): Promise<void> {
  const { locale } = context;
  try {
    const answer = await context.api.get<SelfcheckAnswer>(`${apiPaths.adminDevices}/${deviceId}/selfcheck`, { limit: 1 });
    if (!context.current()) return;
    const fiscalYear = fiscalYearOf(serverTime);
    const actions = h(
      'div',
      { class: 'actions' },
      h('span', null, `${say(TEXTS.reportScope, locale)}: ${answer.department ?? say(TEXTS.allDepartments, locale)} / FY${fiscalYear}`),
      h('a', { attrs: { id: 'selfcheck-report-csv', href: reportUrl(fiscalYear, answer.department, 'csv'), download: '' } }, say(TEXTS.reportCsv, locale)),
      h('a', { attrs: { id: 'selfcheck-report-html', href: reportUrl(fiscalYear, answer.department, 'html'), target: '_blank', rel: 'noopener noreferrer' } }, say(TEXTS.reportHtml, locale)),
    );
    if (context.canWrite) actions.appendChild(runNowButton(context, deviceId, reloadCommands));
    const latest = answer.runs[0];
    if (latest === undefined) {
      replace(box, h('p', { class: 'muted', attrs: { id: 'selfcheck-none' } }, say(TEXTS.none, locale)), actions);
      return;
    }
    const { summary: counts } = latest;
    replace(
      box,
      summary([
        [say(TEXTS.finishedAt, locale), formatTime(latest.finishedAt, locale)],
        [say(TEXTS.trigger, locale), say(TRIGGERS[latest.trigger] ?? { ja: latest.trigger, en: latest.trigger }, locale)],
        [say(TEXTS.overall, locale), h('span', { class: resultClass(counts.overall), attrs: { id: 'selfcheck-overall' } }, say(RESULTS[counts.overall], locale))],
        [say(TEXTS.counts, locale), `${say(RESULTS.pass, locale)} ${counts.pass} / ${say(RESULTS.fail, locale)} ${counts.fail} / ${say(RESULTS.unknown, locale)} ${counts.unknown}`],
        [say(TEXTS.policy, locale), `v${latest.policyVersion} (${latest.policyOrigin})`],
        [say(TEXTS.agent, locale), latest.agentVersion],
      ]),
      table(
        [say(TEXTS.result, locale), say(TEXTS.check, locale), say(TEXTS.clause, locale), say(TEXTS.evidence, locale)],
        latest.checks,
        (check) =>
          h(
            'tr',
            { attrs: { 'data-check': check.id, 'data-result': check.result } },
            h('td', { class: resultClass(check.result) }, say(RESULTS[check.result], locale)),
            h('td', null, say(check.label, locale)),
            h('td', null, check.clauseText === null ? check.clause : say(check.clauseText, locale)),
            dataCell(dataText(check.evidence)),
          ),
      ),
      actions,
    );
  } catch (error) {
    if (context.current()) replace(box, context.failure(error));
  }
}

function runNowButton(context: PageContext, deviceId: string, reloadCommands: () => Promise<void>): HTMLElement {
  const { locale } = context;
  const status = h('span', { attrs: { id: 'selfcheck-status', role: 'status' } });
  const button = h('button', { class: 'secondary', attrs: { type: 'button', id: 'selfcheck-run' } }, say(TEXTS.runNow, locale));
  button.addEventListener('click', () => {
    button.disabled = true;
    void (async () => {
      try {
        await context.api.post(`${apiPaths.adminDevices}/${deviceId}/commands`, { type: 'selfcheck' });
        replace(status, say(TEXTS.queued, locale));
        await reloadCommands();
      } catch (error) {
        replace(status, context.failure(error));
      } finally {
        button.disabled = false;
      }
    })();
  });
  return h('span', null, button, status);
}
