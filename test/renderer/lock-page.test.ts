import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARTIFACTS, useBrowserPages, type PreloadPage } from '../helpers/browser.js';
import { CHALLENGE, ENROL_SECRET, RESPONSE, RIGHT_CODE, RIGHT_PIN, ScriptedLockAgent, baseView } from './scripted-lock-agent.js';

/**
 * The lock page (dist/renderer/lock.html) in headless Chromium, with `window.sekimori` from the
 * real preload wired to a scripted stand-in of main + agent. Needs `npm run build` (global setup).
 * Every page must load under its CSP without a script error and never open a dialog (checked after
 * each test).
 */
const pages = useBrowserPages();

function openLock(agent: ScriptedLockAgent): Promise<PreloadPage> {
  return pages.open('renderer/lock.html', agent);
}

describe('lock page (headless Chromium, scripted agent)', () => {
  it('walks a wrong PIN, the right PIN, a wrong code and the right code to the unlocked view', async () => {
    const agent = new ScriptedLockAgent(baseView({ remainingAttempts: 5 }));
    const { page } = await openLock(agent);

    await expect.poll(() => page.locator('#step-pin').isVisible()).toBe(true);
    await page.fill('#pin-input', '000000');
    await page.click('#pin-submit');
    await expect.poll(() => page.textContent('#error')).toBe('PINが正しくありません。');
    await expect.poll(() => page.textContent('#attempts')).toContain('あと 4 回');
    expect(await page.inputValue('#pin-input')).toBe('');

    await page.fill('#pin-input', RIGHT_PIN);
    await page.click('#pin-submit');
    await expect.poll(() => page.locator('#step-code').isVisible()).toBe(true);
    expect(await page.locator('#step-pin').isVisible()).toBe(false);
    expect(await page.textContent('#error')).toBe('');

    await page.fill('#code-input', '111111');
    await page.click('#code-submit');
    await expect.poll(() => page.textContent('#error')).toBe('確認コードが正しくありません。');
    await expect.poll(() => page.textContent('#attempts')).toContain('あと 3 回');

    await page.fill('#code-input', RIGHT_CODE);
    await page.click('#code-submit');
    await expect.poll(() => page.locator('#step-unlocked').isVisible()).toBe(true);
    expect(await page.textContent('#step-unlocked')).toContain('ロックを解除しました');
    expect(await page.locator('#recovery').isVisible()).toBe(false);
    expect(agent.calls.filter((call) => call.channel === 'sekimori:lock.submit').map((call) => call.args)).toEqual([
      ['pin', '000000'],
      ['pin', RIGHT_PIN],
      ['totp', '111111'],
      ['totp', RIGHT_CODE],
    ]);
  });

  it('shows the user, the terminal and the clock, and saves a screenshot of the PIN step', async () => {
    const agent = new ScriptedLockAgent(baseView({ offlineDaysLeft: 3 }));
    const { page } = await openLock(agent);
    await expect.poll(() => page.textContent('#user')).toBe('tanaka.hanako');
    expect(await page.textContent('#host')).toBe('SHIYAKUSHO-PC-0123');
    expect(await page.textContent('#title')).toBe('この端末はロックされています');
    expect(await page.getAttribute('html', 'lang')).toBe('ja');
    // The clock follows the agent's clock (view.now, 09:41 JST), not the page's.
    await expect.poll(() => page.textContent('#clock-date')).toContain('2025年11月26日');
    expect(await page.textContent('#clock-time')).toMatch(/^09:4\d$/);
    expect(await page.textContent('#offline')).toContain('あと 3 日間');
    await page.screenshot({ path: path.join(ARTIFACTS, 'lock-pin-ja.png'), fullPage: true });
  });

  it('counts down a back-off and refuses to submit meanwhile', async () => {
    const now = Date.now();
    const agent = new ScriptedLockAgent(baseView({ now: new Date(now).toISOString(), retryAt: new Date(now + 90_000).toISOString(), remainingAttempts: 2 }));
    const { page } = await openLock(agent);
    await expect.poll(() => page.locator('#backoff').isVisible()).toBe(true);
    const text = (await page.textContent('#backoff')) ?? '';
    const seconds = Number(/あと (\d+) 秒/.exec(text)?.[1]);
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThanOrEqual(90);
    expect(await page.locator('#pin-submit').isDisabled()).toBe(true);
    // Enter in the field does not submit while the only submit button is disabled.
    await page.fill('#pin-input', RIGHT_PIN);
    await page.press('#pin-input', 'Enter');
    expect(agent.count('sekimori:lock.submit')).toBe(0);
  });

  it('tells a locked-out user to call the administrator and offers the recovery', async () => {
    const agent = new ScriptedLockAgent(baseView({ lockedOut: true, remainingAttempts: 0 }));
    const { page } = await openLock(agent);
    await expect.poll(() => page.textContent('#notice')).toContain('管理者に電話で連絡');
    expect(await page.locator('#step-pin').isVisible()).toBe(false);
    expect(await page.locator('#recovery-open').isVisible()).toBe(true);
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('recovery-open');
  });

  it('shows the recovery challenge in large groups and names a mistyped response group', async () => {
    const agent = new ScriptedLockAgent(baseView({ lockedOut: true, remainingAttempts: 0 }));
    const { page } = await openLock(agent);
    await page.click('#recovery-open');
    await expect.poll(() => page.locator('#challenge li').count()).toBe(6);
    expect(await page.locator('#challenge .group-digits').allTextContents()).toEqual(CHALLENGE.split('-'));
    expect(await page.locator('#challenge .group-number').first().textContent()).toBe('グループ 1');
    expect(agent.calls.find((call) => call.channel === 'sekimori:lock.recoveryChallenge')?.args).toEqual(['unlock']);
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('recovery-input');

    // One digit of the second group misheard.
    const groups = RESPONSE.split('-');
    const second = groups[1]!;
    groups[1] = second.slice(0, 2) + String((Number(second[2]) + 1) % 10) + second.slice(3);
    await page.fill('#recovery-input', groups.join(' '));
    await page.click('#recovery-submit');
    await expect.poll(() => page.textContent('#error')).toContain('グループ 2');
    expect(await page.inputValue('#recovery-input')).toBe(groups.join(' '));

    await page.fill('#recovery-input', RESPONSE);
    await page.click('#recovery-submit');
    await expect.poll(() => page.locator('#step-unlocked').isVisible()).toBe(true);
  });

  it('enrols: PIN twice, a QR image from SVG, the secret as text, then the code', async () => {
    const agent = await new ScriptedLockAgent(baseView({ enrolled: false })).withQr();
    const { page } = await openLock(agent);
    await expect.poll(() => page.locator('#step-enrol').isVisible()).toBe(true);
    expect(await page.locator('#step-pin').isVisible()).toBe(false);

    await page.fill('#enrol-pin', '123456');
    await page.fill('#enrol-pin-again', '654321');
    await page.click('#enrol-pin-submit');
    await expect.poll(() => page.textContent('#error')).toContain('一致しません');
    expect(agent.count('sekimori:lock.enrolBegin')).toBe(0);

    await page.fill('#enrol-pin', RIGHT_PIN);
    await page.fill('#enrol-pin-again', RIGHT_PIN);
    await page.press('#enrol-pin-again', 'Enter');
    await expect.poll(() => page.locator('#enrol-qr').isVisible()).toBe(true);
    expect(await page.getAttribute('#enrol-qr', 'src')).toMatch(/^data:image\/svg\+xml;base64,/);
    // The SVG decoded as an image (the CSP allows data: images only).
    await expect.poll(() => page.$eval('#enrol-qr', (img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    expect(await page.textContent('#enrol-secret')).toBe(ENROL_SECRET.match(/.{4}/g)!.join(' '));
    expect(await page.getAttribute('#enrol-qr', 'alt')).toContain('QRコード');
    expect(agent.calls.find((call) => call.channel === 'sekimori:lock.enrolBegin')?.args).toEqual([RIGHT_PIN]);
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('enrol-code');
    await page.screenshot({ path: path.join(ARTIFACTS, 'lock-enrol-qr-ja.png'), fullPage: true });

    await page.fill('#enrol-code', '000000');
    await page.click('#enrol-code-submit');
    await expect.poll(() => page.textContent('#error')).toBe('確認コードが正しくありません。');
    await page.fill('#enrol-code', RIGHT_CODE);
    await page.click('#enrol-code-submit');
    await expect.poll(() => page.locator('#step-pin').isVisible()).toBe(true);
    expect(await page.locator('#step-enrol').isVisible()).toBe(false);
  });

  it('renders hostile user and host names and a hostile QR SVG as inert text and image', async () => {
    const user = '<img src=x onerror=alert(1)>';
    const hostname = '"><script>alert(1)</script>';
    const hostileSvg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="alert(1)"><script>alert(2)</script><rect width="10" height="10"/></svg>';
    const agent = await new ScriptedLockAgent(baseView({ user, hostname, enrolled: false })).withQr(hostileSvg);
    const session = await openLock(agent);
    const { page } = session;
    await expect.poll(() => page.textContent('#user')).toBe(user);
    expect(await page.textContent('#host')).toBe(hostname);
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    expect(await page.locator('#host script').count()).toBe(0);

    await page.fill('#enrol-pin', RIGHT_PIN);
    await page.fill('#enrol-pin-again', RIGHT_PIN);
    await page.click('#enrol-pin-submit');
    await expect.poll(() => page.locator('#enrol-qr').isVisible()).toBe(true);
    expect(await page.locator('svg').count()).toBe(0);
    // Give any handler a chance to fire before the dialog check in afterEach.
    await page.waitForTimeout(300);
    expect(session.dialogs).toEqual([]);
  });

  it('switches to English and back, re-wording what is on screen', async () => {
    const agent = new ScriptedLockAgent(baseView({ remainingAttempts: 5 }));
    const { page } = await openLock(agent);
    await page.fill('#pin-input', 'nope!!');
    await page.click('#pin-submit');
    await expect.poll(() => page.textContent('#error')).toBe('PINが正しくありません。');

    await page.click('#language');
    await expect.poll(() => page.textContent('#title')).toBe('This terminal is locked');
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(await page.textContent('#error')).toBe('Wrong PIN.');
    expect(await page.textContent('#attempts')).toContain('4 more failed attempts');
    expect(await page.textContent('#pin-submit')).toBe('Next');
    expect(await page.textContent('#language')).toBe('日本語');

    await page.click('#language');
    await expect.poll(() => page.textContent('#title')).toBe('この端末はロックされています');
    expect(await page.getAttribute('html', 'lang')).toBe('ja');
  });

  it('works with the keyboard alone: Tab moves through the controls, Enter submits', async () => {
    const agent = new ScriptedLockAgent();
    const { page } = await openLock(agent);
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('pin-input');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('pin-submit');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('recovery-open');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('language');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.textContent('#title')).toBe('This terminal is locked');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.textContent('#title')).toBe('この端末はロックされています');

    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('pin-input');
    await page.keyboard.type(RIGHT_PIN);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('code-input');
    await page.keyboard.type(RIGHT_CODE);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#step-unlocked').isVisible()).toBe(true);
  });

  it('stays locked and says so while the agent cannot be reached, and recovers when it returns', async () => {
    const agent = new ScriptedLockAgent();
    agent.connection = 'unavailable';
    const session = await openLock(agent);
    const { page } = session;
    await expect.poll(() => page.textContent('#notice')).toContain('保護サービスに接続できません');
    expect(await page.locator('#step-pin').isVisible()).toBe(false);
    expect(await page.locator('#recovery').isVisible()).toBe(false);

    agent.connection = 'connected';
    await session.deliver('sekimori:agent.connectionChanged', 'connected');
    await expect.poll(() => page.locator('#step-pin').isVisible()).toBe(true);
    expect(await page.textContent('#notice')).toBe('');

    // A pushed lock view is shown at once.
    await session.deliver('sekimori:lock.changed', baseView({ state: 'second-factor' }));
    await expect.poll(() => page.locator('#step-code').isVisible()).toBe(true);

    await session.deliver('sekimori:agent.connectionChanged', 'unavailable');
    await expect.poll(() => page.textContent('#notice')).toContain('保護サービスに接続できません');
    expect(await page.locator('#step-code').isVisible()).toBe(false);
  });

  it('sends a heartbeat when it starts and reports activity on input', async () => {
    const agent = new ScriptedLockAgent();
    const { page } = await openLock(agent);
    await expect.poll(() => agent.count('sekimori:lock.heartbeat')).toBeGreaterThan(0);
    await page.locator('#pin-input').focus();
    await page.keyboard.type('1');
    await expect.poll(() => agent.count('sekimori:lock.activity')).toBeGreaterThan(0);
    // Nothing typed reaches the agent before it is submitted.
    expect(agent.calls.some((call) => call.channel === 'sekimori:lock.submit')).toBe(false);
  });

  it('shows the right message for a refusal by main', async () => {
    const agent = new ScriptedLockAgent();
    const backend = {
      invoke: (channel: string, args: unknown[]) =>
        channel === 'sekimori:lock.submit' ? Promise.resolve({ ok: false, error: { code: 'refused', message: 'sender not allowed' } }) : agent.invoke(channel, args),
    };
    const session = await pages.open('renderer/lock.html', backend);
    await session.page.fill('#pin-input', RIGHT_PIN);
    await session.page.click('#pin-submit');
    await expect.poll(() => session.page.textContent('#error')).toBe('この画面からの要求は受け付けられません。');
  });
});
