import { describe, expect, it } from 'vitest';
import { IpcRequestRefused } from '../../shared/ipc-connection.js';
import type { LockAttemptResult } from '../../shared/ipc.js';
import { AgentBadAnswerError, AgentUnavailableError } from '../../main/agent-client.js';
import { INVOKE_CHANNELS } from '../../main/bridge-api.js';
import { callChannel, createIpcRouter, pageOf, registerIpcHandlers, type AgentCalls, type InvokeEventLike } from '../../main/ipc-handlers.js';
import { baseView } from '../renderer/scripted-lock-agent.js';

/**
 * main/ipc-handlers.ts with plain objects shaped like Electron's IpcMainInvokeEvent (no Electron):
 * the sender frame check, argument validation, and the mapping of agent failures to results.
 */

const PAGES = { lock: 'file:///opt/Sekimori/resources/app/dist/renderer/lock.html', status: 'file:///opt/Sekimori/resources/app/dist/renderer/status.html' };

const mainFrame = (url: string): InvokeEventLike => ({ senderFrame: { url, parent: null } });
const fromLock = mainFrame(PAGES.lock);

/** A fake agent client that records calls. */
function fakeAgent(overrides: Partial<AgentCalls> = {}): AgentCalls & { calls: [string, ...unknown[]][] } {
  const calls: [string, ...unknown[]][] = [];
  const view = baseView();
  const attempt: LockAttemptResult = { ok: true, view };
  return {
    calls,
    state: 'connected',
    getLock: () => (calls.push(['getLock']), Promise.resolve(view)),
    submit: (factor, secret) => (calls.push(['submit', factor, secret]), Promise.resolve(attempt)),
    activity: () => (calls.push(['activity']), Promise.resolve()),
    uiHeartbeat: () => (calls.push(['uiHeartbeat']), Promise.resolve()),
    enrolBegin: (pin) => (calls.push(['enrolBegin', pin]), Promise.resolve({ ok: true, view })),
    enrolConfirm: (code) => (calls.push(['enrolConfirm', code]), Promise.resolve(attempt)),
    recoveryChallenge: (action) => (calls.push(['recoveryChallenge', action]), Promise.resolve(attempt)),
    recoveryRespond: (response) => (calls.push(['recoveryRespond', response]), Promise.resolve(attempt)),
    ...overrides,
  };
}

function router(agent: AgentCalls = fakeAgent()) {
  const logs: string[] = [];
  return { router: createIpcRouter({ agent, pages: PAGES, log: (message) => logs.push(message) }), logs };
}

describe('IPC handlers: sender check', () => {
  it('runs a call from the main frame of the lock page', async () => {
    const agent = fakeAgent();
    const { router: r } = router(agent);
    await expect(r.dispatch('sekimori:lock.submit', fromLock, ['pin', '246810'])).resolves.toEqual({ ok: true, value: { ok: true, view: baseView() } });
    expect(agent.calls).toEqual([['submit', 'pin', '246810']]);
  });

  it('refuses an unknown channel without calling the agent', async () => {
    const agent = fakeAgent();
    const { router: r, logs } = router(agent);
    for (const channel of ['sekimori:lock.now', 'sekimori:auth.verify', 'sekimori:journal.append', '', '__proto__', 'constructor']) {
      await expect(r.dispatch(channel, fromLock, [])).resolves.toMatchObject({ ok: false, error: { code: 'refused', message: 'unknown channel' } });
    }
    expect(agent.calls).toEqual([]);
    expect(logs.length).toBeGreaterThan(0);
  });

  it('refuses a sub-frame, a destroyed frame, and pages that are not ours', async () => {
    const agent = fakeAgent();
    const { router: r } = router(agent);
    const refusedEvents: InvokeEventLike[] = [
      { senderFrame: null },
      { senderFrame: { url: PAGES.lock, parent: { url: PAGES.lock } } },
      mainFrame('https://evil.example/renderer/lock.html'),
      mainFrame('http://127.0.0.1:8080/renderer/lock.html'),
      mainFrame('file:///tmp/lock.html'),
      mainFrame('file:///opt/Sekimori/resources/app/dist/renderer/lock.html?x=1'),
      mainFrame('file:///opt/Sekimori/resources/app/dist/renderer/../renderer/other.html'),
      mainFrame('data:text/html,<script>1</script>'),
      mainFrame('not a url'),
    ];
    for (const event of refusedEvents) {
      await expect(r.dispatch('sekimori:lock.get', event, []), JSON.stringify(event)).resolves.toMatchObject({ ok: false, error: { code: 'refused' } });
    }
    expect(agent.calls).toEqual([]);
  });

  it('lets each page use only its own channels', async () => {
    const agent = fakeAgent();
    const { router: r } = router(agent);
    const fromStatus = mainFrame(PAGES.status);
    await expect(r.dispatch('sekimori:lock.get', fromStatus, [])).resolves.toMatchObject({ ok: true });
    await expect(r.dispatch('sekimori:agent.connection', fromStatus, [])).resolves.toEqual({ ok: true, value: 'connected' });
    await expect(r.dispatch('sekimori:lock.submit', fromStatus, ['pin', '246810'])).resolves.toMatchObject({ ok: false, error: { code: 'refused' } });
    expect(agent.calls).toEqual([['getLock']]);
  });

  it('accepts the page URL with a fragment (same document)', () => {
    expect(pageOf(`${PAGES.lock}#step`, PAGES)).toBe('lock');
    expect(pageOf(PAGES.status, PAGES)).toBe('status');
    expect(pageOf('file:///opt/Sekimori/resources/app/dist/renderer/LOCK.html', PAGES)).toBeNull();
  });
});

describe('IPC handlers: arguments', () => {
  const bad: [string, unknown[]][] = [
    ['sekimori:lock.submit', []],
    ['sekimori:lock.submit', ['password', 'x']],
    ['sekimori:lock.submit', ['pin', 246810]],
    ['sekimori:lock.submit', ['pin', 'x'.repeat(257)]],
    ['sekimori:lock.submit', ['pin', '246810', 'extra']],
    ['sekimori:lock.submit', [{ toString: () => 'pin' }, '246810']],
    ['sekimori:lock.get', ['unexpected']],
    ['sekimori:lock.enrolBegin', [null]],
    ['sekimori:lock.enrolConfirm', ['1'.repeat(33)]],
    ['sekimori:lock.recoveryChallenge', ['reset-everything']],
    ['sekimori:lock.recoveryRespond', ['1'.repeat(201)]],
    ['sekimori:lock.heartbeat', [1]],
  ];
  it.each(bad)('refuses %s with arguments %j without calling the agent', async (channel, args) => {
    const agent = fakeAgent();
    const { router: r } = router(agent);
    await expect(r.dispatch(channel, fromLock, args)).resolves.toMatchObject({ ok: false, error: { code: 'refused', message: 'bad arguments' } });
    expect(agent.calls).toEqual([]);
  });

  it('passes valid arguments through to the agent', async () => {
    const agent = fakeAgent();
    const { router: r } = router(agent);
    await r.dispatch('sekimori:lock.enrolBegin', fromLock, ['246810']);
    await r.dispatch('sekimori:lock.enrolConfirm', fromLock, ['135790']);
    await r.dispatch('sekimori:lock.recoveryChallenge', fromLock, ['unlock']);
    await r.dispatch('sekimori:lock.recoveryRespond', fromLock, ['12345 67890 12345']);
    await expect(r.dispatch('sekimori:lock.heartbeat', fromLock, [])).resolves.toEqual({ ok: true, value: null });
    await expect(r.dispatch('sekimori:lock.activity', fromLock, [])).resolves.toEqual({ ok: true, value: null });
    expect(agent.calls).toEqual([
      ['enrolBegin', '246810'],
      ['enrolConfirm', '135790'],
      ['recoveryChallenge', 'unlock'],
      ['recoveryRespond', '12345 67890 12345'],
      ['uiHeartbeat'],
      ['activity'],
    ]);
  });
});

describe('IPC handlers: agent failures become results', () => {
  it.each([
    [new AgentUnavailableError('not connected'), 'agent-unavailable'],
    [new IpcRequestRefused('forbidden', 'not the console user'), 'agent-refused'],
    [new AgentBadAnswerError('lock.get', 'off contract'), 'bad-answer'],
    [new TypeError('a bug'), 'internal'],
  ] as const)('answers %s with %s', async (error, code) => {
    const { router: r } = router(fakeAgent({ getLock: () => Promise.reject(error) }));
    await expect(r.dispatch('sekimori:lock.get', fromLock, [])).resolves.toMatchObject({ ok: false, error: { code } });
  });

  it('callChannel validates without a sender (for a bridge that stands in for Electron IPC)', async () => {
    const agent = fakeAgent();
    await expect(callChannel(agent, 'sekimori:lock.submit', ['pin', '246810'])).resolves.toMatchObject({ ok: true });
    await expect(callChannel(agent, 'sekimori:lock.submit', ['pin'])).resolves.toMatchObject({ ok: false, error: { code: 'refused' } });
    await expect(callChannel(agent, 'sekimori:nope', [])).resolves.toMatchObject({ ok: false, error: { code: 'refused' } });
  });
});

describe('registerIpcHandlers', () => {
  it('registers every channel on ipcMain, routes through the checks, and removes them all', async () => {
    const handlers = new Map<string, (event: InvokeEventLike, ...args: unknown[]) => Promise<unknown>>();
    const ipcMain = {
      handle: (channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => Promise<unknown>) => void handlers.set(channel, listener),
      removeHandler: (channel: string) => void handlers.delete(channel),
    };
    const agent = fakeAgent();
    const stop = registerIpcHandlers(ipcMain, router(agent).router);
    expect([...handlers.keys()].sort()).toEqual([...INVOKE_CHANNELS].sort());
    await expect(handlers.get('sekimori:lock.submit')!(fromLock, 'pin', '246810')).resolves.toMatchObject({ ok: true });
    await expect(handlers.get('sekimori:lock.submit')!(mainFrame('https://evil.example/'), 'pin', '246810')).resolves.toMatchObject({ ok: false });
    expect(agent.calls).toEqual([['submit', 'pin', '246810']]);
    stop();
    expect(handlers.size).toBe(0);
  });
});
