import fs from 'node:fs/promises';
import path from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminDeviceDetailSchema, ApiPaths } from '../../shared/api.js';
import { EMPTY_HEAD, chainEntry, type JournalEntry } from '../../shared/journal.js';
import { sha256Hex } from '../../server/crypto.js';
import { ARTIFACTS, launchChromium, watchPage } from '../helpers/browser.js';
import { ROOT } from '../helpers/processes.js';
import { dashboardContext, readyAccount as readyAdminAccount, steppingClock, type TestAccount } from '../server/admin-helpers.js';
import { adminGet, bootServer, enrolDevice, postJson, type TestServer } from '../server/helpers.js';

/**
 * A terminal's page in headless Chromium against the real app on loopback: an admin acknowledges
 * the open violations with a comment (only those received up to the page's load; one that arrives
 * later stays open), sees who, when and why on the page and a lower count in the list, sets,
 * clears and sets again the terminal's department (in the admin trail), and exports the audit CSV
 * of that department only. An auditor sees neither form. Hostile text stays text. Screenshot:
 * test-artifacts/dashboard-terminal-review.png.
 */

const HOSTILE_HOST = '<img src=x onerror=alert(1)>"><script>alert(2)</script>';
const HOSTILE_DEVICE = '<img src=x onerror=alert(3)>';
const HOSTILE_COMMENT = '<img src=x onerror=alert(4)> 利用者に注意済み';

let server: TestServer;
let browser: Browser;
let base: string;
let deviceId: string;
let credential: string;
let head: { seq: number; hash: string } = EMPTY_HEAD;
let otherDeviceId: string;
let clock: ReturnType<typeof steppingClock>;

/** Appends entries of the given types to the terminal's chain through the events API. */
async function upload(types: readonly string[]): Promise<void> {
  const batch: JournalEntry[] = [];
  let previous = head;
  for (const type of types) {
    const data = type === 'device.blocked' ? { key: '1-2', device: { id: '0930:6545', serial: 'S1', name: HOSTILE_DEVICE, manufacturer: 'TOSHIBA' }, decision: 'block', rule: { kind: 'implicit' } } : {};
    const { entry } = chainEntry(previous, { time: new Date(Date.UTC(2026, 10, 24, 1, 0, previous.seq + 1)).toISOString(), tz: '+09:00', type, data }, sha256Hex);
    batch.push(entry);
    previous = entry;
  }
  expect((await postJson(server.app, ApiPaths.events, { entries: batch }, credential)).statusCode).toBe(200);
  head = batch.at(-1)!;
}

/** A browser context logged in as `account`. */
const loggedIn = (account: TestAccount): Promise<BrowserContext> => dashboardContext(browser, base, account, clock);
/** A new account whose initial password was changed. */
const readyAccount = async (user: string, role: 'admin' | 'auditor'): Promise<TestAccount> => (await readyAdminAccount(server, user, role, clock)).account;

beforeAll(async () => {
  clock = steppingClock();
  server = await bootServer({ clock, dashboardDir: path.join(ROOT, 'dist/server/dashboard') });
  const enrolled = await enrolDevice(server, { hostname: HOSTILE_HOST });
  deviceId = enrolled.deviceId;
  credential = enrolled.credential;
  // seq 1 started, 2 blocked, 3 network violation, 4 blocked: three violations.
  await upload(['agent.started', 'device.blocked', 'network.violation', 'device.blocked']);
  // Another terminal, with events, in no department.
  const other = await enrolDevice(server, { hostname: 'soumu-pc-900' });
  otherDeviceId = other.deviceId;
  const { entry } = chainEntry(EMPTY_HEAD, { time: '2026-11-24T02:00:00.000Z', tz: '+09:00', type: 'device.blocked', data: {} }, sha256Hex);
  expect((await postJson(server.app, ApiPaths.events, { entries: [entry] }, other.credential)).statusCode).toBe(200);
  base = await server.app.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.cleanup();
});

describe('reviewing a terminal in the dashboard (Chromium)', () => {
  it('acknowledges the violations seen with a comment, sets the department, and exports that department’s CSV', async () => {
    const admin = await readyAccount('tanaka', 'admin');
    const context = await loggedIn(admin);
    const page = await context.newPage();
    const seen = watchPage(page, { ignoreFailedLoads: true });
    try {
      await page.goto(`${base}/#/terminals/${deviceId}`);
      await page.waitForSelector('#violation-ack-form');
      expect(await page.textContent('#terminal-title')).toBe(HOSTILE_HOST);
      expect(await page.textContent('#terminal-violations')).toBe('未確認 3 件 (累計 3 件)');
      expect(await page.textContent('#violations-open')).toBe('未確認の違反: 3 件 (受信した違反は累計 3 件)');
      expect(await page.locator('#violation-acks-none').count()).toBe(1);

      // A violation arrives after the page was loaded: acknowledging covers what the page showed only.
      await upload(['device.blocked']);

      // A comment is required.
      await page.click('#violation-ack');
      expect(await page.textContent('#violation-status')).toBe('コメントを入力してください。');
      await page.fill('#violation-comment', HOSTILE_COMMENT);
      await page.click('#violation-ack');
      const ackRow = page.locator('#terminal-violations-panel tr[data-ack]');
      await expect.poll(() => ackRow.count(), { timeout: 10_000 }).toBe(1);
      expect(await ackRow.locator('.ack-actor').textContent()).toBe('tanaka');
      expect(await ackRow.locator('.ack-comment').textContent()).toBe(HOSTILE_COMMENT);
      expect(await ackRow.locator('.ack-range').textContent()).toBe('1–4');
      expect(await ackRow.locator('.ack-count').textContent()).toBe('3');
      expect(await ackRow.locator('.ack-at').textContent()).toMatch(/2026/);
      expect(await ackRow.locator('img').count()).toBe(0);
      expect(await page.textContent('#violations-open')).toBe('未確認の違反: 1 件 (受信した違反は累計 4 件)');
      expect(await page.textContent('#violations-acked')).toBe('seq 4 までの違反は確認済みです。');
      expect(await page.textContent('#terminal-violations')).toBe('未確認 1 件 (累計 4 件)');
      // The timeline tells acknowledged violations from open ones.
      await page.waitForSelector('#terminal-events tr[data-seq="5"]');
      expect(await page.locator('#terminal-events tr[data-seq="5"] td').nth(3).textContent()).toBe('違反');
      expect(await page.locator('#terminal-events tr[data-seq="2"] td').nth(3).textContent()).toBe('違反 (確認済み)');
      await fs.mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-terminal-review.png'), fullPage: true });

      // The terminal list counts the open one only.
      await page.goto(`${base}/#/terminals`);
      const listRow = page.locator(`tr[data-device="${deviceId}"]`);
      await expect.poll(() => listRow.count(), { timeout: 10_000 }).toBe(1);
      expect(await listRow.locator('td').nth(7).textContent()).toBe('1');

      // Department: set, refuse an empty one, clear, set again.
      await page.goto(`${base}/#/terminals/${deviceId}`);
      await page.waitForSelector('#department-form');
      expect(await page.textContent('#terminal-department')).toBe('—');
      await page.fill('#department-input', '総務課');
      await page.click('#department-save');
      await expect.poll(() => page.textContent('#terminal-department'), { timeout: 10_000 }).toBe('総務課');
      expect(await page.textContent('#department-status')).toBe('所属を「総務課」に設定しました。');
      await expect.poll(() => page.getAttribute('#selfcheck-report-csv', 'href'), { timeout: 10_000 }).toContain(`department=${encodeURIComponent('総務課')}`);
      await page.fill('#department-input', '   ');
      await page.click('#department-save');
      expect(await page.textContent('#department-status')).toBe('所属名を入力してください (外すときは「所属を解除」)。');
      expect(await page.textContent('#terminal-department')).toBe('総務課');
      await page.click('#department-clear');
      await expect.poll(() => page.textContent('#terminal-department'), { timeout: 10_000 }).toBe('—');
      expect(await page.textContent('#department-status')).toBe('所属を解除しました。');
      await page.fill('#department-input', '税務課');
      await page.press('#department-input', 'Enter');
      await expect.poll(() => page.textContent('#terminal-department'), { timeout: 10_000 }).toBe('税務課');
      expect(AdminDeviceDetailSchema.parse((await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}`)).json()).department).toBe('税務課');
      const trail = (await adminGet(server, `${ApiPaths.adminActions}?limit=50`)).json<{ actions: { actor: string; action: string; deviceId: string | null; detail: Record<string, unknown> }[] }>().actions;
      expect(trail.filter((action) => action.action === 'device.department').map((action) => [action.actor, action.deviceId, action.detail])).toEqual([
        ['tanaka', deviceId, { department: '税務課', previous: null }],
        ['tanaka', deviceId, { department: null, previous: '総務課' }],
        ['tanaka', deviceId, { department: '総務課', previous: null }],
      ]);
      expect(trail.filter((action) => action.action === 'violations.acknowledged')).toEqual([
        expect.objectContaining({ actor: 'tanaka', deviceId, detail: { comment: HOSTILE_COMMENT, fromSeq: 0, upToSeq: 4, violations: 3 } }),
      ]);

      // English on request.
      await page.click('#language');
      await expect.poll(() => page.textContent('#violation-ack')).toBe('Acknowledge');
      expect(await page.textContent('#department-save')).toBe('Save department');
      expect(await page.textContent('#violations-open')).toBe('Open violations: 1 (4 received in all)');
      await page.click('#language');

      // The audit export of one department: only its terminal's events.
      await page.goto(`${base}/#/actions`);
      await page.waitForSelector('#audit-department');
      await page.fill('#audit-from', '2026-11-01');
      await page.dispatchEvent('#audit-from', 'change');
      await page.fill('#audit-to', '2026-11-30');
      await page.dispatchEvent('#audit-to', 'change');
      await page.fill('#audit-department', '税務課');
      const href = (await page.getAttribute('#audit-csv', 'href'))!;
      expect(href).toContain(`department=${encodeURIComponent('税務課')}`);
      const csv = await page.evaluate(async (route) => {
        const response = await fetch(route);
        return { status: response.status, text: await response.text() };
      }, href);
      expect(csv.status).toBe(200);
      const lines = csv.text.split('\r\n').filter((line) => line !== '').slice(1);
      expect(lines).toHaveLength(5);
      for (const line of lines) expect(line).toContain(`"${deviceId}"`);
      expect(csv.text).not.toContain(otherDeviceId);

      expect(seen.dialogs).toEqual([]);
      expect(seen.errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('shows an auditor the counts and the acknowledgements, without the acknowledge or department forms', async () => {
    const auditor = await readyAccount('kansa', 'auditor');
    const context = await loggedIn(auditor);
    const page = await context.newPage();
    const seen = watchPage(page, { ignoreFailedLoads: true });
    try {
      await page.goto(`${base}/#/terminals/${deviceId}`);
      await page.waitForSelector('#violations-open');
      await page.waitForSelector('#terminal-violations-panel tr[data-ack]');
      expect(await page.locator('#violation-ack-form, #violation-ack, #department-form, #department-save').count()).toBe(0);
      expect(await page.locator('#terminal-violations-panel tr[data-ack] .ack-comment').textContent()).toBe(HOSTILE_COMMENT);
      // The server refuses the auditor's acknowledgement anyway.
      const refused = await page.evaluate(
        async (route) => (await fetch(route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"comment":"x"}' })).status,
        `${ApiPaths.adminDevices}/${deviceId}/violations/acknowledge`,
      );
      expect(refused).toBe(403);
      expect(seen.dialogs).toEqual([]);
      expect(seen.errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
