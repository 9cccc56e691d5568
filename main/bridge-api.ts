import type { EnrolmentOffer, LockAttemptResult, LockView } from '../shared/ipc.js';
import type { RecoveryAction } from '../shared/lock.js';
import type { Result } from '../shared/result.js';
import type { AgentConnectionState } from './agent-client.js';

/**
 * The one API the preload exposes to pages as `window.sekimori` (DESIGN.md §9), as main sees it.
 * `renderer/preload-api.ts` declares the same shape for the pages (main and renderer may not import
 * each other); `test/main/preload.test.ts` fails the type-check when the two drift apart.
 *
 * Every call answers with a result value, never a rejection: `{ ok: false }` when the agent cannot
 * be reached, refuses, answers off the contract, or main refuses the call (wrong page, bad arguments).
 */

export type BridgeErrorCode = 'agent-unavailable' | 'agent-refused' | 'bad-answer' | 'refused' | 'internal';
export type BridgeResult<T> = Result<T, BridgeErrorCode>;
export type { AgentConnectionState };

export interface SekimoriApi {
  readonly agent: {
    connection(): Promise<BridgeResult<AgentConnectionState>>;
    /** Returns a function that stops the listener. */
    onDidChangeConnection(listener: (state: AgentConnectionState) => void): () => void;
  };
  readonly lock: {
    get(): Promise<BridgeResult<LockView>>;
    submit(factor: 'pin' | 'totp', secret: string): Promise<BridgeResult<LockAttemptResult>>;
    /** Keyboard or pointer input on the lock screen. */
    activity(): Promise<BridgeResult<null>>;
    /** The lock screen is alive (every 5 s while it shows). */
    heartbeat(): Promise<BridgeResult<null>>;
    enrolBegin(pin: string): Promise<BridgeResult<EnrolmentOffer>>;
    enrolConfirm(code: string): Promise<BridgeResult<LockAttemptResult>>;
    recoveryChallenge(action: RecoveryAction): Promise<BridgeResult<LockAttemptResult>>;
    recoveryRespond(response: string): Promise<BridgeResult<LockAttemptResult>>;
    /** Every lock view the agent pushes. Returns a function that stops the listener. */
    onDidChange(listener: (view: LockView) => void): () => void;
  };
}

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
