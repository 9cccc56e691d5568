import fs from 'node:fs/promises';
import path from 'node:path';
import { Secret } from 'otpauth';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../agent/lock/factors.js';
import { AgentClient } from '../../main/agent-client.js';
import { EVENT_CHANNELS } from '../../main/bridge-api.js';
import { callChannel, type AppCalls } from '../../main/ipc-handlers.js';
import { Prefs } from '../../main/prefs.js';
import * as devices from '../fixtures/usb-devices/devices.js';
import { authorizedOf, useFakeKernel } from '../helpers/agent-state.js';
import { launchChromium, openWithPreload, serveDirectory, type PreloadPage } from '../helpers/browser.js';
import { startManagedTerminal } from '../helpers/managed-terminal.js';
import { ROOT, killAll, waitFor } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

/**
 * The status window and the request form against a REAL agent: a real server, a real agent process
 * enforcing on a kernel-shaped sysfs tree, main's real AgentClient and IPC handlers
 * (`callChannel`), the real preload in headless Chromium. Only Electron's IPC transport is stood
 * in for (the helper forwards `ipcRenderer.invoke` and `webContents.send`).
 */
const tempDir = useTempDirs();
const fakeKernel = useFakeKernel();
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
let browser: Browser;
let web: { url: string; close: () => Promise<void> };
const pages: PreloadPage[] = [];
const clients: AgentClient[] = [];

beforeAll(async () => {
  browser = await launchChromium();
  web = await serveDirectory(path.join(ROOT, 'dist'));
  await fs.mkdir(ARTIFACTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await web?.close();
});
afterEach(async () => {
  for (const session of pages.splice(0)) {
    expect(session.dialogs).toEqual([]);
    expect(session.errors).toEqual([]);
    await session.close();
  }
  for (const client of clients.splice(0)) client.dispose();
  await killAll();
});

describe('status window and request form with a real agent', { timeout: 150_000 }, () => {
  it('shows a hostile stick as text, asks for it, and shows the approval as it arrives', async () => {
    const sysfs = await fakeKernel([{ bus: 1 }]);
    const { socketPath, admin } = await startManagedTerminal({ sysfs, dataDir: await tempDir(), base: await tempDir() });

    // Main's side: the agent client, the app (windows recorded, preferences in memory) and the handlers.
    const client = new AgentClient({ endpoint: socketPath, backoff: { initialMs: 50, maxMs: 200 } });
    clients.push(client);
    const store = new Map<string, unknown>();
    const prefs = new Prefs({ get: (key) => store.get(key), set: (key, value) => void store.set(key, value) }, 'ja-JP');
    const opened: (string | null)[] = [];
    const app: AppCalls = { openRequestForm: (key) => (opened.push(key), Promise.resolve()), prefs: () => prefs.get(), setLanguage: (language) => prefs.setLanguage(language) };
    const backend = { invoke: (channel: string, args: unknown[]) => callChannel({ agent: client, app }, channel, args) };
    // What main.ts does with pushes: forward them to every open page.
    const forward = (channel: string, payload: unknown): void => {
      for (const session of pages) void session.deliver(channel, payload).catch(() => undefined);
    };
    client.onStatusChanged((view) => forward(EVENT_CHANNELS.statusChanged, view));
    client.onConnection((state) => forward(EVENT_CHANNELS.connectionChanged, state));
    client.start();
    await waitFor(() => (client.state === 'connected' ? true : null), 10_000, 'app connected');
    // The staff member enrols and unlocks (as on the lock screen), so the window shows a working terminal.
    const offer = await client.enrolBegin('482916');
    const secret = Secret.fromBase32(offer.offer!.secret).bytes;
    expect((await client.enrolConfirm(totpCode(secret, Date.now()))).ok).toBe(true);
    expect((await client.submit('pin', '482916')).ok).toBe(true);
    expect((await client.submit('totp', totpCode(secret, Date.now() + 30_000))).view.state).toBe('unlocked');

    const status = await openWithPreload(browser, `${web.url}/renderer/status.html`, backend);
    pages.push(status);
    await expect.poll(() => status.page.locator('#details').isVisible(), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => status.page.textContent('#tier'), { timeout: 10_000 }).toBe('マイナンバー利用事務系');
    await expect.poll(() => status.page.textContent('#lock-state'), { timeout: 10_000 }).not.toBe('ロック中');

    // The stick with markup in its product string: blocked by the real agent, pushed, shown as text.
    await sysfs.plug(devices.hostileStrings, '1-2');
    await waitFor(async () => ((await authorizedOf(sysfs, '1-2')) === '0' ? true : null), 20_000, 'stick blocked');
    const deviceName = status.page.locator('#devices li.device .item-name');
    await expect.poll(() => deviceName.allTextContents(), { timeout: 10_000 }).toEqual([devices.hostileStrings.expected.name]);
    expect(await status.page.locator('#devices img, #blocked img, script:not([src])').count()).toBe(0);
    await expect.poll(() => status.page.locator('#blocked li .item-name').first().textContent(), { timeout: 10_000 }).toBe(devices.hostileStrings.expected.name);
    await status.page.screenshot({ path: path.join(ARTIFACTS, 'status-window-real-agent-ja.png'), fullPage: true });

    // 申請 from the status window asks main to open the form with this device.
    await status.page.locator('#devices li.device .request-button').click();
    await expect.poll(() => opened).toEqual(['1-2']);

    // The form, as main opens it: the device chosen from the fragment, the request sent to the real agent.
    const form = await openWithPreload(browser, `${web.url}/renderer/request.html#device=${encodeURIComponent('1-2')}`, backend);
    pages.push(form);
    await expect.poll(() => form.page.locator('input[name="device"]:checked').getAttribute('value'), { timeout: 10_000 }).toBe('1-2');
    await form.page.fill('#purpose', '窓口で受け取った資料の確認');
    await form.page.click('#submit');
    await expect.poll(() => form.page.textContent('#notice'), { timeout: 10_000 }).toBe('申請しました。管理者の承認をお待ちください。');
    const requestId = await waitFor(async () => {
      const listed = await admin('GET', '/api/v1/admin/requests?state=pending');
      return (listed.json.requests as { id: string; purpose: string }[]).find((r) => r.purpose === '窓口で受け取った資料の確認')?.id ?? null;
    }, 20_000, 'request on the server');
    await form.page.screenshot({ path: path.join(ARTIFACTS, 'request-form-real-agent-ja.png'), fullPage: true });

    // 承認 on the server: the agent allows the stick read-only, and both pages update from the pushes.
    expect((await admin('POST', `/api/v1/admin/requests/${requestId}/approve`, { access: 'read-only' })).status).toBe(200);
    await waitFor(async () => ((await authorizedOf(sysfs, '1-2')) === '1' ? true : null), 30_000, 'stick authorised by the approval');
    await expect.poll(() => status.page.locator('#exceptions li.exception .item-name').allTextContents(), { timeout: 20_000 }).toEqual([devices.hostileStrings.expected.name]);
    await expect.poll(() => form.page.locator('#requests li').first().locator('.request-state').textContent(), { timeout: 20_000 }).toMatch(/^承認/);
    await expect.poll(() => status.page.locator('#devices li.device .decision').first().getAttribute('data-decision'), { timeout: 10_000 }).toBe('read-only');

    // 今すぐロック from the status window locks the real agent, and the window follows.
    expect((await client.getLock()).state).toBe('unlocked');
    await status.page.click('#lock-now');
    await waitFor(async () => ((await client.getLock()).state === 'locked' ? true : null), 10_000, 'locked');
    await expect.poll(() => status.page.textContent('#lock-state'), { timeout: 10_000 }).toBe('ロック中');
  });
});
