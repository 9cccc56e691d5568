import path from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiPaths } from '../../shared/api.js';
import { launchChromium, watchPage } from '../helpers/browser.js';
import { ROOT } from '../helpers/processes.js';
import { dashboardContext, readyAccount as readyAdminAccount, steppingClock, type TestAccount } from '../server/admin-helpers.js';
import { adminGet, adminPut, agentStatus, bootServer, enrolDevice, policyBody, postJson, type TestServer } from '../server/helpers.js';

/**
 * The policies page's department (group) policies and the terminal page's tier, in headless
 * Chromium against the real app on loopback: an admin chooses a tier and a department, sees the
 * rule error with line and column, publishes the group policy, finds it in the tier's list, deletes
 * it; changes a terminal's tier. An auditor sees neither the delete button nor the tier form.
 */

const DEPARTMENT = '総務課<b>';

let server: TestServer;
let browser: Browser;
let base: string;
let deviceId: string;
let clock: ReturnType<typeof steppingClock>;

/** A browser context logged in as `account`. */
const loggedIn = (account: TestAccount): Promise<BrowserContext> => dashboardContext(browser, base, account, clock);
/** A new account whose initial password was changed. */
const readyAccount = async (user: string, role: 'admin' | 'auditor'): Promise<TestAccount> => (await readyAdminAccount(server, user, role, clock)).account;

beforeAll(async () => {
  clock = steppingClock();
  server = await bootServer({ clock, dashboardDir: path.join(ROOT, 'dist/server/dashboard') });
  const enrolled = await enrolDevice(server, { hostname: 'soumu-pc-001' });
  deviceId = enrolled.deviceId;
  expect((await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus({ tier: 'lgwan' }) }, enrolled.credential)).statusCode).toBe(200);
  expect((await adminPut(server, `${ApiPaths.adminPolicies}/lgwan`, policyBody())).statusCode).toBe(200);
  base = await server.app.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.cleanup();
});

describe('group policies and terminal tiers in the dashboard (Chromium)', () => {
  it('publishes a department’s policy (errors with line and column first), lists it, deletes it; changes a terminal’s tier', async () => {
    const admin = await readyAccount('tanaka', 'admin');
    const context = await loggedIn(admin);
    const page = await context.newPage();
    const seen = watchPage(page, { ignoreFailedLoads: true });
    try {
      await page.goto(`${base}/#/policies`);
      await page.waitForSelector('#policy-editor');
      await page.click('#policy-tier-lgwan');
      await expect.poll(() => page.getAttribute('#policy-tier-lgwan', 'aria-pressed'), { timeout: 10_000 }).toBe('true');
      await expect.poll(() => page.textContent('#policy-groups'), { timeout: 10_000 }).toContain('所属別のポリシーはありません');
      await page.fill('#policy-department', DEPARTMENT);
      await page.click('#policy-department-show');
      await expect.poll(() => page.textContent('#policy-group-heading'), { timeout: 10_000 }).toBe(`所属「${DEPARTMENT}」のポリシー`);
      await expect.poll(() => page.textContent('#policy-version'), { timeout: 10_000 }).toContain('この所属のポリシーはありません');
      // The editor starts from the tier's document.
      await expect.poll(async () => (await page.inputValue('#policy-editor')).includes('総務課 暗号化USB #12'), { timeout: 10_000 }).toBe(true);
      const document = JSON.parse(await page.inputValue('#policy-editor')) as { usb: { rules: string[] } };

      await page.fill('#policy-editor', JSON.stringify({ ...document, usb: { ...document.usb, rules: ['block', 'allow id 0930:65x5'] } }, null, 2));
      await page.click('#policy-publish');
      await expect.poll(() => page.textContent('#policy-problems'), { timeout: 10_000 }).toMatch(/usb\.rules\[1\]: line 2, column \d+/);

      await page.fill('#policy-editor', JSON.stringify({ ...document, mode: 'audit' }, null, 2));
      await page.click('#policy-publish');
      await expect.poll(() => page.textContent('#policy-problems'), { timeout: 10_000 }).toBe('版 3 として公開しました。');
      await expect.poll(() => page.locator('#policy-groups tbody tr').count(), { timeout: 10_000 }).toBe(1);
      expect(await page.textContent('#policy-groups tbody tr')).toContain(DEPARTMENT);
      const group = await adminGet(server, `${ApiPaths.adminPolicies}/lgwan/groups/${encodeURIComponent(DEPARTMENT)}`);
      expect(group.json()).toMatchObject({ department: DEPARTMENT, version: 3, createdBy: 'tanaka', policy: { mode: 'audit' } });

      // Back to the tier, then to the group from the list.
      await page.click('#policy-department-clear');
      await expect.poll(() => page.locator('#policy-group-heading').count(), { timeout: 10_000 }).toBe(0);
      await expect.poll(() => page.textContent('#policy-version'), { timeout: 10_000 }).toBe('2');
      await expect.poll(() => page.locator('#policy-delete').count()).toBe(0);
      await page.click('#policy-groups tbody a');
      await expect.poll(() => page.textContent('#policy-version'), { timeout: 10_000 }).toBe('3');

      await page.click('#policy-delete');
      await expect.poll(() => page.textContent('#policy-problems'), { timeout: 10_000 }).toBe('削除しました (版 4)。この所属の端末は系統のポリシーに戻ります。');
      await expect.poll(() => page.textContent('#policy-groups'), { timeout: 10_000 }).toContain('所属別のポリシーはありません');
      await expect.poll(() => page.locator('#policy-history tbody tr').count(), { timeout: 10_000 }).toBe(2);
      expect(await page.textContent('#policy-history tbody tr')).toContain('削除');

      // The terminal's tier.
      await page.goto(`${base}/#/terminals/${deviceId}`);
      await page.waitForSelector('#tier-form');
      expect(await page.textContent('#terminal-tier')).toBe('LGWAN接続系');
      await page.selectOption('#tier-select', 'internet');
      await page.click('#tier-save');
      await expect.poll(() => page.textContent('#tier-status'), { timeout: 10_000 }).toContain('インストーラー設定');
      expect(await page.textContent('#terminal-tier')).toBe('インターネット接続系');
      expect((await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}`)).json()).toMatchObject({ tier: 'internet' });
      // Reloaded: the terminal still reports lgwan (its installer config): shown as a mismatch.
      await page.reload();
      await expect.poll(() => page.textContent('#terminal-tier-reported'), { timeout: 10_000 }).toContain('LGWAN接続系');

      const trail = (await adminGet(server, `${ApiPaths.adminActions}?limit=20`)).json<{ actions: { action: string; actor: string }[] }>().actions.map((a) => `${a.actor} ${a.action}`);
      for (const expected of ['tanaka policy.group.published', 'tanaka policy.group.deleted', 'tanaka device.tier']) expect(trail).toContain(expected);
      expect(seen.dialogs).toEqual([]);
      expect(seen.errors).toEqual([]);
    } finally {
      await context.close();
    }

    // An auditor: no delete button, no tier form.
    const auditor = await readyAccount('kansa', 'auditor');
    const auditorContext = await loggedIn(auditor);
    const auditorPage = await auditorContext.newPage();
    try {
      await auditorPage.goto(`${base}/#/policies`);
      await auditorPage.waitForSelector('#policy-editor');
      await auditorPage.fill('#policy-department', '人事課');
      await auditorPage.click('#policy-department-show');
      await expect.poll(() => auditorPage.locator('#policy-group-heading').count(), { timeout: 10_000 }).toBe(1);
      expect(await auditorPage.locator('#policy-publish, #policy-delete').count()).toBe(0);
      await auditorPage.goto(`${base}/#/terminals/${deviceId}`);
      await auditorPage.waitForSelector('#terminal-tier');
      expect(await auditorPage.locator('#tier-form').count()).toBe(0);
    } finally {
      await auditorContext.close();
    }
  });
});
