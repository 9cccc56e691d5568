import { describe, expect, it } from 'vitest';
import { IpcRequestRefused } from '../../shared/ipc-connection.js';
import type { LockAttemptResult } from '../../shared/ipc.js';
import { AgentBadAnswerError, AgentUnavailableError } from '../../main/agent-client.js';
import { INVOKE_CHANNELS } from '../../main/bridge-api.js';
import { callChannel, createIpcRouter, pageOf, registerIpcHandlers, type AgentCalls, type AppCalls, type InvokeEventLike } from '../../main/ipc-handlers.js';
import { baseView } from '../renderer/scripted-lock-agent.js';
import { statusView } from './status-fixture.js';

/**
 * main/ipc-handlers.ts with plain objects shaped like Electron's IpcMainInvokeEvent (no Electron):
 * the sender frame check, argument validation, and the mapping of agent failures to results.
 */

const PAGES = {
  lock: 'file:///opt/Sekimori/resources/app/dist/renderer/lock.html',
  status: 'file:///opt/Sekimori/resources/app/dist/renderer/status.html',
  request: 'file:///opt/Sekimori/resources/app/dist/renderer/request.html',
};

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
    lockNow: () => (calls.push(['lockNow']), Promise.resolve({ ...view, state: 'locked' })),
    statusView: () => (calls.push(['statusView']), Promise.resolve(statusView())),
    requestList: () => (calls.push(['requestList']), Promise.resolve([])),
    requestSubmit: (draft) => (calls.push(['requestSubmit', draft]), Promise.resolve({ id: 'req_000000000000000000000001', requests: [] })),
    ...overrides,
  };
}

/** A fake app (windows and preferences) that records calls. */
function fakeApp(): AppCalls & { calls: [string, ...unknown[]][] } {
  const calls: [string, ...unknown[]][] = [];
  let language: 'ja' | 'en' = 'ja';
  return {
    calls,
    openRequestForm: (key) => (calls.push(['openRequestForm', key]), Promise.resolve()),
    prefs: () => (calls.push(['prefs']), { language }),
    setLanguage: (value) => {
      calls.push(['setLanguage', value]);
      language = value;
      return { language };
    },
  };
}

function router(agent: AgentCalls = fakeAgent(), app?: AppCalls) {
  const logs: string[] = [];
  return { router: createIpcRouter({ agent, ...(app ? { app } : {}), pages: PAGES, log: (message) => logs.push(message) }), logs };
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
    for (const channel of ['sekimori:lock.nowPlease', 'sekimori:auth.verify', 'sekimori:journal.append', '', '__proto__', 'constructor']) {
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

  it('gives the status window and the request form their channels and nothing of the lock screen', async () => {
    const agent = fakeAgent();
    const app = fakeApp();
    const { router: r } = router(agent, app);
    const fromStatus = mainFrame(PAGES.status);
    const fromRequest = mainFrame(`${PAGES.request}#device=1-2`);
    await expect(r.dispatch('sekimori:status.get', fromStatus, [])).resolves.toEqual({ ok: true, value: statusView() });
    await expect(r.dispatch('sekimori:lock.now', fromStatus, [])).resolves.toMatchObject({ ok: true, value: { state: 'locked' } });
    await expect(r.dispatch('sekimori:app.openRequestForm', fromStatus, ['1-2'])).resolves.toEqual({ ok: true, value: null });
    await expect(r.dispatch('sekimori:app.setLanguage', fromStatus, ['en'])).resolves.toEqual({ ok: true, value: { language: 'en' } });
    const draft = { deviceKey: '1-2', purpose: '住民説明会の資料', until: '2026-11-27T09:00:00+09:00', access: 'read-only' };
    await expect(r.dispatch('sekimori:requests.submit', fromRequest, [draft])).resolves.toMatchObject({ ok: true });
    await expect(r.dispatch('sekimori:requests.list', fromRequest, [])).resolves.toEqual({ ok: true, value: [] });
    // Not theirs: the request form cannot lock; the status window cannot submit a request; the lock page cannot open windows.
    await expect(r.dispatch('sekimori:lock.now', fromRequest, [])).resolves.toMatchObject({ ok: false, error: { code: 'refused' } });
    await expect(r.dispatch('sekimori:requests.submit', fromStatus, [draft])).resolves.toMatchObject({ ok: false, error: { code: 'refused' } });
    await expect(r.dispatch('sekimori:app.openRequestForm', fromLock, [null])).resolves.toMatchObject({ ok: false, error: { code: 'refused' } });
    await expect(r.dispatch('sekimori:lock.submit', fromRequest, ['pin', '246810'])).resolves.toMatchObject({ ok: false, error: { code: 'refused' } });
    expect(agent.calls).toEqual([['statusView'], ['lockNow'], ['requestSubmit', draft], ['requestList']]);
    expect(app.calls).toEqual([['openRequestForm', '1-2'], ['setLanguage', 'en']]);
  });

  it('refuses app channels in a bridge that has no app', async () => {
    const { router: r } = router(fakeAgent());
    await expect(r.dispatch('sekimori:app.prefs', mainFrame(PAGES.status), [])).resolves.toMatchObject({ ok: false, error: { code: 'refused' } });
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
  const fromStatus = mainFrame(PAGES.status);
  const fromRequest = mainFrame(PAGES.request);
  const draft = { deviceKey: '1-2', purpose: 'x', until: '2026-11-27T09:00:00+09:00', access: 'read-only' };
  const badApp: [string, InvokeEventLike, unknown[]][] = [
    ['sekimori:requests.submit', fromRequest, []],
    ['sekimori:requests.submit', fromRequest, [{ ...draft, access: 'everything' }]],
    ['sekimori:requests.submit', fromRequest, [{ ...draft, until: 'tomorrow' }]],
    ['sekimori:requests.submit', fromRequest, [{ ...draft, purpose: 'x'.repeat(501) }]],
    ['sekimori:requests.submit', fromRequest, [{ ...draft, deviceKey: '' }]],
    ['sekimori:requests.submit', fromRequest, [{ ...draft, deviceKey: 'a b' }]],
    ['sekimori:requests.submit', fromRequest, [{ ...draft, user: 'root' }]],
    ['sekimori:requests.submit', fromRequest, [JSON.stringify(draft)]],
    ['sekimori:app.openRequestForm', fromStatus, ['k'.repeat(65)]],
    ['sekimori:app.openRequestForm', fromStatus, [{ key: '1-2' }]],
    ['sekimori:app.openRequestForm', fromStatus, []],
    ['sekimori:app.setLanguage', fromStatus, ['fr']],
    ['sekimori:lock.now', fromStatus, [true]],
  ];
  it.each(badApp)('refuses %s with bad arguments without calling anything', async (channel, event, args) => {
    const agent = fakeAgent();
    const app = fakeApp();
    const { router: r } = router(agent, app);
    await expect(r.dispatch(channel, event, args)).resolves.toMatchObject({ ok: false, error: { code: 'refused', message: 'bad arguments' } });
    expect(agent.calls).toEqual([]);
    expect(app.calls).toEqual([]);
  });
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

  it("passes the agent's refusal code on as the reason (the request form words it)", async () => {
    const { router: r } = router(fakeAgent({ requestSubmit: () => Promise.reject(new IpcRequestRefused('purpose-empty', 'write what the device is needed for')) }));
    const draft = { deviceKey: '1-2', purpose: ' ', until: '2026-11-27T09:00:00+09:00', access: 'read-write' };
    await expect(r.dispatch('sekimori:requests.submit', mainFrame(PAGES.request), [draft])).resolves.toEqual({
      ok: false,
      error: { code: 'agent-refused', message: 'purpose-empty: write what the device is needed for', reason: 'purpose-empty' },
    });
  });

  it('callChannel validates without a sender (for a bridge that stands in for Electron IPC)', async () => {
    const agent = fakeAgent();
    await expect(callChannel({ agent }, 'sekimori:lock.submit', ['pin', '246810'])).resolves.toMatchObject({ ok: true });
    await expect(callChannel({ agent }, 'sekimori:lock.submit', ['pin'])).resolves.toMatchObject({ ok: false, error: { code: 'refused' } });
    await expect(callChannel({ agent }, 'sekimori:nope', [])).resolves.toMatchObject({ ok: false, error: { code: 'refused' } });
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
