import { afterEach, describe, expect, it, vi } from 'vitest';
import { StatusViewSchema, type BlockedNotice, type StatusView } from '../../shared/ipc.js';
import type { JournalEntry } from '../../shared/journal.js';
import type { PolicyException } from '../../shared/policy.js';
import { RECENT_BLOCKED_MAX, StatusPublisher, blockedNotice, type StatusSources } from '../../agent/status-view.js';

/** agent/status-view.ts: the status window's view, when it is pushed, and which blocks are announced. */

let seq = 0;
const entry = (type: string, data: Record<string, unknown>): JournalEntry => ({ seq: ++seq, time: `2026-11-26T01:00:${String(seq % 60).padStart(2, '0')}.000Z`, tz: '+09:00', type, data: data as JournalEntry["data"], prev: '0'.repeat(64), hash: '1'.repeat(64) });
const usbBlocked = (key: string, name = 'Cruzer Blade', extra: Record<string, unknown> = {}) => entry('device.blocked', { key, device: { id: '0781:5567', name, serial: 'S1' }, decision: 'block', rule: { kind: 'implicit' }, audit: false, flags: [], ...extra });

function sources(overrides: Partial<StatusSources> = {}): StatusSources & { exceptions: PolicyException[] } {
  const exceptions: PolicyException[] = [];
  return {
    exceptions,
    nowMs: () => Date.parse('2026-11-26T01:00:00Z'),
    hostname: 'pc-042',
    user: () => 'tanaka',
    tier: 'mynumber',
    enforcement: () => ({ state: 'enforced' }),
    policy: () => ({ version: 7, origin: 'signed', mode: 'enforce', receivedAtMs: Date.parse('2026-11-26T00:00:00Z'), exceptions }),
    server: () => ({ configured: true, enrolled: true, lastContactAt: '2026-11-26T00:59:30.000Z', reachable: true }),
    lockState: () => 'unlocked',
    devices: () => [],
    requests: () => [],
    lastInspection: () => null,
    ...overrides,
  };
}

afterEach(() => vi.useRealTimers());

describe('status view', () => {
  it('is what the contract says, with the policy, server, exceptions in force for this user and compliance', () => {
    const src = sources({
      devices: () => [{ key: '1-2', vendorId: '0781', productId: '5567', name: 'Cruzer Blade', serial: 'S1', interfaces: ['08:06:50'], decision: 'read-only', rule: { kind: 'exception', label: null, exceptionId: 'req_a' } }],
      requests: () => [{ id: 'req_b', device: { id: '0951:1727', name: 'IronKey VP50', serial: 'K' }, purpose: 'p', until: '2026-11-27T00:00:00.000Z', access: 'read-write', state: 'approved', approvedUntil: null, approvedAccess: null, reason: null, submittedAt: '2026-11-25T00:00:00.000Z' }],
      lastInspection: () => ({
        runId: '1-1', trigger: 'daily', startedAt: '2026-11-26T00:10:00.000Z', finishedAt: '2026-11-26T00:10:05.000Z', tier: 'mynumber', policyVersion: 7, policyOrigin: 'signed', agentVersion: '0.1.0', platform: 'linux',
        summary: { pass: 10, fail: 1, unknown: 1, overall: 'fail' },
        checks: [{ id: 'policy-current', result: 'pass', detail: {} }, { id: 'disk-encryption', result: 'fail', detail: {} }, { id: 'os-updates', result: 'unknown', detail: {} }],
      }) as never,
    });
    src.exceptions.push(
      { id: 'req_a', device: 'id 0781:5567 serial "S1"', user: 'tanaka', until: '2026-11-26T09:00:00.000Z', access: 'read-only' },
      { id: 'req_b', device: 'id 0951:1727', until: '2026-11-27T00:00:00.000Z', access: 'read-write' },
      { id: 'req_c', device: 'id 1111:2222', user: 'suzuki', until: '2026-11-27T00:00:00.000Z', access: 'read-write' },
      { id: 'req_d', device: 'id 3333:4444', until: '2026-11-26T00:59:59.000Z', access: 'read-write' },
    );
    const view = new StatusPublisher({ sources: src, publish: () => undefined, notify: () => undefined }).view();
    expect(StatusViewSchema.parse(view)).toEqual(view);
    expect(view.policy).toEqual({ version: 7, origin: 'signed', mode: 'enforce', receivedAt: '2026-11-26T00:00:00.000Z' });
    // Another user's approval and an expired one are not shown; the device name comes from the device present, then the request.
    expect(view.exceptions).toEqual([
      { id: 'req_a', device: 'Cruzer Blade', until: '2026-11-26T09:00:00.000Z', access: 'read-only' },
      { id: 'req_b', device: 'IronKey VP50', until: '2026-11-27T00:00:00.000Z', access: 'read-write' },
    ]);
    expect(view.compliance).toEqual({ overall: 'fail', ranAt: '2026-11-26T00:10:05.000Z', pass: 10, fail: 1, unknown: 1, failing: ['disk-encryption'] });
  });

  it('shows no policy version and no received time for the built-in profile', () => {
    const view = new StatusPublisher({ sources: sources({ policy: () => ({ version: 1, origin: 'built-in', mode: 'enforce', receivedAtMs: 0, exceptions: [] }) }), publish: () => undefined, notify: () => undefined }).view();
    expect(view.policy).toMatchObject({ version: null, origin: 'built-in', receivedAt: null });
  });
});

describe('publishing', () => {
  it('publishes once per burst of changes and not at all when nothing changed (the clock alone is not a change)', async () => {
    vi.useFakeTimers();
    let now = Date.parse('2026-11-26T01:00:00Z');
    let lock: StatusView['lockState'] = 'unlocked';
    const published: StatusView[] = [];
    const publisher = new StatusPublisher({ sources: sources({ nowMs: () => now, lockState: () => lock }), publish: (view) => published.push(view), notify: () => undefined, debounceMs: 50 });
    publisher.nudge();
    publisher.nudge();
    await vi.advanceTimersByTimeAsync(60);
    expect(published).toHaveLength(1);
    now += 5_000;
    publisher.nudge();
    await vi.advanceTimersByTimeAsync(60);
    expect(published).toHaveLength(1);
    lock = 'locked';
    publisher.nudge();
    await vi.advanceTimersByTimeAsync(60);
    expect(published.map((view) => view.lockState)).toEqual(['unlocked', 'locked']);
    publisher.dispose();
  });

  it('announces a blocked device once per plug-in, again after it was unplugged or its decision changed', () => {
    vi.useFakeTimers();
    const notices: BlockedNotice[] = [];
    const publisher = new StatusPublisher({ sources: sources(), publish: () => undefined, notify: (notice) => notices.push(notice), debounceMs: 10 });
    publisher.observe([usbBlocked('1-2')]);
    // The policy changed and the agent re-decided the same device the same way: no second notification.
    publisher.observe([usbBlocked('1-2')]);
    expect(notices).toHaveLength(1);
    publisher.observe([entry('device.detached', { key: '1-2' })]);
    publisher.observe([usbBlocked('1-2')]);
    publisher.observe([usbBlocked('1-2', 'Cruzer Blade', { decision: 'read-only' })]);
    expect(notices.map((notice) => notice.decision)).toEqual(['block', 'block', 'read-only']);
    expect(publisher.view().recentBlocked.map((notice) => notice.decision)).toEqual(['read-only', 'block', 'block']);
    publisher.dispose();
  });

  it(`keeps the ${RECENT_BLOCKED_MAX} most recent blocks, newest first`, () => {
    const publisher = new StatusPublisher({ sources: sources(), publish: () => undefined, notify: () => undefined });
    for (let i = 0; i < RECENT_BLOCKED_MAX + 5; i++) publisher.observe([usbBlocked(`1-${i}`, `stick ${i}`)]);
    const recent = publisher.view().recentBlocked;
    expect(recent).toHaveLength(RECENT_BLOCKED_MAX);
    expect(recent[0]?.name).toBe(`stick ${RECENT_BLOCKED_MAX + 4}`);
    publisher.dispose();
  });

  it('a failing source never escapes: it is reported and nothing is published', async () => {
    vi.useFakeTimers();
    const errors: unknown[] = [];
    const publisher = new StatusPublisher({ sources: sources({ devices: () => { throw new Error('boom'); } }), publish: () => { throw new Error('not reached'); }, notify: () => undefined, onError: (error) => errors.push(error), debounceMs: 1 });
    publisher.nudge();
    await vi.advanceTimersByTimeAsync(5);
    expect(errors).toHaveLength(1);
    publisher.dispose();
  });
});

describe('blockedNotice', () => {
  it('turns journaled blocks into notices and leaves allowed devices and audit mode out', () => {
    expect(blockedNotice(usbBlocked('1-2'))).toMatchObject({ channel: 'usb', key: '1-2', name: 'Cruzer Blade', id: '0781:5567', decision: 'block', requestable: true });
    expect(blockedNotice(usbBlocked('1-2', 'x', { audit: true }))).toBeNull();
    expect(blockedNotice(entry('device.allowed', { key: '1-2', decision: 'allow', device: {} }))).toBeNull();
    // An unreadable device has no identity: listed, but it cannot be requested.
    expect(blockedNotice(entry('device.blocked', { key: '3-1', decision: 'block', rule: { kind: 'unreadable' }, audit: false }))).toMatchObject({ name: '', id: '', requestable: false });
    expect(blockedNotice(entry('export.blocked', { channel: 'optical', device: { name: 'sr0', model: 'DVD-RW DU8A6SH' }, decision: 'block', audit: false }))).toMatchObject({ channel: 'optical', key: null, name: 'DVD-RW DU8A6SH', requestable: false });
    expect(blockedNotice(entry('export.blocked', { channel: 'thunderbolt', device: { name: '0-1', vendor: 'OWC', device: 'Envoy Express' }, decision: 'block', audit: false }))).toMatchObject({ name: 'OWC Envoy Express' });
    expect(blockedNotice(entry('export.blocked', { channel: 'carrier-pigeon', device: {}, decision: 'block', audit: false }))).toBeNull();
    // Hostile data is cut to the contract's bounds (and rendered as text by the app).
    const long = blockedNotice(usbBlocked('1-2', '<script>'.repeat(200)));
    expect(long?.name.length).toBe(512);
  });
});
