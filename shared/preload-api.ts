import type { EnrolmentOffer, LockAttemptResult, LockView } from './ipc.js';
import type { RecoveryAction } from './lock.js';
import type { Result } from './result.js';

/**
 * `window.sekimori`, the one API the Electron preload gives pages (DESIGN.md §9). One declaration
 * for both sides: main implements it (`main/preload.cts`, `main/bridge-api.ts` adds the channels),
 * pages call it (`renderer/`), and in tests a stand-in provides it (`test/helpers/browser.ts`).
 *
 * Every call answers with a result value, never a rejection: `{ ok: false }` when the agent cannot
 * be reached, refuses, answers off the contract, or main refuses the call (wrong page, bad arguments).
 */

export type BridgeErrorCode = 'agent-unavailable' | 'agent-refused' | 'bad-answer' | 'refused' | 'internal';
export type BridgeResult<T> = Result<T, BridgeErrorCode>;
/** `connecting`: the first attempt is under way; `connected`: subscribed and the lock view is known; `unavailable`: not reachable, retrying (stay locked). */
export type AgentConnectionState = 'connecting' | 'connected' | 'unavailable';

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
