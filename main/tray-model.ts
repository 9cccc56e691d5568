import { t, type Locale } from '../shared/i18n.js';
import type { LockView, StatusView } from '../shared/ipc.js';
import type { AgentConnectionState } from '../shared/preload-api.js';

/**
 * What the tray shows, decided without Electron: the state icon, the tooltip and the menu. The
 * agent owns every fact; this only ranks them. The icon files are rendered from one source by
 * `npm run icons` (build/icons/design.ts) and shipped under `resources/icons/tray`.
 */

/** The tray states (the icon files are named after them). */
export type TrayState = 'protected' | 'violation' | 'offline' | 'unenforced' | 'locked';

export type TrayAction = 'open-status' | 'request-device' | 'lock-now' | 'about';

export interface TrayMenuItem {
  readonly action: TrayAction;
  readonly label: string;
  readonly enabled: boolean;
}

export interface TrayModel {
  readonly state: TrayState;
  /** Windows shows at most 127 characters; the tooltip stays well under. */
  readonly tooltip: string;
  readonly menu: readonly TrayMenuItem[];
}

export interface TrayInput {
  readonly connection: AgentConnectionState;
  readonly lock: LockView | null;
  readonly status: StatusView | null;
  readonly locale: Locale;
}

/**
 * The one state the icon shows, most urgent first: no agent (nothing is known, so nothing is
 * claimed: "not enforced" colour and the unavailable text), locked, not enforced (also audit mode:
 * devices are not blocked), a failed self-inspection, the server out of reach, protected.
 */
export function trayState(input: TrayInput): { state: TrayState; reason: string } {
  const { locale } = input;
  if (input.connection !== 'connected') return { state: 'unenforced', reason: t('status.agentUnavailable', locale) };
  const lockState = input.lock?.state ?? input.status?.lockState ?? 'unknown';
  if (lockState === 'locked' || lockState === 'second-factor') return { state: 'locked', reason: t('tray.state.locked', locale) };
  const status = input.status;
  if (status === null) return { state: 'unenforced', reason: t('status.pending', locale) };
  if (status.enforcement.state === 'unenforced') return { state: 'unenforced', reason: t('status.unenforced', locale) };
  if (status.enforcement.state === 'audit' || status.policy.mode === 'audit') return { state: 'unenforced', reason: t('tray.state.audit', locale) };
  if (status.compliance.overall === 'fail') return { state: 'violation', reason: t('tray.state.violation', locale) };
  if (status.server.configured && !status.server.reachable) return { state: 'offline', reason: t('status.offline', locale) };
  return { state: 'protected', reason: t('status.protected', locale) };
}

export function trayModel(input: TrayInput): TrayModel {
  const { state, reason } = trayState(input);
  const { locale } = input;
  const connected = input.connection === 'connected';
  const locked = (input.lock?.state ?? 'unknown') !== 'unlocked';
  return {
    state,
    tooltip: `${t('app.name', locale)} — ${reason}`.slice(0, 120),
    menu: [
      { action: 'open-status', label: t('tray.menu.status', locale), enabled: true },
      { action: 'request-device', label: t('tray.menu.request', locale), enabled: connected && !locked },
      { action: 'lock-now', label: t('tray.menu.lockNow', locale), enabled: connected && !locked },
      { action: 'about', label: t('tray.menu.about', locale), enabled: true },
    ],
  };
}

/** The icon file for `state` (relative to the tray icon folder): `.ico` on Windows, a 32-px PNG elsewhere (Electron scales it). */
export function trayIconFile(state: TrayState, platform: NodeJS.Platform): string {
  return platform === 'win32' ? `${state}.ico` : `${state}-32.png`;
}
