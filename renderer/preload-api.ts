/** `window.sekimori` as pages see it: the one declaration lives in shared/ (main implements the same). */
export type { AgentConnectionState, BridgeErrorCode, BridgeResult, SekimoriApi } from '../shared/preload-api.js';
