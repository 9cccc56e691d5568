import type { Locale } from './i18n.js';
import type { EnrolmentOffer, LocalRequestView, LockAttemptResult, LockView, RequestSubmitAnswer, StatusView } from './ipc.js';
import type { RecoveryAction } from './lock.js';

/**
 * `window.sekimori`, the one API the Electron preload gives pages (DESIGN.md §9). One declaration
 * for both sides: main implements it (`main/preload.cts`, `main/bridge-api.ts` adds the channels),
 * pages call it (`renderer/`), and in tests a stand-in provides it (`test/helpers/browser.ts`).
 *
 * Every call answers with a result value, never a rejection: `{ ok: false }` when the agent cannot
 * be reached, refuses, answers off the contract, or main refuses the call (wrong page, bad arguments).
 */

export type BridgeErrorCode = 'agent-unavailable' | 'agent-refused' | 'bad-answer' | 'refused' | 'internal';
/**
 * `reason` is the agent's own refusal code when `code` is `agent-refused` (e.g. `purpose-empty`,
 * `not-blocked`: `REQUEST_REFUSAL_CODES` in `shared/ipc.ts`), so a page can word it.
 */
export type BridgeResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: { readonly code: BridgeErrorCode; readonly message: string; readonly reason?: string } };
/** A staff member's own display preferences (electron-store; nothing security depends on). */
export interface UiPrefs {
  readonly language: Locale;
}
/** What the request form sends (the device is named by its key in the agent's own record). */
export interface RequestDraft {
  readonly deviceKey: string;
  readonly purpose: string;
  /** End of the window (ISO with offset); the window starts when the request is sent. */
  readonly until: string;
  readonly access: 'read-only' | 'read-write';
}
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
    /** Locks the terminal now (the status window's and the tray's 「今すぐロック」). */
    now(): Promise<BridgeResult<LockView>>;
  };
  readonly status: {
    get(): Promise<BridgeResult<StatusView>>;
    /** Every status view the agent pushes (on changes, not on a timer). Returns a function that stops the listener. */
    onDidChange(listener: (view: StatusView) => void): () => void;
  };
  readonly requests: {
    /** This terminal's requests, newest first. */
    list(): Promise<BridgeResult<LocalRequestView[]>>;
    submit(draft: RequestDraft): Promise<BridgeResult<RequestSubmitAnswer>>;
  };
  readonly app: {
    /** Opens the request form, with `deviceKey` chosen when given (the status window's 「申請」 buttons). */
    openRequestForm(deviceKey: string | null): Promise<BridgeResult<null>>;
    prefs(): Promise<BridgeResult<UiPrefs>>;
    setLanguage(language: Locale): Promise<BridgeResult<UiPrefs>>;
    /** The preferences changed (another window switched the language). */
    onDidChangePrefs(listener: (prefs: UiPrefs) => void): () => void;
  };
}
