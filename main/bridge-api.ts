import type { LockView } from '../shared/ipc.js';
import type { AgentConnectionState } from '../shared/preload-api.js';

/**
 * The preload bridge as main sees it: the API itself is declared once in `shared/preload-api.ts`
 * (main and renderer may not import each other); here are the IPC channels that carry it.
 */
export type { AgentConnectionState, BridgeErrorCode, BridgeResult, SekimoriApi } from '../shared/preload-api.js';

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
] as const;
export type InvokeChannel = (typeof INVOKE_CHANNELS)[number];

/** Channels main pushes to pages, with their payloads. */
export const EVENT_CHANNELS = {
  lockChanged: 'sekimori:lock.changed',
  connectionChanged: 'sekimori:agent.connectionChanged',
} as const;
export type EventChannel = (typeof EVENT_CHANNELS)[keyof typeof EVENT_CHANNELS];
export interface EventPayloads {
  'sekimori:lock.changed': LockView;
  'sekimori:agent.connectionChanged': AgentConnectionState;
}
