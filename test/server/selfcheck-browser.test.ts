import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminPaths, ApiPaths } from '../../shared/api.js';
import { EMPTY_HEAD, chainEntry } from '../../shared/journal.js';
import { SELFCHECK_DEFINITIONS, SELFCHECK_IDS, summarize, type SelfcheckCheck, type SelfcheckId } from '../../shared/selfcheck.js';
import { sha256Hex } from '../../server/crypto.js';
import { launchChromium, watchPage } from '../helpers/browser.js';
import { ROOT } from '../helpers/processes.js';
import { asSession, codeAt, createAccount, login, steppingClock, type TestAccount } from './admin-helpers.js';
import { adminPut, bootServer, enrolDevice, postJson, type TestServer } from './helpers.js';

/**
 * The self-inspection in headless Chromium (Debian's chromium via playwright-core) against the real
 * app listening on loopback: the terminal page shows the latest run as text (hostile evidence
 * literal, no dialog, no CSP violation), queues a run, and the printable report renders with its
 * inline style allowed by hash — and nothing else.
 */

const HOSTILE_HOST = '<img src=x onerror=alert(1)>"><script>alert(2)</script>';
const HOSTILE_EVIDENCE = '<img src=x onerror=alert(3)>';

let server: TestServer;
let browser: Browser;
let context: BrowserContext;
let base: string;
let deviceId: string;
let account: TestAccount;
let clock: ReturnType<typeof steppingClock>;
const dialogs: string[] = [];
const errors: string[] = [];

function runData(finishedAt: string, results: Partial<Record<SelfcheckId, 'pass' | 'fail' | 'unknown'>>): Record<string, unknown> {
  const checks: SelfcheckCheck[] = SELFCHECK_IDS.map((id) => ({ id, result: results[id] ?? 'pass', clause: SELFCHECK_DEFINITIONS[id].clause, evidence: { note: HOSTILE_EVIDENCE } }));
  return { runId: `${Date.parse(finishedAt)}-1`, trigger: 'daily', startedAt: finishedAt, finishedAt, tier: 'mynumber', policyVersion: 3, policyOrigin: 'signed', agentVersion: '0.1.0', platform: 'linux', summary: summarize(checks), checks };
}

beforeAll(async () => {
  clock = steppingClock();
  server = await bootServer({ clock, dashboardDir: path.join(ROOT, 'dist/server/dashboard') });
  // The initial password changed here; the browser logs in with the new one (a later TOTP step).
  account = await createAccount(server, 'tanaka', 'admin', clock());
  const first = await login(server, account, clock());
  expect((await asSession(server, first, 'POST', AdminPaths.password, { currentPassword: account.password, newPassword: 'tanaka-new-password-1' })).statusCode).toBe(200);
  account.password = 'tanaka-new-password-1';
  clock.advance(30);
  const enrolled = await enrolDevice(server, { hostname: HOSTILE_HOST });
  deviceId = enrolled.deviceId;
  expect((await adminPut(server, `${ApiPaths.adminDevices}/${deviceId}/department`, { department: '税務課' })).statusCode).toBe(200);
  const { entry } = chainEntry(EMPTY_HEAD, { time: '2026-11-25T00:00:00.000Z', tz: '+09:00', type: 'selfcheck.result', data: runData('2026-11-24T23:00:00.000Z', { mfa: 'fail' }) }, sha256Hex);
  expect((await postJson(server.app, ApiPaths.events, { entries: [entry] }, enrolled.credential)).statusCode).toBe(200);

  base = await server.app.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium();
  context = await browser.newContext({ locale: 'ja-JP', timezoneId: 'Asia/Tokyo', viewport: { width: 1280, height: 900 } });
  // Log in from the page itself, so the browser holds the session cookie as it would after the form.
  const page = await context.newPage();
  await page.goto(base);
  const status = await page.evaluate(
    async ([url, body]) => (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, credentials: 'same-origin' })).status,
    [AdminPaths.login, JSON.stringify({ user: account.user, password: account.password, code: codeAt(account, clock()) })] as const,
  );
  expect(status).toBe(200);
  await page.close();
}, 60_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await server?.cleanup();
});

async function open(url: string): Promise<Page> {
  const page = await context.newPage();
  watchPage(page, { into: { dialogs, errors } });
  await page.goto(url);
  return page;
}

describe('self-inspection in the dashboard (Chromium)', () => {
  it('shows the department and the latest run as text, queues a run, and opens the report with its style and no violation', async () => {
    const page = await open(`${base}/#/terminals/${deviceId}`);
    await page.waitForSelector('#terminal-selfcheck table');
    expect(await page.textContent('#terminal-title')).toBe(HOSTILE_HOST);
    expect(await page.textContent('#terminal-department')).toBe('税務課');
    expect(await page.textContent('#selfcheck-overall')).toBe('不適合');
    expect(await page.locator('#terminal-selfcheck tr[data-check="mfa"][data-result="fail"]').count()).toBe(1);
    expect(await page.locator('#terminal-selfcheck tr[data-check="mfa"] td').nth(1).textContent()).toBe(SELFCHECK_DEFINITIONS.mfa.label.ja);
    expect(await page.locator('#terminal-selfcheck td.data', { hasText: HOSTILE_EVIDENCE }).count()).toBe(12);
    expect(await page.locator('#terminal-selfcheck img').count()).toBe(0);
    const csvHref = await page.getAttribute('#selfcheck-report-csv', 'href');
    expect(csvHref).toBe(`/api/v1/admin/reports/selfcheck?fiscalYear=2026&format=csv&department=${encodeURIComponent('税務課')}`);

    // Run now (role admin): queued and listed with the commands.
    await page.click('#selfcheck-run');
    await page.waitForSelector('#terminal-commands tr[data-state="queued"]');
    expect(await page.locator('#terminal-commands tr[data-state="queued"] td').nth(1).textContent()).toBe('selfcheck');

    // The printable report: the inline <style> applies (hash-allowed), terminal text is literal.
    const reportHref = await page.getAttribute('#selfcheck-report-html', 'href');
    const report = await open(`${base}${reportHref}`);
    await report.waitForSelector('table.results');
    expect(await report.evaluate(() => getComputedStyle(document.querySelector('th')!).backgroundColor)).toBe('rgb(232, 232, 232)');
    expect(await report.locator('table.results td', { hasText: HOSTILE_HOST }).count()).toBeGreaterThan(0);
    expect(await report.locator('table.results tbody tr').first().getAttribute('class')).toBe('fail');
    expect(await report.locator('img, script').count()).toBe(0);

    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
  }, 60_000);
});
