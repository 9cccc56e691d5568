/**
 * The preload of every app window: exposes one namespaced API, `window.sekimori` (DESIGN.md §9).
 * Sandboxed preloads run as CommonJS and may require only `electron` (and a few built-ins), so this
 * file imports nothing else at run time: the channel names are written here and type-checked against
 * `bridge-api.ts`, and `test/main/preload.test.ts` checks them against the handlers' list.
 *
 * It passes plain arguments through and hands back main's answers; main validates everything
 * (`ipc-handlers.ts`). Pages never see `ipcRenderer` or an event object.
 */
// A sandboxed preload is CommonJS: `import x = require()` is how TypeScript writes its require.
// eslint-disable-next-line @typescript-eslint/no-require-imports
import electron = require('electron');
import type { EventChannel, EventPayloads, InvokeChannel, SekimoriApi } from './bridge-api.js';

const { contextBridge, ipcRenderer } = electron;

/** Main's answer is typed by the contract (`SekimoriApi`); `T` comes from the method it implements. */
const invoke = <T,>(channel: InvokeChannel, ...args: unknown[]): Promise<T> => ipcRenderer.invoke(channel, ...args) as Promise<T>;

function subscribe<C extends EventChannel>(channel: C, listener: (payload: EventPayloads[C]) => void): () => void {
  const forward = (_event: unknown, payload: EventPayloads[C]): void => listener(payload);
  ipcRenderer.on(channel, forward);
  return () => {
    ipcRenderer.removeListener(channel, forward);
  };
}

const api: SekimoriApi = {
  agent: {
    connection: () => invoke('sekimori:agent.connection'),
    onDidChangeConnection: (listener) => subscribe('sekimori:agent.connectionChanged', listener),
  },
  lock: {
    get: () => invoke('sekimori:lock.get'),
    submit: (factor, secret) => invoke('sekimori:lock.submit', factor, secret),
    activity: () => invoke('sekimori:lock.activity'),
    heartbeat: () => invoke('sekimori:lock.heartbeat'),
    enrolBegin: (pin) => invoke('sekimori:lock.enrolBegin', pin),
    enrolConfirm: (code) => invoke('sekimori:lock.enrolConfirm', code),
    recoveryChallenge: (action) => invoke('sekimori:lock.recoveryChallenge', action),
    recoveryRespond: (response) => invoke('sekimori:lock.recoveryRespond', response),
    onDidChange: (listener) => subscribe('sekimori:lock.changed', listener),
    now: () => invoke('sekimori:lock.now'),
  },
  status: {
    get: () => invoke('sekimori:status.get'),
    onDidChange: (listener) => subscribe('sekimori:status.changed', listener),
  },
  requests: {
    list: () => invoke('sekimori:requests.list'),
    submit: (draft) => invoke('sekimori:requests.submit', draft),
  },
  app: {
    openRequestForm: (deviceKey) => invoke('sekimori:app.openRequestForm', deviceKey),
    prefs: () => invoke('sekimori:app.prefs'),
    setLanguage: (language) => invoke('sekimori:app.setLanguage', language),
    onDidChangePrefs: (listener) => subscribe('sekimori:app.prefsChanged', listener),
  },
};

contextBridge.exposeInMainWorld('sekimori', api);
