import fs from 'node:fs/promises';
import path from 'node:path';
import { Secret } from 'otpauth';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiPaths, EnrollResponseSchema, type AdminTerminalsResponse } from '../../shared/api.js';
import { EMPTY_HEAD, chainEntry, type JournalEntry } from '../../shared/journal.js';
import { totpCode } from '../../agent/lock/factors.js';
import { adminTotpCode } from '../../server/admin-accounts.js';
import { sha256Hex } from '../../server/crypto.js';
import { readJournal } from '../helpers/agent-state.js';
import { ARTIFACTS, launchChromium, watchPage, type PageWatch } from '../helpers/browser.js';
import { enrolConsoleUser, startLockAgent, type LockAgent } from '../helpers/lock-agent.js';
import { AGENT_CLI, SERVER_CLI, agentStatus, cli, enrollmentToken, killAll, startServer, waitFor } from '../helpers/processes.js';
import { makeTempDir } from '../server/helpers.js';

/**
 * The dashboard in headless Chromium (Debian's chromium via playwright-core) against a real server
 * process and a real agent process: log in with password + TOTP, see the agent's terminal, lock it
 * remotely and see the agent lock, recover it by challenge–response through the recovery page,
 * and hostile host and device names shown literally with no script run (no dialog).
 * Screenshots of the terminal list and a terminal's page go to test-artifacts/.
 */

const HOSTILE_HOST = '<img src=x onerror=alert(1)>"><script>alert(2)</script>';
const HOSTILE_DEVICE_NAME = '<img src=x onerror=alert(3)>';
const HOSTILE_SERIAL = '"><script>alert(4)</script>';
const PIN = '739184';

let base: string;
let dataDir: string;
let url: string;
let adminToken: string;
let browser: Browser;
let agent: LockAgent;
let agentDeviceId: string;
let agentSecret: Uint8Array;
let hostileDeviceId: string;

interface Account {
  readonly user: string;
  readonly password: string;
  readonly secret: Uint8Array;
}

async function createAdmin(user: string, role: 'admin' | 'auditor'): Promise<Account> {
  const result = await cli(SERVER_CLI, ['create-admin', '--data', dataDir, '--user', user, '--role', role]);
  if (result.code !== 0) throw new Error(`create-admin failed: ${result.stderr}`);
  const password = /^initial password: (.+)$/m.exec(result.stdout)![1]!;
  const secret = /^TOTP secret \(base32\): (.+)$/m.exec(result.stdout)![1]!;
  return { user, password, secret: Secret.fromBase32(secret).bytes };
}

async function api(method: string, route: string, body?: unknown, bearer = adminToken): Promise<Response> {
  return fetch(new URL(route, url), {
    method,
    headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A terminal that is only HTTP calls: enrols with a hostile host name and reports a hostile USB stick. */
async function hostileTerminal(): Promise<string> {
  const token = await enrollmentToken(dataDir);
  const enrolled = EnrollResponseSchema.parse(
    await (
      await fetch(new URL(ApiPaths.enroll, url), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token, host: { hostname: HOSTILE_HOST, os: 'linux', arch: 'x64', hardwareId: 'hostile-hw', agentVersion: '0.1.0' } }),
      })
    ).json(),
  );
  const status = { agentVersion: '0.1.0', enforcement: { state: 'enforced' }, lockState: 'unlocked', tier: 'lgwan', policyVersion: null, journal: { length: 1, headHash: EMPTY_HEAD.hash } };
  expect((await api('POST', ApiPaths.heartbeat, { status }, enrolled.credential)).status).toBe(200);
  const { entry } = chainEntry(
    EMPTY_HEAD,
    {
      time: new Date().toISOString(),
      tz: '+09:00',
      type: 'device.blocked',
      data: { key: '1-2', device: { id: '0930:6545', serial: HOSTILE_SERIAL, name: HOSTILE_DEVICE_NAME, manufacturer: HOSTILE_HOST }, decision: 'block', rule: { kind: 'implicit' } },
    },
    sha256Hex,
  );
  expect((await api('POST', ApiPaths.events, { entries: [entry satisfies JournalEntry] }, enrolled.credential)).status).toBe(200);
  return enrolled.deviceId;
}

interface Watched extends PageWatch {
  readonly context: BrowserContext;
  readonly page: Page;
}

async function openDashboard(): Promise<Watched> {
  const context = await browser.newContext({ locale: 'ja-JP', timezoneId: 'Asia/Tokyo', viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  // Refused calls (401 before login, 404 for a tier with no policy) are expected; CSP refusals and script errors are not.
  const { dialogs, errors } = watchPage(page, { ignoreFailedLoads: true });
  await page.goto(`${url}/dashboard/`);
  return { context, page, dialogs, errors };
}

/** Logs in (password + the current TOTP code) and replaces the initial password. */
async function logIn(page: Page, account: Account): Promise<void> {
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

beforeAll(async () => {
  base = await makeTempDir('sekimori-dashboard-');
  dataDir = path.join(base, 'server');
  ({ url } = await startServer(dataDir));
  adminToken = (await fs.readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
  agent = await startLockAgent(base, { consoleUser: 'nobody', serverUrl: url, enrollToken: await enrollmentToken(dataDir) });
  agentDeviceId = await waitFor(async () => (await agentStatus(agent.stateDir).catch(() => null))?.deviceId ?? null, 20_000, 'agent enrolled');
  agentSecret = await enrolConsoleUser(agent, PIN);
  hostileDeviceId = await hostileTerminal();
  browser = await launchChromium();
  await fs.mkdir(ARTIFACTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await killAll();
  await fs.rm(base, { recursive: true, force: true });
});

describe('the dashboard in headless Chromium with a real server and a real agent', () => {
  it('logs in with password + TOTP, lists the agent’s terminal, locks it remotely, and recovers it through the recovery page', async () => {
    const admin = await createAdmin('tanaka', 'admin');
    const { context, page, dialogs, errors } = await openDashboard();
    try {
      await logIn(page, admin);
      expect(await page.textContent('#who')).toBe('tanaka (管理者)');

      // The real agent's terminal, online, with the hostname the agent reported.
      const listed = await waitFor(async () => ((await (await api('GET', `${ApiPaths.adminDevices}/${agentDeviceId}`)).json()) as { hostname: string; lastSeenAt: string | null }), 10_000, 'terminal known');
      const row = page.locator(`tr[data-device="${agentDeviceId}"]`);
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
      expect(await row.locator('a').textContent()).toBe(listed.hostname);
      expect(await row.textContent()).toContain('オンライン');
      expect(await row.textContent()).toContain('マイナンバー利用事務系');
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-terminals.png'), fullPage: true });

      // Unlock the terminal (the agent starts locked), so that the remote lock is visible.
      if ((await agent.view()).state !== 'unlocked') {
        await agent.attempt({ method: 'lock.submit', params: { factor: 'pin', secret: PIN } });
        const unlocked = await agent.attempt({ method: 'lock.submit', params: { factor: 'totp', secret: totpCode(agentSecret, Date.now() + 30_000) } });
        expect(unlocked.ok, JSON.stringify(unlocked.error)).toBe(true);
      }

      // A hostile USB device name reported through the running agent's journal.
      const appended = await cli(AGENT_CLI, [
        'journal',
        'append',
        '--state',
        agent.stateDir,
        '--type',
        'device.blocked',
        '--data',
        JSON.stringify({ key: '2-1', device: { id: '1234:5678', serial: HOSTILE_SERIAL, name: HOSTILE_DEVICE_NAME, manufacturer: 'ACME' }, decision: 'block', rule: { kind: 'implicit' } }),
      ]);
      expect(appended.code, appended.stderr).toBe(0);

      // The terminal's page: remote lock.
      await row.locator('a').click();
      await page.waitForSelector('#terminal-title');
      expect(await page.textContent('#terminal-title')).toBe(listed.hostname);
      await expect.poll(() => page.textContent('#chain-verdict'), { timeout: 10_000 }).toMatch(/検証済み/);
      await page.click('#remote-lock');
      expect(await page.textContent('#lock-status')).toContain('よろしいですか');
      await page.click('#remote-lock-confirm');
      await expect.poll(() => page.textContent('#lock-status'), { timeout: 10_000 }).toContain('ロックを指示しました');
      await waitFor(async () => ((await agent.view()).state === 'locked' ? true : null), 20_000, 'the agent locked');
      const locked = (await readJournal(agent.stateDir)).filter((entry) => entry.type === 'lock.locked').at(-1);
      expect(locked?.data).toMatchObject({ trigger: 'remote-lock' });
      expect(JSON.parse((await cli(AGENT_CLI, ['status', '--state', agent.stateDir, '--json'])).stdout)).toMatchObject({ running: true });

      // Refreshed: the command succeeded, the agent reports itself locked, the hostile device is text.
      await expect
        .poll(
          async () => {
            await page.click('#terminal-refresh');
            await page.waitForSelector('#terminal-commands tr[data-state]');
            const state = await page.getAttribute('#terminal-commands tr[data-state]', 'data-state');
            const names = await page.locator('#terminal-usb .usb-name').allTextContents();
            return `${state} ${(await page.textContent('#terminal-lock-state')) ?? ''} ${names.includes(HOSTILE_DEVICE_NAME)}`;
          },
          { timeout: 20_000, interval: 500 },
        )
        .toBe('succeeded ロック中 true');
      expect(await page.locator('#terminal-usb td', { hasText: HOSTILE_SERIAL }).count()).toBe(1);
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-terminal-detail.png'), fullPage: true });

      // Recovery: the caller reads the challenge; the page shows what it says first, then the response.
      const asked = await agent.attempt({ method: 'lock.recoveryChallenge', params: { action: 'unlock' } });
      expect(asked.ok, JSON.stringify(asked.error)).toBe(true);
      await page.click('nav a[href="#/recovery"]');
      await page.fill('#recovery-challenge', asked.view.challenge!.code);
      await page.click('#recovery-decode');
      await page.waitForSelector('#recovery-decoded section');
      expect(await page.textContent('#recovery-action')).toBe('ロック解除');
      expect(await page.textContent('#recovery-matches .match-hostname')).toBe(listed.hostname);
      expect(await page.textContent('#recovery-matches .match-users')).toContain('nobody');
      expect(await page.locator('#recovery-response-groups').count()).toBe(0);
      expect(await page.isDisabled('#recovery-respond')).toBe(true);
      await page.check('#recovery-confirmed');
      await page.click('#recovery-respond');
      await page.waitForSelector('#recovery-response-groups li');
      const response = await page.getAttribute('#recovery-response-groups', 'data-response');
      expect((await page.locator('#recovery-response-groups li').allTextContents()).join('-')).toBe(response);
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-recovery.png'), fullPage: true });
      const done = await agent.attempt({ method: 'lock.recoveryRespond', params: { response: response! } });
      expect(done.ok, JSON.stringify(done.error)).toBe(true);
      expect(done.view.state).toBe('unlocked');

      // The admin trail names the administrator for each act.
      await page.click('nav a[href="#/actions"]');
      await page.waitForSelector('#actions-body tr');
      const actions = await page.locator('#actions-body tr').evaluateAll((rows) => rows.map((r) => `${r.querySelector('.actor')?.textContent ?? ''} ${r.getAttribute('data-action') ?? ''}`));
      for (const expected of ['tanaka login', 'tanaka password.changed', 'tanaka command.queued', 'tanaka recovery']) expect(actions).toContain(expected);

      // Policies: a bad rule is refused with its line and column, broken JSON with where it breaks,
      // a good document is published (on a tier no terminal here uses).
      await page.click('nav a[href="#/policies"]');
      await page.waitForSelector('#policy-editor');
      await page.click('#policy-tier-internet');
      await expect.poll(() => page.getAttribute('#policy-tier-internet', 'aria-pressed'), { timeout: 10_000 }).toBe('true');
      await expect.poll(async () => (await page.inputValue('#policy-editor')).length, { timeout: 10_000 }).toBeGreaterThan(10);
      const template = JSON.parse(await page.inputValue('#policy-editor')) as { usb: { rules: string[] } };
      await page.fill('#policy-editor', JSON.stringify({ ...template, usb: { ...template.usb, rules: ['allow id 0930:65x5'] } }, null, 2));
      await page.click('#policy-publish');
      await expect.poll(() => page.textContent('#policy-problems'), { timeout: 10_000 }).toMatch(/usb\.rules\[0\]: line 1, column \d+/);
      await page.fill('#policy-editor', '{\n  "mode": "enforce",\n  "usb": ]\n}');
      await page.click('#policy-publish');
      expect(await page.textContent('#policy-problems')).toContain('(3 行 10 列)');
      await page.fill('#policy-editor', JSON.stringify(template, null, 2));
      await page.click('#policy-publish');
      await expect.poll(() => page.textContent('#policy-problems'), { timeout: 10_000 }).toBe('版 2 として公開しました。');
      await expect.poll(() => page.locator('#policy-history tbody tr').count(), { timeout: 10_000 }).toBe(1);

      // Users: the staff member enrolled on the agent, and the reset (confirmed in the page).
      await page.click('nav a[href="#/users"]');
      const staff = page.locator('#staff-users tr[data-user="nobody"]');
      await expect.poll(() => staff.count(), { timeout: 10_000 }).toBe(1);
      expect(await staff.textContent()).toContain('登録済み');
      await staff.locator('.user-reset').click();
      await staff.locator('.user-reset-confirm').click();
      await expect.poll(() => staff.locator('[role="status"]').textContent(), { timeout: 10_000 }).toMatch(/リセットしました \(1 台/);
      await waitFor(async () => (!(await agent.view()).enrolled ? true : null), 20_000, 'factors reset on the terminal');

      const trail = await (await api('GET', `${ApiPaths.adminActions}?limit=100`)).json() as { actions: { actor: string; action: string }[] };
      const acts = trail.actions.map((action) => `${action.actor} ${action.action}`);
      for (const expected of ['tanaka policy.published', 'tanaka credentials.reset']) expect(acts).toContain(expected);

      // Logout ends the session.
      await page.click('#logout');
      await page.waitForSelector('#login-form');
      expect((await fetch(new URL(ApiPaths.adminDevices, url))).status).toBe(401);

      expect(dialogs).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 180_000);

  it('shows hostile host and device names literally, runs none of them, and shows an auditor no write controls', async () => {
    const auditor = await createAdmin('kansa', 'auditor');
    const { context, page, dialogs, errors } = await openDashboard();
    try {
      await logIn(page, auditor);
      expect(await page.textContent('#who')).toBe('kansa (監査担当)');
      // Search for it through the list's filter (the hostile host is a terminal like any other).
      await page.selectOption('#filter-tier', 'lgwan');
      const row = page.locator(`tr[data-device="${hostileDeviceId}"]`);
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
      expect(await row.locator('a').textContent()).toBe(HOSTILE_HOST);
      expect(await row.locator('a').innerHTML()).toBe('&lt;img src=x onerror=alert(1)&gt;"&gt;&lt;script&gt;alert(2)&lt;/script&gt;');

      await row.locator('a').click();
      await page.waitForSelector('#terminal-usb .usb-name');
      expect(await page.textContent('#terminal-title')).toBe(HOSTILE_HOST);
      expect(await page.locator('#terminal-usb .usb-name').allTextContents()).toEqual([HOSTILE_DEVICE_NAME]);
      expect(await page.locator('#terminal-usb td', { hasText: HOSTILE_SERIAL }).count()).toBe(1);
      expect(await page.locator('#terminal-events td.data').first().textContent()).toContain(HOSTILE_DEVICE_NAME);
      expect(await page.locator('main img, main script, main iframe').count()).toBe(0);
      expect(await page.evaluate(() => document.scripts.length)).toBe(1);

      // Read-only: no remote lock, no recovery page; the requests page is listed (read-only there too).
      expect(await page.locator('#remote-lock').count()).toBe(0);
      expect(await page.locator('nav a[href="#/recovery"]').count()).toBe(0);
      expect(await page.locator('nav a[href="#/requests"]').count()).toBe(1);
      await page.click('nav a[href="#/users"]');
      await page.waitForSelector('#admin-accounts table');
      expect(await page.locator('.user-reset').count()).toBe(0);
      await page.click('nav a[href="#/policies"]');
      await page.waitForSelector('#policy-editor');
      expect(await page.locator('#policy-publish').count()).toBe(0);
      expect(await page.$eval('#policy-editor', (editor) => (editor as HTMLTextAreaElement).readOnly)).toBe(true);

      // English on request.
      await page.click('#language');
      expect(await page.textContent('nav a[href="#/terminals"]')).toBe('Terminals');

      // The API agrees with the page: this session may read, not act.
      const list = (await page.evaluate(async (route) => (await fetch(route)).json(), '/api/v1/admin/terminals')) as AdminTerminalsResponse;
      expect(list.counts.total).toBe(2);
      expect(await page.evaluate(async (route) => (await fetch(route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"lock"}' })).status, `/api/v1/admin/devices/${hostileDeviceId}/commands`)).toBe(403);

      expect(dialogs).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 120_000);
});
