import fs from 'node:fs/promises';
import path from 'node:path';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { EVENT_CHANNELS, INVOKE_CHANNELS, type SekimoriApi as MainSekimoriApi } from '../../main/bridge-api.js';
import { ROOT } from '../helpers/processes.js';

/**
 * The built preload (dist/main/preload.cjs) run as Electron runs a sandboxed preload: CommonJS,
 * with a `require` that offers `electron` only (here a recording stand-in). Needs `npm run build`.
 */

async function loadPreload() {
  const source = await fs.readFile(path.join(ROOT, 'dist/main/preload.cjs'), 'utf8');
  const invoked: { channel: string; args: unknown[] }[] = [];
  const listeners = new Map<string, Set<(event: unknown, payload: unknown) => void>>();
  const removed: string[] = [];
  const exposed: { key: string; api: unknown }[] = [];
  const required: string[] = [];
  const electron = {
    contextBridge: { exposeInMainWorld: (key: string, api: unknown) => exposed.push({ key, api }) },
    ipcRenderer: {
      invoke: (channel: string, ...args: unknown[]) => {
        invoked.push({ channel, args });
        return Promise.resolve({ ok: true, value: channel });
      },
      on: (channel: string, listener: (event: unknown, payload: unknown) => void) => {
        if (!listeners.has(channel)) listeners.set(channel, new Set());
        listeners.get(channel)!.add(listener);
      },
      removeListener: (channel: string, listener: (event: unknown, payload: unknown) => void) => {
        removed.push(channel);
        listeners.get(channel)?.delete(listener);
      },
    },
  };
  const module = { exports: {} };
  const require = (name: string): unknown => {
    required.push(name);
    if (name === 'electron') return electron;
    throw new Error(`a sandboxed preload cannot require ${name}`);
  };
  vm.runInNewContext(`(function (require, module, exports) {\n${source}\n})`, {}, { filename: 'preload.cjs' })(require, module, module.exports);
  return { invoked, listeners, removed, exposed, required };
}

describe('preload', () => {
  it('requires only electron and exposes one API, window.sekimori', async () => {
    const { exposed, required } = await loadPreload();
    expect(required).toEqual(['electron']);
    expect(exposed.map((entry) => entry.key)).toEqual(['sekimori']);
    const api = exposed[0]!.api as Record<string, Record<string, unknown>>;
    expect(Object.keys(api).sort()).toEqual(['agent', 'app', 'lock', 'requests', 'status']);
    expect(Object.keys(api.lock!).sort()).toEqual(['activity', 'enrolBegin', 'enrolConfirm', 'get', 'heartbeat', 'now', 'onDidChange', 'recoveryChallenge', 'recoveryRespond', 'submit']);
    expect(Object.keys(api.agent!).sort()).toEqual(['connection', 'onDidChangeConnection']);
    expect(Object.keys(api.status!).sort()).toEqual(['get', 'onDidChange']);
    expect(Object.keys(api.requests!).sort()).toEqual(['list', 'submit']);
    expect(Object.keys(api.app!).sort()).toEqual(['onDidChangePrefs', 'openRequestForm', 'prefs', 'setLanguage']);
  });

  it("invokes exactly main's channels, passing the arguments through", async () => {
    const { exposed, invoked } = await loadPreload();
    const api = exposed[0]!.api as MainSekimoriApi;
    await api.agent.connection();
    await api.lock.get();
    await expect(api.lock.submit('pin', '246810')).resolves.toEqual({ ok: true, value: 'sekimori:lock.submit' });
    await api.lock.activity();
    await api.lock.heartbeat();
    await api.lock.enrolBegin('246810');
    await api.lock.enrolConfirm('135790');
    await api.lock.recoveryChallenge('unlock');
    await api.lock.recoveryRespond('12345-67890-12345');
    await api.lock.now();
    await api.status.get();
    await api.requests.list();
    const draft = { deviceKey: '1-2', purpose: '会議資料', until: '2026-11-27T09:00:00+09:00', access: 'read-only' } as const;
    await api.requests.submit(draft);
    await api.app.openRequestForm('1-2');
    await api.app.prefs();
    await api.app.setLanguage('en');
    expect(invoked.find((call) => call.channel === 'sekimori:requests.submit')?.args).toEqual([draft]);
    expect(invoked.find((call) => call.channel === 'sekimori:app.openRequestForm')?.args).toEqual(['1-2']);
    expect(invoked.map((call) => call.channel).sort()).toEqual([...INVOKE_CHANNELS].sort());
    expect(invoked.find((call) => call.channel === 'sekimori:lock.submit')?.args).toEqual(['pin', '246810']);
    expect(invoked.find((call) => call.channel === 'sekimori:lock.recoveryRespond')?.args).toEqual(['12345-67890-12345']);
  });

  it('hands listeners the payload only (never the IPC event) and unsubscribes them', async () => {
    const { exposed, listeners, removed } = await loadPreload();
    const api = exposed[0]!.api as MainSekimoriApi;
    const views: unknown[] = [];
    const states: unknown[] = [];
    const stopLock = api.lock.onDidChange((view) => views.push(view));
    const stopConnection = api.agent.onDidChangeConnection((state) => states.push(state));
    const statuses: unknown[] = [];
    const prefs: unknown[] = [];
    const stopStatus = api.status.onDidChange((view) => statuses.push(view));
    const stopPrefs = api.app.onDidChangePrefs((value) => prefs.push(value));
    expect([...listeners.keys()].sort()).toEqual(Object.values(EVENT_CHANNELS).sort());
    const ipcEvent = { sender: { send: () => undefined }, senderFrame: {} };
    for (const listener of listeners.get(EVENT_CHANNELS.lockChanged)!) listener(ipcEvent, { state: 'locked' });
    for (const listener of listeners.get(EVENT_CHANNELS.connectionChanged)!) listener(ipcEvent, 'unavailable');
    expect(views).toEqual([{ state: 'locked' }]);
    expect(states).toEqual(['unavailable']);
    for (const listener of listeners.get(EVENT_CHANNELS.statusChanged)!) listener(ipcEvent, { tier: 'mynumber' });
    for (const listener of listeners.get(EVENT_CHANNELS.prefsChanged)!) listener(ipcEvent, { language: 'en' });
    expect(statuses).toEqual([{ tier: 'mynumber' }]);
    expect(prefs).toEqual([{ language: 'en' }]);
    stopLock();
    stopConnection();
    stopStatus();
    stopPrefs();
    expect(removed.sort()).toEqual(Object.values(EVENT_CHANNELS).sort());
    expect([...listeners.values()].every((set) => set.size === 0)).toBe(true);
  });
});
