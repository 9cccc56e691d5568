import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LockView } from '../../shared/ipc.js';
import { TRAY_STATES } from '../../build/icons/design.js';
import { trayIconFile, trayModel, trayState, type TrayInput } from '../../main/tray-model.js';
import { baseView } from '../renderer/scripted-lock-agent.js';
import { statusView } from './status-fixture.js';

/** main/tray-model.ts: which icon, tooltip and menu the tray shows for what the agent reports. */

const unlocked: LockView = { ...baseView(), state: 'unlocked' };
const input = (overrides: Partial<TrayInput> = {}): TrayInput => ({ connection: 'connected', lock: unlocked, status: statusView(), locale: 'ja', ...overrides });

describe('tray state', () => {
  it('ranks the facts: no agent, locked, not enforced, audit, violation, offline, protected', () => {
    expect(trayState(input({ connection: 'unavailable' }))).toEqual({ state: 'unenforced', reason: '保護サービスに接続できません' });
    expect(trayState(input({ connection: 'connecting' })).state).toBe('unenforced');
    // Locked wins over everything the agent reports.
    expect(trayState(input({ lock: { ...unlocked, state: 'second-factor' }, status: statusView({ compliance: { overall: 'fail', ranAt: null, pass: 0, fail: 1, unknown: 0, failing: ['device-control'] } }) })).state).toBe('locked');
    expect(trayState(input({ status: statusView({ enforcement: { state: 'unenforced', reason: 'not-root' } }) })).state).toBe('unenforced');
    expect(trayState(input({ status: statusView({ enforcement: { state: 'audit', reason: null } }) }))).toMatchObject({ state: 'unenforced', reason: expect.stringContaining('監査モード') });
    const failing = statusView({ compliance: { overall: 'fail', ranAt: null, pass: 11, fail: 1, unknown: 0, failing: ['device-control'] } });
    expect(trayState(input({ status: failing })).state).toBe('violation');
    // A violation outranks the server being out of reach (both true: the violation is what staff must act on).
    expect(trayState(input({ status: { ...failing, server: { ...failing.server, reachable: false } } })).state).toBe('violation');
    expect(trayState(input({ status: statusView({ server: { configured: true, enrolled: true, lastContactAt: null, reachable: false } }) })).state).toBe('offline');
    // No server configured (a stand-alone terminal) is not "offline".
    expect(trayState(input({ status: statusView({ server: { configured: false, enrolled: false, lastContactAt: null, reachable: false } }) })).state).toBe('protected');
    expect(trayState(input())).toEqual({ state: 'protected', reason: '保護されています' });
  });

  it('claims nothing before the first status arrives', () => {
    expect(trayState(input({ status: null })).state).toBe('unenforced');
  });
});

describe('tray menu and tooltip', () => {
  it('offers status, request, lock now and about in Japanese, and English on request', () => {
    const model = trayModel(input());
    expect(model.menu.map((item) => [item.action, item.label, item.enabled])).toEqual([
      ['open-status', '状態を表示', true],
      ['request-device', 'USB機器の使用を申請', true],
      ['lock-now', '今すぐロック', true],
      ['about', 'バージョン情報', true],
    ]);
    expect(model.tooltip).toBe('関守 (Sekimori) — 保護されています');
    expect(trayModel(input({ locale: 'en' })).menu.map((item) => item.label)).toEqual(['Show status', 'Request use of a USB device', 'Lock now', 'About']);
  });

  it('disables request and lock now while locked or without the agent (the lock screen is showing)', () => {
    for (const model of [trayModel(input({ lock: { ...unlocked, state: 'locked' } })), trayModel(input({ connection: 'unavailable', lock: null }))]) {
      expect(model.menu.filter((item) => item.enabled).map((item) => item.action)).toEqual(['open-status', 'about']);
    }
  });

  it('keeps the tooltip under the 127 characters Windows shows', () => {
    for (const locale of ['ja', 'en'] as const) {
      for (const connection of ['connected', 'unavailable'] as const) {
        expect(trayModel(input({ locale, connection, status: statusView({ enforcement: { state: 'audit', reason: null } }) })).tooltip.length).toBeLessThanOrEqual(127);
      }
    }
  });
});

describe('tray icons', () => {
  it('names a rendered icon file for every state on Windows and Linux', () => {
    const dir = path.join(import.meta.dirname, '../../build/icons/tray');
    for (const state of TRAY_STATES) {
      for (const platform of ['win32', 'linux'] as const) {
        expect(fs.existsSync(path.join(dir, trayIconFile(state, platform))), `${state} ${platform}`).toBe(true);
      }
    }
  });
});
