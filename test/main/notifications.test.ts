import { describe, expect, it } from 'vitest';
import type { BlockedNotice } from '../../shared/ipc.js';
import { BURST_LIMIT, BURST_WINDOW_MS, BlockedNotifier, blockedNotification, inertName, type NotificationContent } from '../../main/notifications.js';

/** main/notifications.ts: the wording, the inert device name and the burst throttle. */

const notice = (overrides: Partial<BlockedNotice> = {}): BlockedNotice => ({
  at: '2026-11-26T01:00:00.000Z',
  channel: 'usb',
  key: '1-2',
  name: 'Cruzer Blade',
  id: '0781:5567',
  decision: 'block',
  requestable: true,
  ...overrides,
});

describe('blocked-device notification', () => {
  it('names the device and says what to do (申請), in Japanese by default', () => {
    const content = blockedNotification(notice(), 'ja');
    expect(content.title).toBe('USB機器の使用をブロックしました');
    expect(content.body).toContain('「Cruzer Blade (0781:5567)」');
    expect(content.body).toContain('申請');
    expect(content.requestDeviceKey).toBe('1-2');
    expect(blockedNotification(notice(), 'en')).toMatchObject({ title: 'USB device blocked', body: expect.stringContaining('request its use') });
  });

  it('says read-only for a read-only decision, and offers no request where none can be made', () => {
    expect(blockedNotification(notice({ decision: 'read-only' }), 'ja')).toMatchObject({ title: 'USB機器を読み取り専用で接続しました', requestDeviceKey: '1-2' });
    const unrequestable = blockedNotification(notice({ requestable: false, key: null, id: '' }), 'ja');
    expect(unrequestable.requestDeviceKey).toBeNull();
    expect(unrequestable.body).toContain('情報システム担当');
    expect(blockedNotification(notice({ channel: 'optical', key: null, id: '', name: 'DVD-RW', requestable: false }), 'ja')).toMatchObject({ title: '外部媒体への書き出しをブロックしました', requestDeviceKey: null });
    expect(blockedNotification(notice({ name: '' }), 'ja').body).toContain('名前のない機器');
  });

  it('keeps a hostile product string inert: no markup, no control or bidi characters, bounded', () => {
    const hostile = '<img src=x onerror=alert(1)>\u0007\u001b[2J\r\n\t\u202e<b>&amp;';
    const shown = inertName(hostile);
    expect([...shown].filter((ch) => '<>&\u007f\u202e'.includes(ch) || ch.charCodeAt(0) < 0x20)).toEqual([]);
    expect(shown).toBe('＜img src=x onerror=alert(1)＞[2J＜b＞＆amp;');
    expect([...inertName('長'.repeat(500))].length).toBe(60);
    expect(blockedNotification(notice({ name: hostile }), 'ja').body).not.toContain('<');
  });
});

describe('BlockedNotifier', () => {
  it(`shows the first ${BURST_LIMIT} of a burst and then one summary of the rest`, () => {
    let now = 0;
    const shown: NotificationContent[] = [];
    const timers: (() => void)[] = [];
    const notifier = new BlockedNotifier({ show: (content) => shown.push(content), locale: () => 'ja', nowMs: () => now, setTimer: (callback) => timers.push(callback), clearTimer: () => undefined });
    for (let i = 0; i < 10; i++) notifier.blocked(notice({ key: `1-${i}`, name: `hub device ${i}` }));
    expect(shown.map((content) => content.body.match(/hub device \d/)?.[0])).toEqual(['hub device 0', 'hub device 1', 'hub device 2']);
    expect(timers).toHaveLength(1);
    now += BURST_WINDOW_MS;
    timers[0]!();
    expect(shown.at(-1)?.body).toBe('ほかに 7 台の機器をブロックしました。詳しくは状態ウィンドウを確認してください。');
    // A new window lets notifications through again.
    notifier.blocked(notice({ key: '2-1', name: 'later stick' }));
    expect(shown.at(-1)?.body).toContain('later stick');
  });
});
