import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Secret } from 'otpauth';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiPaths, EnrollResponseSchema } from '../../shared/api.js';
import { EMPTY_HEAD } from '../../shared/journal.js';
import { DeviceRequestSchema, type DeviceRequest } from '../../shared/requests.js';
import { builtInPolicyDocument } from '../../agent/policy/profiles.js';
import { adminTotpCode } from '../../server/admin-accounts.js';
import { ARTIFACTS, launchChromium, watchPage } from '../helpers/browser.js';
import { SERVER_CLI, cli, enrollmentToken, killAll, startServer } from '../helpers/processes.js';
import { makeTempDir } from '../server/helpers.js';

/**
 * The requests page (申請 → 承認/却下) in headless Chromium against a real server process: hostile
 * terminal-supplied device name and purpose shown literally (no dialog, no element made of them),
 * an approval narrowed to read-only, a rejection with a reason, an auditor with no buttons, and the
 * audit CSV export link (UTF-8 BOM + header row). Screenshot: test-artifacts/dashboard-requests.png.
 */

const HOSTILE_NAME = '<img src=x onerror=alert(1)>';
const HOSTILE_PURPOSE = '"><script>alert(2)</script>';
const HOSTILE_SERIAL = '<svg onload=alert(3)>';

let base: string;
let dataDir: string;
let url: string;
let adminToken: string;
let browser: Browser;
let credential: string;

async function api(method: string, route: string, body?: unknown, bearer = adminToken): Promise<Response> {
  return fetch(new URL(route, url), {
    method,
    headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function createAdmin(user: string, role: 'admin' | 'auditor'): Promise<{ user: string; password: string; secret: Uint8Array }> {
  const result = await cli(SERVER_CLI, ['create-admin', '--data', dataDir, '--user', user, '--role', role]);
  if (result.code !== 0) throw new Error(`create-admin failed: ${result.stderr}`);
  const password = /^initial password: (.+)$/m.exec(result.stdout)![1]!;
  const secret = /^TOTP secret \(base32\): (.+)$/m.exec(result.stdout)![1]!;
  return { user, password, secret: Secret.fromBase32(secret).bytes };
}

async function logIn(page: Page, account: { user: string; password: string; secret: Uint8Array }): Promise<void> {
  await page.waitForSelector('#login-form');
  await page.fill('#login-user', account.user);
  await page.fill('#login-password', account.password);
  await page.fill('#login-code', adminTotpCode(account.secret, Date.now()));
  await page.click('#login-submit');
  await page.waitForSelector('#password-form');
  const next = `${account.user}-a-new-passphrase`;
  await page.fill('#password-current', account.password);
  await page.fill('#password-new', next);
  await page.fill('#password-again', next);
  await page.click('#password-submit');
  await page.waitForSelector('#terminal-counts:not(:empty)');
}

async function submitRequest(name: string, purpose: string, access: 'read-only' | 'read-write' = 'read-write'): Promise<string> {
  const id = `req_${crypto.randomBytes(12).toString('hex')}`;
  const now = Date.now();
  const response = await api(
    'POST',
    ApiPaths.requests,
    {
      id,
      user: 'tanaka',
      device: { vendorId: '0930', productId: '6545', serial: HOSTILE_SERIAL, name, hash: 'kq9Wd1b0Yv2Xq9p8yVb7lCk3n2m1QwErTyUiOpAsDfG=', parentHash: 'p', viaPort: '1-1', connectType: 'hotplug', interfaces: ['08:06:50'] },
      purpose,
      from: new Date(now - 60_000).toISOString(),
      until: new Date(now + 8 * 3_600_000).toISOString(),
      access,
      submittedAt: new Date(now).toISOString(),
    },
    credential,
  );
  expect(response.status, await response.clone().text()).toBe(201);
  return id;
}

async function requestById(id: string): Promise<DeviceRequest> {
  const { requests } = (await (await api('GET', `${ApiPaths.adminRequests}?limit=500`)).json()) as { requests: unknown[] };
  const found = requests.map((row) => DeviceRequestSchema.parse(row)).find((row) => row.id === id);
  if (found === undefined) throw new Error(`no request ${id}`);
  return found;
}

beforeAll(async () => {
  base = await makeTempDir('sekimori-dashboard-requests-');
  dataDir = path.join(base, 'server');
  ({ url } = await startServer(dataDir));
  adminToken = (await fs.readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
  const token = await enrollmentToken(dataDir);
  const enrolled = EnrollResponseSchema.parse(
    await (
      await fetch(new URL(ApiPaths.enroll, url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token, host: { hostname: 'soumu-pc-007', os: 'linux', arch: 'x64', hardwareId: 'requests-hw', agentVersion: '0.1.0' } }),
      })
    ).json(),
  );
  credential = enrolled.credential;
  const status = { agentVersion: '0.1.0', enforcement: { state: 'enforced' }, lockState: 'unlocked', tier: 'lgwan', policyVersion: null, journal: { length: 0, headHash: EMPTY_HEAD.hash } };
  expect((await api('POST', ApiPaths.heartbeat, { status }, credential)).status).toBe(200);
  const published = await api('PUT', `${ApiPaths.adminPolicies}/lgwan`, builtInPolicyDocument('lgwan'));
  expect(published.status, await published.clone().text()).toBeLessThan(300);
  browser = await launchChromium();
  await fs.mkdir(ARTIFACTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await killAll();
  await fs.rm(base, { recursive: true, force: true });
});

describe('the requests page (申請) in headless Chromium with a real server', () => {
  it('shows hostile requests literally, approves one narrowed to read-only, rejects one with a reason, and links the audit CSV', async () => {
    const hostile = await submitRequest(HOSTILE_NAME, HOSTILE_PURPOSE);
    const other = await submitRequest('TransMemory', '会議資料の受け取り');
    const admin = await createAdmin('tanaka-admin', 'admin');
    const context = await browser.newContext({ locale: 'ja-JP', timezoneId: 'Asia/Tokyo', viewport: { width: 1400, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    // Refused calls (401 before login) are expected; CSP refusals and script errors are not.
    const { dialogs, errors } = watchPage(page, { ignoreFailedLoads: true });
    try {
      await page.goto(`${url}/dashboard/`);
      await logIn(page, admin);
      await page.click('nav a[href="#/requests"]');
      const row = page.locator(`tr[data-request="${hostile}"]`);
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
      expect(await page.getAttribute('#requests-tab-pending', 'aria-pressed')).toBe('true');
      expect(await page.textContent('h1')).toBe('USB機器の利用申請');
      expect(await row.locator('.usb-name').textContent()).toBe(HOSTILE_NAME);
      expect(await row.locator('.usb-serial').textContent()).toBe(HOSTILE_SERIAL);
      expect(await row.locator('.usb-id').textContent()).toBe('0930:6545');
      expect(await row.locator('.request-purpose').textContent()).toBe(HOSTILE_PURPOSE);
      expect(await row.locator('.request-hostname').textContent()).toBe('soumu-pc-007');
      expect(await row.locator('.request-user').textContent()).toBe('tanaka');
      expect(await row.locator('.request-access').textContent()).toBe('読み書き');
      expect(await row.locator('img, script, svg, iframe').count()).toBe(0);
      expect(await page.locator('main img, main script, main svg').count()).toBe(0);
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-requests.png'), fullPage: true });

      // Approve, ending 2 hours from now and narrowed to read-only.
      await row.locator('.request-approve').click();
      const end = new Date(Date.now() + 2 * 3_600_000);
      const local = new Date(end.getTime() + 9 * 3_600_000).toISOString().slice(0, 16); // the page runs in Asia/Tokyo
      await row.locator('.approve-until').fill(local);
      await row.locator('.approve-readonly').check();
      await row.locator('.approve-comment').fill('会議の間だけ');
      await row.locator('.approve-confirm').click();
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(0);
      const approved = await requestById(hostile);
      expect(approved).toMatchObject({ state: 'approved', approvedAccess: 'read-only', decidedBy: 'tanaka-admin', reason: '会議の間だけ' });
      expect(Math.abs(Date.parse(approved.approvedUntil!) - Math.floor(end.getTime() / 60_000) * 60_000)).toBeLessThan(1000);

      // Reject: the reason is required.
      const otherRow = page.locator(`tr[data-request="${other}"]`);
      await otherRow.locator('.request-reject').click();
      await otherRow.locator('.reject-confirm').click();
      expect(await otherRow.locator('.request-status').textContent()).toBe('却下の理由を入力してください。');
      await otherRow.locator('.reject-reason').fill('私物のUSBメモリは使用できません');
      await otherRow.locator('.reject-confirm').click();
      await expect.poll(() => otherRow.count(), { timeout: 10_000 }).toBe(0);
      expect(await requestById(other)).toMatchObject({ state: 'rejected', reason: '私物のUSBメモリは使用できません' });

      // The approved tab shows the hostile one (still text) with a revoke button.
      await page.click('#requests-tab-approved');
      const approvedRow = page.locator(`tr[data-request="${hostile}"]`);
      await expect.poll(() => approvedRow.count(), { timeout: 10_000 }).toBe(1);
      expect(await approvedRow.locator('.request-approved-access').textContent()).toBe('読み取りのみ');
      expect(await approvedRow.locator('.request-revoke').count()).toBe(1);
      expect(await approvedRow.locator('img, script').count()).toBe(0);
      await page.click('#requests-tab-rejected');
      await expect.poll(() => page.locator(`tr[data-request="${other}"] .request-reason`).textContent(), { timeout: 10_000 }).toBe('理由: 私物のUSBメモリは使用できません');

      // English on request.
      await page.click('#language');
      await expect.poll(() => page.textContent('#requests-tab-rejected')).toBe('Rejected');
      expect(await page.textContent('nav a[href="#/requests"]')).toBe('Requests');
      await page.click('#language');

      // The audit CSV: a same-origin link, downloaded with the session cookie.
      await page.click('nav a[href="#/actions"]');
      await page.waitForSelector('#audit-csv');
      const href = (await page.getAttribute('#audit-csv', 'href'))!;
      expect(href).toMatch(/^\/api\/v1\/admin\/audit\/events\.csv\?from=\d{4}-\d{2}-01&to=\d{4}-\d{2}-\d{2}$/);
      const csv = await page.evaluate(async (route) => {
        const response = await fetch(route);
        return { status: response.status, type: response.headers.get('content-type'), bytes: Array.from(new Uint8Array(await response.arrayBuffer())) };
      }, href);
      expect(csv.status).toBe(200);
      expect(csv.type).toContain('text/csv');
      expect(csv.bytes.slice(0, 3)).toEqual([0xef, 0xbb, 0xbf]);
      const text = Buffer.from(csv.bytes.slice(3)).toString('utf8');
      expect(text.split('\r\n')[0]).toMatch(/^"time_jst","time_utc","received_at_utc","device_id","hostname","seq","type",/);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#audit-csv')]);
      const saved = await fs.readFile(await download.path());
      expect([...saved.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);

      expect(dialogs).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 120_000);

  it('pages a long list with 「さらに表示」 and revokes an approved request, whose state changes on the page', async () => {
    // More pending requests than one page (100), and one approved.
    for (let i = 0; i < 101; i += 1) await submitRequest(`Stick ${i}`, `資料 ${i}`);
    const toRevoke = await submitRequest('Revocable', '一時的な持ち出し', 'read-only');
    const approve = await api('POST', `${ApiPaths.adminRequests}/${toRevoke}/approve`, {});
    expect(approve.status, await approve.clone().text()).toBe(200);
    let pending = 0;
    let before: string | null = null;
    do {
      const answer = (await (await api('GET', `${ApiPaths.adminRequests}?state=pending&limit=500${before === null ? '' : `&before=${encodeURIComponent(before)}`}`)).json()) as { requests: unknown[]; next: string | null };
      pending += answer.requests.length;
      before = answer.next;
    } while (before !== null);
    expect(pending).toBeGreaterThan(100);

    const admin = await createAdmin('revoke-admin', 'admin');
    const context = await browser.newContext({ locale: 'ja-JP', timezoneId: 'Asia/Tokyo', viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    // Refused calls (401 before login) are expected; CSP refusals and script errors are not.
    const { dialogs, errors } = watchPage(page, { ignoreFailedLoads: true });
    try {
      await page.goto(`${url}/dashboard/`);
      await logIn(page, admin);
      await page.click('nav a[href="#/requests"]');
      const rows = page.locator('#requests-list tr[data-request]');
      await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(100);
      expect(await page.isVisible('#requests-more')).toBe(true);
      expect(await page.textContent('#requests-more')).toBe('さらに表示');
      await page.click('#requests-more');
      await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(pending);
      expect(await page.isHidden('#requests-more')).toBe(true);
      // Every request once, newest first.
      const ids = await rows.evaluateAll((elements) => elements.map((element) => element.getAttribute('data-request')));
      expect(new Set(ids).size).toBe(pending);

      // Revoke the approved one: asked in the row, then gone from the approved tab, listed as revoked.
      await page.click('#requests-tab-approved');
      const approvedRow = page.locator(`tr[data-request="${toRevoke}"]`);
      await expect.poll(() => approvedRow.getAttribute('data-state'), { timeout: 10_000 }).toBe('approved');
      await approvedRow.locator('.request-revoke').click();
      expect(await approvedRow.locator('.request-status').textContent()).toBe('この承認を取り消しますか?端末の次のポリシーから例外が外れます。');
      await approvedRow.locator('.request-revoke-confirm').click();
      await expect.poll(() => approvedRow.count(), { timeout: 10_000 }).toBe(0);
      expect(await requestById(toRevoke)).toMatchObject({ state: 'revoked', decidedBy: 'revoke-admin' });
      await page.click('#requests-tab-revoked');
      const revokedRow = page.locator(`tr[data-request="${toRevoke}"]`);
      await expect.poll(() => revokedRow.getAttribute('data-state'), { timeout: 10_000 }).toBe('revoked');
      expect(await revokedRow.locator('.request-state').textContent()).toBe('取り消し');
      expect(await revokedRow.locator('.request-decided').textContent()).toMatch(/^revoke-admin \(/);
      expect(await revokedRow.locator('.request-revoke, .request-approve').count()).toBe(0);
      expect(dialogs).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 120_000);

  it('shows an auditor the list without action buttons', async () => {
    const pending = await submitRequest(HOSTILE_NAME, HOSTILE_PURPOSE, 'read-only');
    const auditor = await createAdmin('kansa-requests', 'auditor');
    const context = await browser.newContext({ locale: 'ja-JP', timezoneId: 'Asia/Tokyo' });
    const page = await context.newPage();
    const { dialogs } = watchPage(page, { ignoreFailedLoads: true });
    try {
      await page.goto(`${url}/dashboard/`);
      await logIn(page, auditor);
      await page.click('nav a[href="#/requests"]');
      const row = page.locator(`tr[data-request="${pending}"]`);
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
      expect(await row.locator('.usb-name').textContent()).toBe(HOSTILE_NAME);
      expect(await page.locator('main button.request-approve, main button.request-reject, main button.request-revoke').count()).toBe(0);
      await page.click('#requests-tab-approved');
      await expect.poll(() => page.locator('main tr[data-state]').count(), { timeout: 10_000 }).toBeGreaterThan(0);
      expect(await page.locator('main .request-revoke').count()).toBe(0);
      // The server refuses the auditor's write anyway.
      expect(await page.evaluate(async (route) => (await fetch(route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"reason":"x"}' })).status, `${ApiPaths.adminRequests}/${pending}/reject`)).toBe(403);
      expect(dialogs).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
