import type { BlockedNotice, LockView, StatusView } from '../shared/ipc.js';
import type { AgentConnectionState, UiPrefs } from '../shared/preload-api.js';

/**
 * The preload bridge as main sees it: the API itself is declared once in `shared/preload-api.ts`
 * (main and renderer may not import each other); here are the IPC channels that carry it.
 */
export type { AgentConnectionState, BridgeErrorCode, BridgeResult, RequestDraft, SekimoriApi, UiPrefs } from '../shared/preload-api.js';

/** Channels a page may invoke (`sekimori:<domain>.<verb>`), each answered with a `BridgeResult`. */
export const INVOKE_CHANNELS = [
  'sekimori:agent.connection',
  'sekimori:lock.get',
  'sekimori:lock.submit',
  'sekimori:lock.activity',
  'sekimori:lock.heartbeat',
  'sekimori:lock.enrolBegin',
  'sekimori:lock.enrolConfirm',
  'sekimori:lock.recoveryChallenge',
  'sekimori:lock.recoveryRespond',
  'sekimori:lock.now',
  'sekimori:status.get',
  'sekimori:requests.list',
  'sekimori:requests.submit',
  'sekimori:app.openRequestForm',
  'sekimori:app.prefs',
  'sekimori:app.setLanguage',
] as const;
export type InvokeChannel = (typeof INVOKE_CHANNELS)[number];

/** Channels main pushes to pages, with their payloads. */
export const EVENT_CHANNELS = {
  lockChanged: 'sekimori:lock.changed',
  connectionChanged: 'sekimori:agent.connectionChanged',
  statusChanged: 'sekimori:status.changed',
  prefsChanged: 'sekimori:app.prefsChanged',
} as const;
export type EventChannel = (typeof EVENT_CHANNELS)[keyof typeof EVENT_CHANNELS];
export interface EventPayloads {
  'sekimori:lock.changed': LockView;
  'sekimori:agent.connectionChanged': AgentConnectionState;
  'sekimori:status.changed': StatusView;
  'sekimori:app.prefsChanged': UiPrefs;
}
/** Not sent to pages: main turns it into a native notification. */
export type { BlockedNotice };
