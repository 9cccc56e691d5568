import { describe, expect, it } from 'vitest';
import { buildSelfcheckReport, csvCell, escapeHtml, fiscalYearBounds, fiscalYearLabel, formatJst, type SelfcheckReportTerminal } from '../../shared/selfcheck-report.js';
import { SELFCHECK_DEFINITIONS, SELFCHECK_IDS, SelfcheckRunSchema, summarize, type SelfcheckCheck, type SelfcheckId, type SelfcheckRun } from '../../shared/selfcheck.js';

function run(finishedAt: string, results: Partial<Record<SelfcheckId, 'pass' | 'fail' | 'unknown'>> = {}, evidence: Record<string, unknown> = {}): SelfcheckRun {
  const checks: SelfcheckCheck[] = SELFCHECK_IDS.map((id) => ({ id, result: results[id] ?? 'pass', clause: SELFCHECK_DEFINITIONS[id].clause, evidence: id === 'mfa' ? (evidence as SelfcheckCheck['evidence']) : {} }));
  return SelfcheckRunSchema.parse({
    runId: `${Date.parse(finishedAt)}-1`,
    trigger: 'daily',
    startedAt: finishedAt,
    finishedAt,
    tier: 'mynumber',
    policyVersion: 4,
    policyOrigin: 'signed',
    agentVersion: '0.1.0',
    platform: 'linux',
    summary: summarize(checks),
    checks,
  });
}

const terminal = (hostname: string, department: string, runs: unknown[], deviceId = `dev_${hostname.padEnd(32, '0').slice(0, 32)}`): SelfcheckReportTerminal => ({ deviceId, hostname, department, tier: 'mynumber', runs });

describe('self-inspection report (自己点検結果報告書)', () => {
  it('covers the Japanese fiscal year: April 1 to March 31 in Japan time', () => {
    const { startMs, endMs } = fiscalYearBounds(2026);
    expect(new Date(startMs).toISOString()).toBe('2026-03-31T15:00:00.000Z');
    expect(new Date(endMs).toISOString()).toBe('2027-03-31T15:00:00.000Z');
    expect(fiscalYearLabel(2026)).toBe('令和8年度（2026年度）');
    expect(fiscalYearLabel(2019)).toBe('令和元年度（2019年度）');
    expect(formatJst('2026-11-25T00:30:00Z')).toBe('2026-11-25 09:30');
  });

  it('lists failing items first, then not inspected, unknown and passing, and takes each check from the latest run of the year', () => {
    const report = buildSelfcheckReport({
      fiscalYear: 2026,
      department: '税務課',
      generatedAt: '2027-04-02T00:00:00Z',
      terminals: [
        terminal('zei-pc-01', '税務課', [run('2026-05-01T00:00:00Z', { mfa: 'fail' }), run('2026-11-25T00:00:00Z', { 'disk-encryption': 'fail', 'time-sync': 'unknown' })]),
        terminal('zei-pc-02', '税務課', []),
        terminal('fuku-pc-01', '福祉課', [run('2026-11-25T00:00:00Z', { mfa: 'fail' })]),
        // Outside the fiscal year: ignored.
        terminal('zei-pc-03', '税務課', [run('2026-03-31T14:59:59Z', { mfa: 'fail' }), run('2027-03-31T15:00:00Z', { mfa: 'fail' })]),
      ],
    });
    expect(report.summary).toEqual({ terminals: 3, inspectedTerminals: 1, terminalsWithFailures: 3, failingItems: 1, unknownItems: 1, notInspectedItems: 2, invalidRuns: 0 });
    expect(report.rows.slice(0, 4).map((row) => [row.hostname, row.checkId, row.result])).toEqual([
      ['zei-pc-01', 'disk-encryption', 'fail'],
      ['zei-pc-02', null, 'not-inspected'],
      ['zei-pc-03', null, 'not-inspected'],
      ['zei-pc-01', 'time-sync', 'unknown'],
    ]);
    const mfa = report.rows.find((row) => row.hostname === 'zei-pc-01' && row.checkId === 'mfa');
    expect(mfa).toMatchObject({ result: 'pass', runs: 2, failures: 1, inspectedAt: '2026-11-25T00:00:00Z' });
    expect(report.rows.some((row) => row.department === '福祉課')).toBe(false);
  });

  it('writes CSV for Excel: BOM, CRLF, Japanese headers, quoted cells, formula injection neutralised', () => {
    const hostile = terminal('=HYPERLINK("http://x","y")', '総務課,"秘書"', [run('2026-06-01T00:00:00Z', { mfa: 'fail' }, { notEnrolled: ['yamada'] })], 'dev_0123456789abcdef0123456789abcdef');
    const { csv } = buildSelfcheckReport({ fiscalYear: 2026, department: null, generatedAt: '2026-12-01T00:00:00Z', terminals: [hostile] });
    expect(csv.startsWith('\ufeff年度,所属,端末名,端末ID,区分,点検項目ID,点検項目,根拠条項,結果,最終点検日時(JST),年度内点検回数,年度内不適合回数,証跡\r\n')).toBe(true);
    const lines = csv.slice(1).split('\r\n');
    expect(lines).toHaveLength(1 + SELFCHECK_IDS.length + 1);
    expect(lines[1]).toBe(
      `2026,"総務課,""秘書""","'=HYPERLINK(""http://x"",""y"")",dev_0123456789abcdef0123456789abcdef,マイナンバー利用事務系,mfa,多要素認証の登録と適用,6(3)① マイナンバー利用事務系：端末からの情報持ち出し不可設定・多要素認証,不適合,2026-06-01 09:00,1,1,"{""notEnrolled"":[""yamada""]}"`,
    );
    expect(csvCell('-1+1')).toBe("'-1+1");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell(3)).toBe('3');
  });

  it('renders printable HTML in Japanese with every terminal-supplied text escaped', () => {
    const hostname = '<img src=x onerror=alert(1)>';
    const { html } = buildSelfcheckReport({
      fiscalYear: 2026,
      department: '<script>alert(1)</script>',
      organisation: '今治市',
      generatedAt: '2027-04-02T00:00:00Z',
      terminals: [terminal(hostname, '<script>alert(1)</script>', [run('2026-06-01T00:00:00Z', { mfa: 'fail' }, { notEnrolled: ['"><svg onload=alert(1)>'] })])],
    });
    expect(html).toContain('<html lang="ja">');
    expect(html).toContain('今治市 自己点検結果報告書 &lt;script&gt;alert(1)&lt;/script&gt; 令和8年度（2026年度）');
    expect(html).toContain('対象期間: 2026-04-01 ～ 2027-03-31');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<svg');
    expect(html).toContain("default-src 'none'");
    // Failing rows first: the first data row is the failing mfa item.
    const firstRow = html.slice(html.indexOf('<tbody>\n<tr class='));
    expect(firstRow).toMatch(/^<tbody>\n<tr class="fail"><td class="result">不適合<\/td>/);
    expect(escapeHtml(`a&b<c>"d"'e'`)).toBe('a&amp;b&lt;c&gt;&quot;d&quot;&#39;e&#39;');
  });

  it('skips and counts runs that do not validate (a tampered or newer agent), and refuses a bad fiscal year', () => {
    const report = buildSelfcheckReport({
      fiscalYear: 2026,
      department: null,
      generatedAt: '2027-04-02T00:00:00Z',
      terminals: [terminal('pc', '課', [{ runId: 'x' }, { ...run('2026-06-01T00:00:00Z'), summary: { pass: 12, fail: 0, unknown: 0, overall: 'fail' } }, run('2026-07-01T00:00:00Z')])],
    });
    expect(report.summary.invalidRuns).toBe(2);
    expect(report.summary.inspectedTerminals).toBe(1);
    expect(() => buildSelfcheckReport({ fiscalYear: 26.5, department: null, generatedAt: '', terminals: [] })).toThrow(RangeError);
  });
});
