import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { t, type MessageKey } from '../../shared/i18n.js';
import { REQUEST_REFUSAL_CODES } from '../../shared/ipc.js';
import { ARTIFACTS, useBrowserPages, type PreloadPage } from '../helpers/browser.js';
import { NOW_MS } from './scripted-backend.js';
import { CAMERA_KEY, EXCEPTION_DEVICE_KEY, KEYBOARD_KEY, ScriptedStatusAgent, USB_STICK_KEY, baseStatus, device, request, requestsInEveryState } from './scripted-status-agent.js';

/**
 * The request form (dist/renderer/request.html) in headless Chromium, with `window.sekimori` from
 * the real preload wired to a scripted stand-in of main + agent that checks every draft against the
 * agent's `request.submit` params. The page runs in Asia/Tokyo (+09:00). Needs `npm run build`.
 * Every page must load under its CSP without a script error and never open a dialog (checked after
 * each test).
 */
const pages = useBrowserPages();

/** Opens the form as main does: `request.html#device=<encodeURIComponent(key)>` (or no fragment). */
async function openForm(agent: ScriptedStatusAgent, key: string | null = null, options: { locale?: string } = {}): Promise<PreloadPage> {
  const hash = key === null ? '' : `#device=${encodeURIComponent(key)}`;
  const session = await pages.open(`renderer/request.html${hash}`, agent, options);
  await expect.poll(() => agent.count('sekimori:requests.list')).toBeGreaterThan(0);
  // The status has arrived once the "connecting" notice is gone.
  if (agent.connection === 'connected') await expect.poll(() => session.page.textContent('#notice')).toBe('');
  return session;
}

const texts = (session: PreloadPage, selector: string): Promise<string[]> => session.page.locator(selector).allTextContents();
const checkedDevice = (session: PreloadPage): Promise<string | null> =>
  session.page.evaluate(() => document.querySelector<HTMLInputElement>('input[name="device"]:checked')?.value ?? null);

describe('request form (headless Chromium, scripted agent)', () => {
  it('sends exactly the draft: the device from the fragment, the purpose, the end with +09:00, the access; then lists it', async () => {
    const agent = new ScriptedStatusAgent(baseStatus(), requestsInEveryState());
    const session = await openForm(agent, CAMERA_KEY);
    const { page } = session;
    // Only blocked devices, with name, vid:pid and serial; the keyboard (allowed) is not offered.
    await expect.poll(() => texts(session, '#devices .device-name')).toEqual(['SanDisk Ultra Fit', 'Logitech Webcam C270', 'TOSHIBA TransMemory']);
    expect(await texts(session, '#devices .id')).toEqual(['0781:5583', '046d:0825', '0930:6545']);
    expect(await texts(session, '#devices .serial')).toEqual(['シリアル 4C530001230517109031', '(シリアルなし)', 'シリアル 0022CFF6A1B2']);
    expect(await page.locator(`input[name="device"][value="${KEYBOARD_KEY}"]`).count()).toBe(0);
    expect(await checkedDevice(session)).toBe(CAMERA_KEY);
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('purpose');

    await page.fill('#purpose', 'ウェブ会議で住民説明会を配信するため');
    expect(await page.textContent('#purpose-counter')).toBe('18 / 500 文字');
    await page.check('input[name="until"][value="custom"]');
    expect(await page.locator('#until-custom').isVisible()).toBe(true);
    expect(await page.getAttribute('#until-custom', 'max')).toMatch(/^2026-02-24T09:4\d$/);
    await page.fill('#until-custom', '2025-11-28T17:30');
    await expect.poll(() => page.textContent('#until-preview')).toBe('2025/11/28 17:30 まで');
    await page.check('input[name="access"][value="read-write"]');
    await page.screenshot({ path: path.join(ARTIFACTS, 'request-form-ja.png'), fullPage: true });

    await page.click('#submit');
    await expect.poll(() => agent.argsOf('sekimori:requests.submit')).toEqual([
      [{ deviceKey: CAMERA_KEY, purpose: 'ウェブ会議で住民説明会を配信するため', until: '2025-11-28T17:30:00+09:00', access: 'read-write' }],
    ]);
    await expect.poll(() => page.textContent('#notice')).toBe('申請しました。管理者の承認をお待ちください。');
    expect(await page.textContent('#error')).toBe('');
    expect(await page.inputValue('#purpose')).toBe('');
    await expect.poll(() => page.locator('#requests li').count()).toBe(7);
    expect(await page.locator('#requests li').first().locator('.request-device').textContent()).toBe('Logitech Webcam C270');
    expect(await page.locator('#requests li').first().locator('.request-state').textContent()).toBe('未送信 (サーバーと通信でき次第送信します)');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('list-heading');
  });

  it('defaults to 本日中 and read-only, and picks up a key with \\ and & from the fragment', async () => {
    const agent = new ScriptedStatusAgent();
    const session = await openForm(agent, USB_STICK_KEY);
    const { page } = session;
    await expect.poll(() => checkedDevice(session)).toBe(USB_STICK_KEY);
    expect(await page.isChecked('input[name="until"][value="today"]')).toBe(true);
    expect(await page.isChecked('input[name="access"][value="read-only"]')).toBe(true);
    expect(await page.locator('#until-custom').isVisible()).toBe(false);
    expect(await page.textContent('#until-preview')).toBe('2025/11/26 23:59 まで');
    await page.fill('#purpose', '  課内研修の資料を受け取るため  ');
    await page.click('#submit');
    await expect.poll(() => agent.argsOf('sekimori:requests.submit').at(-1)).toEqual([
      { deviceKey: USB_STICK_KEY, purpose: '課内研修の資料を受け取るため', until: '2025-11-26T23:59:59+09:00', access: 'read-only' },
    ]);
  });

  it('follows a new fragment while open (main reuses the window)', async () => {
    const agent = new ScriptedStatusAgent();
    const session = await openForm(agent, USB_STICK_KEY);
    await expect.poll(() => checkedDevice(session)).toBe(USB_STICK_KEY);
    await session.page.evaluate((key) => {
      location.hash = `#device=${encodeURIComponent(key)}`;
    }, EXCEPTION_DEVICE_KEY);
    await expect.poll(() => checkedDevice(session)).toBe(EXCEPTION_DEVICE_KEY);
  });

  it('checks the form before sending anything', async () => {
    const agent = new ScriptedStatusAgent();
    const session = await openForm(agent);
    const { page } = session;
    expect(await checkedDevice(session)).toBeNull();
    await page.click('#submit');
    await expect.poll(() => page.textContent('#error')).toBe('申請する機器を選んでください。');
    expect(await page.getAttribute('#error', 'role')).toBe('alert');
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('device');

    await page.check(`input[name="device"][value="${CAMERA_KEY}"]`);
    await page.fill('#purpose', '   ');
    await page.click('#submit');
    await expect.poll(() => page.textContent('#error')).toBe('利用目的を入力してください。');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('purpose');

    await page.fill('#purpose', '資料の受け取り');
    await page.check('input[name="until"][value="custom"]');
    await page.click('#submit');
    await expect.poll(() => page.textContent('#error')).toBe('終了日時を入力してください。');
    await page.fill('#until-custom', '2026-03-01T09:00');
    await page.click('#submit');
    await expect.poll(() => page.textContent('#error')).toBe('使用期間は最長90日です。');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('until-custom');
    await page.fill('#until-custom', '2025-11-20T09:00');
    await page.click('#submit');
    await expect.poll(() => page.textContent('#error')).toBe('終了日時は現在より後にしてください。');
    expect(agent.count('sekimori:requests.submit')).toBe(0);

    // 1週間 is within the bound.
    await page.check('input[name="until"][value="week"]');
    await page.click('#submit');
    await expect.poll(() => agent.count('sekimori:requests.submit')).toBe(1);
    const [draft] = agent.argsOf('sekimori:requests.submit')[0] as [{ until: string }];
    expect(draft.until).toMatch(/^2025-12-03T09:4\d:\d\d\+09:00$/);
  });

  it('words every refusal of the agent, and an unreachable agent', async () => {
    const agent = new ScriptedStatusAgent();
    const session = await openForm(agent, USB_STICK_KEY);
    const { page } = session;
    await page.fill('#purpose', '資料の受け取り');
    for (const [index, reason] of REQUEST_REFUSAL_CODES.entries()) {
      agent.refuseWith = reason;
      await page.click('#submit');
      await expect.poll(() => agent.count('sekimori:requests.submit')).toBe(index + 1);
      const key: MessageKey = `request.refusal.${reason}`;
      await expect.poll(() => page.textContent('#error'), { message: reason }).toBe(t(key, 'ja'));
    }
    expect(agent.count('sekimori:requests.submit')).toBe(REQUEST_REFUSAL_CODES.length);
    expect(await page.textContent('#notice')).toBe('');
    expect(await page.inputValue('#purpose')).toBe('資料の受け取り');

    agent.refuseWith = null;
    agent.connection = 'unavailable';
    await page.click('#submit');
    await expect.poll(() => page.textContent('#error')).toBe('保護サービスに接続できません。');
    await expect.poll(() => page.textContent('#notice')).toContain('保護サービスに接続できません');
  });

  it('words every state of my requests, the approved window and a rejection reason', async () => {
    const agent = new ScriptedStatusAgent(baseStatus(), requestsInEveryState());
    const session = await openForm(agent);
    const { page } = session;
    await expect.poll(() => texts(session, '#requests .request-state')).toEqual([
      '未送信 (サーバーと通信でき次第送信します)',
      '承認待ち',
      '承認',
      '却下',
      '期限切れ',
      '取り消し',
    ]);
    const approved = page.locator('#requests li[data-state="approved"]');
    expect(await approved.locator('.request-approved').textContent()).toBe('承認: 2025/11/28 12:41 まで (読み取り専用)');
    expect(await approved.locator('.request-asked').textContent()).toBe('申請: 2025/12/03 09:41 まで (読み書き)');
    expect(await approved.locator('.request-narrowed').textContent()).toBe('申請より短い期間または狭い権限で承認されました。');
    expect(await page.locator('#requests li[data-state="rejected"] .request-reason').textContent()).toBe('理由: 個人の機器は使用できません');
    expect(await page.locator('#requests li[data-state="pending"] .request-approved').count()).toBe(0);
    expect(await page.locator('#requests li').first().locator('.request-purpose').textContent()).toBe('利用目的: 住民説明会の資料を持ち出すため');
  });

  it('refreshes my requests when the agent pushes a status', async () => {
    const agent = new ScriptedStatusAgent(baseStatus(), [request({ state: 'pending' })]);
    const session = await openForm(agent);
    const { page } = session;
    await expect.poll(() => texts(session, '#requests .request-state')).toEqual(['承認待ち']);
    agent.requests = [request({ state: 'approved', approvedUntil: new Date(NOW_MS + 86_400_000).toISOString(), approvedAccess: 'read-only' })];
    const view = baseStatus();
    await agent.pushStatus(session, { ...view, devices: view.devices.filter((present) => present.key !== CAMERA_KEY) });
    await expect.poll(() => texts(session, '#requests .request-state')).toEqual(['承認']);
    // The devices follow the pushed status too.
    expect(await texts(session, '#devices .device-name')).toEqual(['SanDisk Ultra Fit', 'TOSHIBA TransMemory']);
    expect(agent.count('sekimori:status.get')).toBe(1);
    expect(await page.locator('#list-none').isVisible()).toBe(false);
  });

  it('says so when no blocked device is connected', async () => {
    const view = baseStatus();
    const agent = new ScriptedStatusAgent({ ...view, devices: view.devices.filter((present) => present.decision === 'allow') });
    const session = await openForm(agent);
    const { page } = session;
    await expect.poll(() => page.textContent('#device-none')).toBe('ブロックされている機器が接続されていません。申請する機器を接続してください。');
    expect(await page.locator('#device-none').isVisible()).toBe(true);
    expect(await page.locator('#devices input').count()).toBe(0);
    expect(await page.locator('#submit').isDisabled()).toBe(true);
    expect(await page.textContent('#list-none')).toBe('申請はまだありません。');

    // Plugged in meanwhile.
    await agent.pushStatus(session, { ...view, devices: [device({ key: '5-1' })] });
    await expect.poll(() => page.locator('#device-none').isVisible()).toBe(false);
    expect(await page.locator('#submit').isDisabled()).toBe(false);
  });

  it('shows hostile device names, serials, purposes and reasons as text, and runs nothing', async () => {
    const img = '<img src=x onerror=alert(1)>';
    const script = '"><script>alert(1)</script>';
    const agent = new ScriptedStatusAgent(baseStatus({ devices: [device({ key: 'evil', name: img, serial: script })] }), [
      request({ state: 'rejected', device: { id: '0781:5583', name: script, serial: img }, purpose: img, reason: script }),
    ]);
    const session = await openForm(agent, 'evil');
    const { page } = session;
    await expect.poll(() => page.textContent('#devices .device-name')).toBe(img);
    expect(await page.textContent('#devices .serial')).toBe(`シリアル ${script}`);
    expect(await page.textContent('#requests .request-device')).toBe(script);
    expect(await page.textContent('#requests .request-purpose')).toBe(`利用目的: ${img}`);
    expect(await page.textContent('#requests .request-reason')).toBe(`理由: ${script}`);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(1);

    // A hostile purpose goes to the agent as typed text and comes back as text.
    await page.fill('#purpose', script);
    await page.click('#submit');
    await expect.poll(() => page.locator('#requests li').count()).toBe(2);
    expect(await page.locator('#requests .request-purpose').first().textContent()).toBe(`利用目的: ${script}`);
    expect(await page.locator('script').count()).toBe(1);
    await page.waitForTimeout(300);
    expect(session.dialogs).toEqual([]);
  });

  it('switches to English and back, re-wording what is on screen', async () => {
    const agent = new ScriptedStatusAgent(baseStatus(), requestsInEveryState());
    const session = await openForm(agent, USB_STICK_KEY);
    const { page } = session;
    agent.refuseWith = 'not-blocked';
    await page.fill('#purpose', 'abc');
    await page.click('#submit');
    await expect.poll(() => page.textContent('#error')).toBe('その機器はすでに使用できます。申請の必要はありません。');

    await page.click('#language');
    await expect.poll(() => page.textContent('#title')).toBe('Ask to use a USB device');
    expect(agent.argsOf('sekimori:app.setLanguage')).toEqual([['en']]);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(await page.textContent('#error')).toBe('That device can already be used: no request is needed.');
    expect(await page.textContent('#submit')).toBe('Send the request');
    expect(await page.textContent('#purpose-counter')).toBe('3 / 500 characters');
    expect(await texts(session, '#requests .request-state')).toEqual([
      'Not sent yet (it will be sent when the server can be reached)',
      'Waiting for approval',
      'Approved',
      'Rejected',
      'Expired',
      'Revoked',
    ]);
    expect(await page.textContent('#devices .serial')).toBe('serial 4C530001230517109031');
    // The choice survives the re-wording.
    expect(await checkedDevice(session)).toBe(USB_STICK_KEY);

    await agent.pushPrefs(session, 'ja');
    await expect.poll(() => page.textContent('#title')).toBe('USB機器の使用申請');
  });

  it('says so when the agent cannot be reached', async () => {
    const agent = new ScriptedStatusAgent();
    agent.connection = 'unavailable';
    const session = await openForm(agent, USB_STICK_KEY);
    const { page } = session;
    await expect.poll(() => page.textContent('#notice')).toBe('保護サービスに接続できません。しばらく待っても変わらない場合は、管理者に連絡してください。');
    expect(await page.locator('#submit').isDisabled()).toBe(true);
    agent.connection = 'connected';
    await agent.pushConnection(session, 'connected');
    await expect.poll(() => checkedDevice(session)).toBe(USB_STICK_KEY);
    expect(await page.textContent('#notice')).toBe('');
    expect(await page.locator('#submit').isDisabled()).toBe(false);
  });
});
