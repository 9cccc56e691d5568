import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARTIFACTS, useBrowserPages, type PreloadPage } from '../helpers/browser.js';
import { MINUTE, NOW_MS } from './scripted-backend.js';
import { CAMERA_KEY, ScriptedStatusAgent, USB_STICK_KEY, baseStatus, device } from './scripted-status-agent.js';

/**
 * The status window (dist/renderer/status.html) in headless Chromium, with `window.sekimori` from
 * the real preload wired to a scripted stand-in of main + agent whose answers and pushes are
 * checked against `shared/ipc.ts`. Needs `npm run build` (global setup). Every page must load
 * under its CSP without a script error and never open a dialog (checked after each test).
 */
const pages = useBrowserPages();

async function openStatus(agent: ScriptedStatusAgent, options: { locale?: string } = {}): Promise<PreloadPage> {
  const session = await pages.open('renderer/status.html', agent, options);
  await expect.poll(() => session.page.locator('#details').isVisible()).toBe(agent.connection === 'connected');
  return session;
}

const texts = (session: PreloadPage, selector: string): Promise<string[]> => session.page.locator(selector).allTextContents();

describe('status window (headless Chromium, scripted agent)', () => {
  it('shows the state, the summary, devices with their rule in words, exceptions, recent blocks and the self-inspection', async () => {
    const agent = new ScriptedStatusAgent(
      baseStatus({
        compliance: { overall: 'fail', ranAt: new Date(NOW_MS - 60 * MINUTE).toISOString(), pass: 10, fail: 2, unknown: 0, failing: ['disk-encryption', 'os-updates'] },
      }),
    );
    const session = await openStatus(agent);
    const { page } = session;
    expect(await page.textContent('#state')).toBe('違反あり');
    expect(await page.getAttribute('#state', 'aria-live')).toBe('polite');
    expect(await page.getAttribute('html', 'lang')).toBe('ja');
    expect(await page.textContent('#title')).toBe('端末の状態');
    expect(await page.textContent('#tier')).toBe('LGWAN接続系');
    expect(await page.textContent('#policy')).toBe('版 12 (2025/11/26 07:41 に受信)');
    // Against the agent's clock (view.now), not the page's.
    expect(await page.textContent('#server')).toBe('3分前');
    expect(await page.textContent('#lock-state')).toBe('ロック解除中');
    expect(await page.textContent('#host')).toBe('SHIYAKUSHO-PC-0123');
    expect(await page.textContent('#user')).toBe('tanaka.hanako');

    expect(await texts(session, '#devices .item-name')).toEqual(['Logitech USB Keyboard', 'SanDisk Ultra Fit', 'Logitech Webcam C270', 'TOSHIBA TransMemory']);
    expect(await texts(session, '#devices .decision')).toEqual(['許可', 'ブロック', 'ブロック (拒否)', '読み取り専用']);
    expect(await texts(session, '#devices .rule')).toEqual([
      '判定: 導入時に接続されていた入力機器',
      '判定: 許可されていない機器は既定でブロック',
      '判定: ポリシーの規則「カメラ禁止」',
      '判定: 承認された申請による一時許可',
    ]);
    expect(await texts(session, '#devices .id')).toEqual(['046d:c31c', '0781:5583', '046d:0825', '0930:6545']);
    expect(await texts(session, '#devices .serial')).toEqual(['(シリアルなし)', 'シリアル 4C530001230517109031', '(シリアルなし)', 'シリアル 0022CFF6A1B2']);
    // 申請 on every blocked device, not on the allowed keyboard.
    expect(await page.locator('#devices li').nth(0).locator('button').count()).toBe(0);
    expect(await page.locator('#devices .request-button').count()).toBe(3);
    expect(await page.locator('#devices .request-button').first().getAttribute('aria-label')).toBe('「SanDisk Ultra Fit」の使用を申請');

    expect(await texts(session, '#exceptions .item-name')).toEqual(['TOSHIBA TransMemory']);
    await expect.poll(() => page.textContent('#exceptions .time-left')).toMatch(/^あと 2日 (3|2)時間$/);
    expect(await page.textContent('#exceptions .item-meta')).toBe('2025/11/28 12:41 まで · 読み取り専用');

    // Newest first.
    expect(await texts(session, '#blocked .item-name')).toEqual(['SanDisk Ultra Fit', 'HL-DT-ST DVDRAM GP57EB40']);
    expect(await texts(session, '#blocked .channel')).toEqual(['USB', '光学ドライブ']);

    expect(await page.textContent('#compliance-overall')).toBe('結果: 不適合');
    expect(await page.textContent('#compliance-counts')).toBe('適合 10 件 / 不適合 2 件 / 判定不能 0 件');
    expect(await texts(session, '#compliance-failing li')).toEqual(['ディスク全体の暗号化', 'OSのセキュリティ更新']);
    expect(await page.textContent('#lock-now')).toBe('今すぐロック');
    expect(await page.textContent('#request-usb')).toBe('USB機器の使用を申請');
    await page.screenshot({ path: path.join(ARTIFACTS, 'status-window-ja.png'), fullPage: true });
  });

  it('follows the status the agent pushes, and never polls it', async () => {
    const agent = new ScriptedStatusAgent();
    const session = await openStatus(agent);
    const { page } = session;
    expect(await page.textContent('#state')).toBe('保護されています');
    expect(await page.getAttribute('#state-panel', 'data-tone')).toBe('ok');

    const view = baseStatus();
    await agent.pushStatus(session, {
      ...view,
      server: { ...view.server, reachable: false, lastContactAt: new Date(NOW_MS - 5 * 3_600_000).toISOString() },
      devices: [...view.devices, device({ key: '3-1', vendorId: '05ac', productId: '12a8', name: 'iPhone', serial: 'abcdef', decision: 'block', rule: { kind: 'rule', label: 'スマートフォン禁止', exceptionId: null } })],
    });
    await expect.poll(() => page.textContent('#state')).toBe('サーバーと通信できません');
    expect(await page.getAttribute('#state-panel', 'data-tone')).toBe('warn');
    expect(await page.textContent('#server')).toBe('5時間前 (現在通信できません)');
    expect(await texts(session, '#devices .item-name')).toContain('iPhone');
    expect(await page.locator('#devices li').last().locator('.rule').textContent()).toBe('判定: ポリシーの規則「スマートフォン禁止」');

    await agent.pushStatus(session, { ...view, enforcement: { state: 'unenforced', reason: 'usbguard-missing' } });
    await expect.poll(() => page.textContent('#state')).toBe('保護されていません (USB機器の制御が無効)');
    expect(await page.textContent('#state-detail')).toBe('理由: usbguard-missing');
    await agent.pushStatus(session, { ...view, enforcement: { state: 'audit', reason: null }, policy: { version: null, origin: 'built-in', mode: 'audit', receivedAt: null } });
    await expect.poll(() => page.textContent('#state')).toBe('保護されていません (監査モード: 記録のみ)');
    expect(await page.textContent('#policy')).toBe('組み込みの既定ポリシー (監査モード)');
    await agent.pushStatus(session, { ...view, lockState: 'locked' });
    await expect.poll(() => page.textContent('#state')).toBe('ロック中');
    expect(await page.textContent('#lock-state')).toBe('ロック中');

    // The time left counts down on the page's clock, without asking the agent again.
    await agent.pushStatus(session, { ...view, now: new Date().toISOString(), exceptions: [{ id: 'exc_2', device: 'TOSHIBA TransMemory', until: new Date(Date.now() + 5 * MINUTE).toISOString(), access: 'read-write' }] });
    const first = await page.textContent('#exceptions .time-left');
    expect(first).toMatch(/^あと [45]分 \d+秒$/);
    await expect.poll(() => page.textContent('#exceptions .time-left'), { timeout: 5_000 }).not.toBe(first);
    expect(agent.count('sekimori:status.get')).toBe(1);
  });

  it('asks main to open the request form for a blocked device, or for none, and locks now', async () => {
    const agent = new ScriptedStatusAgent();
    const { page } = await openStatus(agent);
    await page.locator('#devices .request-button').nth(1).click();
    await expect.poll(() => agent.argsOf('sekimori:app.openRequestForm')).toEqual([[CAMERA_KEY]]);
    await page.locator('#devices .request-button').first().click();
    await expect.poll(() => agent.argsOf('sekimori:app.openRequestForm')).toEqual([[CAMERA_KEY], [USB_STICK_KEY]]);
    await page.click('#request-usb');
    await expect.poll(() => agent.argsOf('sekimori:app.openRequestForm')).toEqual([[CAMERA_KEY], [USB_STICK_KEY], [null]]);

    expect(agent.count('sekimori:lock.now')).toBe(0);
    await page.click('#lock-now');
    await expect.poll(() => agent.argsOf('sekimori:lock.now')).toEqual([[]]);
    expect(await page.textContent('#error')).toBe('');
  });

  it('shows hostile device names, serials, user and host names as text, and runs nothing', async () => {
    const img = '<img src=x onerror=alert(1)>';
    const script = '"><script>alert(1)</script>';
    const view = baseStatus({
      hostname: script,
      user: img,
      devices: [
        device({ name: img, serial: script }),
        device({ key: 'evil', name: script, serial: img, rule: { kind: 'rule', label: img, exceptionId: null } }),
      ],
      exceptions: [{ id: 'exc_x', device: img, until: new Date(NOW_MS + 3_600_000).toISOString(), access: 'read-only' }],
      recentBlocked: [{ at: new Date(NOW_MS).toISOString(), channel: 'usb', key: 'evil', name: script, id: '0781:5583', decision: 'block', requestable: true }],
      enforcement: { state: 'unenforced', reason: img },
    });
    const agent = new ScriptedStatusAgent(view);
    const session = await openStatus(agent);
    const { page } = session;
    expect(await page.textContent('#host')).toBe(script);
    expect(await page.textContent('#user')).toBe(img);
    expect(await texts(session, '#devices .item-name')).toEqual([img, script]);
    expect(await texts(session, '#devices .serial')).toEqual([`シリアル ${script}`, `シリアル ${img}`]);
    expect(await page.locator('#devices .rule').nth(1).textContent()).toBe(`判定: ポリシーの規則「${img}」`);
    expect(await page.locator('#devices .request-button').nth(0).getAttribute('aria-label')).toBe(`「${img}」の使用を申請`);
    expect(await page.textContent('#exceptions .item-name')).toBe(img);
    expect(await page.textContent('#blocked .item-name')).toBe(script);
    expect(await page.textContent('#state-detail')).toBe(`理由: ${img}`);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(1);
    // Pushed later, too.
    await agent.pushStatus(session, { ...view, hostname: img });
    await expect.poll(() => page.textContent('#host')).toBe(img);
    expect(await page.locator('img').count()).toBe(0);
    await page.waitForTimeout(300);
    expect(session.dialogs).toEqual([]);
  });

  it('says so while the agent cannot be reached, and recovers when it returns', async () => {
    const agent = new ScriptedStatusAgent();
    agent.connection = 'unavailable';
    const session = await openStatus(agent);
    const { page } = session;
    await expect.poll(() => page.textContent('#state')).toBe('保護サービスに接続できません');
    expect(await page.getAttribute('#state-panel', 'data-tone')).toBe('bad');
    expect(await page.textContent('#state-detail')).toContain('管理者に連絡');
    expect(await page.locator('#details').isVisible()).toBe(false);
    expect(await page.locator('#lock-now').isDisabled()).toBe(true);

    agent.connection = 'connected';
    await agent.pushConnection(session, 'connected');
    await expect.poll(() => page.textContent('#state')).toBe('保護されています');
    expect(await page.locator('#details').isVisible()).toBe(true);
    expect(await page.locator('#lock-now').isDisabled()).toBe(false);

    // The agent goes away while the window shows: the stale status is hidden.
    await agent.pushConnection(session, 'unavailable');
    await expect.poll(() => page.textContent('#state')).toBe('保護サービスに接続できません');
    expect(await page.locator('#details').isVisible()).toBe(false);
  });

  it('switches to English and back, follows the preferences, and starts in the saved language', async () => {
    const agent = new ScriptedStatusAgent();
    const session = await openStatus(agent);
    const { page } = session;
    await page.click('#language');
    await expect.poll(() => page.textContent('#title')).toBe('Terminal status');
    expect(agent.argsOf('sekimori:app.setLanguage')).toEqual([['en']]);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(await page.textContent('#state')).toBe('Protected');
    expect(await page.textContent('#tier')).toBe('LGWAN tier');
    expect(await page.textContent('#server')).toBe('3 min ago');
    expect(await texts(session, '#devices .rule')).toContain('Decided by: devices that are not allowed are blocked by default');
    expect(await page.textContent('#lock-now')).toBe('Lock now');
    expect(await page.textContent('#language')).toBe('日本語');

    // Another window switched back.
    await agent.pushPrefs(session, 'ja');
    await expect.poll(() => page.textContent('#title')).toBe('端末の状態');

    const english = new ScriptedStatusAgent();
    english.prefs = { language: 'en' };
    const second = await openStatus(english);
    await expect.poll(() => second.page.textContent('#state')).toBe('Protected');
  });

  it('falls back to the browser language when the preferences cannot be read', async () => {
    const agent = new ScriptedStatusAgent();
    const backend = {
      invoke: (channel: string, args: unknown[]) =>
        channel === 'sekimori:app.prefs' ? Promise.resolve({ ok: false, error: { code: 'internal', message: 'no store' } }) : agent.invoke(channel, args),
    };
    const session = await pages.open('renderer/status.html', backend, { locale: 'en-US' });
    await expect.poll(() => session.page.textContent('#state')).toBe('Protected');
  });

  it('works with the keyboard: language, lock now, request, then each 申請', async () => {
    const agent = new ScriptedStatusAgent();
    const session = await openStatus(agent);
    const { page } = session;
    await page.locator('#language').focus();
    const order: string[] = [];
    for (let i = 0; i < 4; i += 1) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.className || ''));
    }
    expect(order).toEqual(['lock-now', 'request-usb', 'request-button', 'request-button']);
    await page.keyboard.press('Enter');
    await expect.poll(() => agent.argsOf('sekimori:app.openRequestForm')).toEqual([[CAMERA_KEY]]);
    // A pushed status keeps the focus on the same device's button.
    await agent.pushStatus(session, baseStatus({ now: new Date(NOW_MS + 1_000).toISOString() }));
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('「Logitech Webcam C270」の使用を申請');
  });
});
