import { Secret } from 'otpauth';
import { afterEach, describe, expect, it } from 'vitest';
import { totpCode } from '../../agent/lock/factors.js';
import { AgentClient } from '../../main/agent-client.js';
import { callChannel } from '../../main/ipc-handlers.js';
import { readJournal } from '../helpers/agent-state.js';
import { useBrowserPages } from '../helpers/browser.js';
import { startLockAgent } from '../helpers/lock-agent.js';
import { killAll } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

/**
 * The lock page in headless Chromium with the real preload, the real main-process IPC wrapper and
 * agent client, and a real agent process behind them (a test bridge stands in only for Electron's
 * ipcRenderer ↔ ipcMain hop). The console user's name is hostile markup: it comes from the OS
 * through the agent and must show as text; no dialog opens and no script error happens (checked
 * after the test).
 */
const tempDir = useTempDirs();
const pages = useBrowserPages();
const HOSTILE_USER = '<img src=x onerror=alert(1)>"><script>alert(2)</script>';
const PIN = '739184';

afterEach(killAll);

describe('lock page against a real agent (headless Chromium)', () => {
  it('enrols, refuses a wrong PIN, unlocks with PIN + code, and shows the hostile user name as text without running it', async () => {
    const agent = await startLockAgent(await tempDir(), { consoleUser: HOSTILE_USER });
    const client = new AgentClient({ endpoint: agent.socketPath });
    client.start();
    await expect.poll(() => client.state, { timeout: 10_000 }).toBe('connected');
    const session = await pages.open('renderer/lock.html', { invoke: (channel, args) => callChannel({ agent: client }, channel, args, () => undefined) });
    client.onLockChanged((view) => void session.deliver('sekimori:lock.changed', view).catch(() => undefined));
    const { page } = session;
    try {
      await expect.poll(() => page.textContent('#user'), { timeout: 10_000 }).toBe(HOSTILE_USER);
      expect(await page.locator('#user img, #user script').count()).toBe(0);

      await expect.poll(() => page.locator('#step-enrol').isVisible(), { timeout: 10_000 }).toBe(true);
      await page.fill('#enrol-pin', PIN);
      await page.fill('#enrol-pin-again', PIN);
      await page.click('#enrol-pin-submit');
      await expect.poll(() => page.$eval('#enrol-qr', (img) => (img as HTMLImageElement).naturalWidth), { timeout: 10_000 }).toBeGreaterThan(0);
      const secret = Secret.fromBase32(((await page.textContent('#enrol-secret')) ?? '').replace(/\s/g, '')).bytes;
      await page.fill('#enrol-code', totpCode(secret, Date.now()));
      await page.click('#enrol-code-submit');

      await expect.poll(() => page.locator('#step-pin').isVisible(), { timeout: 10_000 }).toBe(true);
      await page.fill('#pin-input', '000000');
      await page.press('#pin-input', 'Enter');
      await expect.poll(() => page.textContent('#error'), { timeout: 10_000 }).toBe('PINが正しくありません。');
      await expect.poll(() => page.textContent('#attempts')).toContain('あと 4 回');

      await page.fill('#pin-input', PIN);
      await page.press('#pin-input', 'Enter');
      await expect.poll(() => page.locator('#step-code').isVisible(), { timeout: 10_000 }).toBe(true);
      await page.fill('#code-input', totpCode(secret, Date.now() + 30_000));
      await page.press('#code-input', 'Enter');
      await expect.poll(() => page.locator('#step-unlocked').isVisible(), { timeout: 10_000 }).toBe(true);
      expect((await agent.view()).state).toBe('unlocked');

      // The agent journaled it all under the (hostile, inert) user name.
      const journal = await readJournal(agent.stateDir);
      expect(journal.filter((e) => e.type === 'auth.failed').map((e) => e.data)).toMatchObject([{ user: HOSTILE_USER, code: 'wrong-pin', via: 'lock-screen' }]);
      expect(journal.filter((e) => e.type === 'lock.unlocked').map((e) => e.data.trigger)).toEqual(['second-factor']);
    } finally {
      client.dispose();
      await session.close();
    }
  });
});
