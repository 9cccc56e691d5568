/** `window.sekimori` as pages see it: the one declaration lives in shared/ (main implements the same). */
export type { AgentConnectionState, BridgeErrorCode, BridgeResult, RequestDraft, SekimoriApi, UiPrefs } from '../shared/preload-api.js';
