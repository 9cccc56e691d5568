import { afterEach, describe, expect, it } from 'vitest';
import { IpcNotificationSchema, type BlockedNotice, type StatusView } from '../../shared/ipc.js';
import { AgentClient } from '../../main/agent-client.js';
import { blockedNotification } from '../../main/notifications.js';
import * as devices from '../fixtures/usb-devices/devices.js';
import { authorizedOf, useFakeKernel } from '../helpers/agent-state.js';
import { ipcClientAs } from '../helpers/lock-agent.js';
import { startManagedTerminal } from '../helpers/managed-terminal.js';
import { killAll, waitFor } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
const fakeKernel = useFakeKernel();
const clients: AgentClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.dispose();
  await killAll();
});

/**
 * The staff-PC app's live status, end to end: a real server, a real agent process enforcing on a
 * kernel-shaped sysfs tree, and main's AgentClient on the agent's socket. The status window's view
 * and the blocked-device notification arrive as pushed events (no polling), only to the console
 * user, and an approved request shows up as an exception in the next view.
 */
describe('live status from a real agent to the app', { timeout: 120_000 }, () => {
  it('pushes the view and one notification per plug-in, and keeps both from other users', async () => {
    const sysfs = await fakeKernel([{ bus: 1 }]);
    const { socketPath, admin } = await startManagedTerminal({ sysfs, dataDir: await tempDir(), base: await tempDir() });

    // main's client, as the app runs it (the test runs as root, which the agent lets act for the console user).
    const client = new AgentClient({ endpoint: socketPath, backoff: { initialMs: 50, maxMs: 200 } });
    clients.push(client);
    const views: StatusView[] = [];
    const notices: BlockedNotice[] = [];
    client.onStatusChanged((view) => views.push(view));
    client.onBlocked((notice) => notices.push(notice));
    client.start();
    await waitFor(() => (client.state === 'connected' ? true : null), 10_000, 'app connected');
    const first = await client.statusView();
    expect(first).toMatchObject({ user: 'tanaka', tier: 'mynumber', enforcement: { state: 'enforced' }, lockState: expect.any(String), devices: [], recentBlocked: [] });
    // The tier policy arrives from the server and is pushed, with when it was received.
    const signed = await waitFor(() => views.find((view) => view.policy.origin === 'signed' && view.server.lastContactAt !== null) ?? null, 20_000, 'signed policy pushed');
    expect(signed.policy.version).toBeGreaterThanOrEqual(2);
    expect(Date.parse(signed.policy.receivedAt ?? '')).toBeGreaterThan(Date.now() - 120_000);
    expect(signed.server).toMatchObject({ configured: true, enrolled: true, reachable: true });

    // Another local user subscribes too (and stays connected), and asks for the view on a second
    // connection (a refusal closes the connection): it gets neither (the agent asks the kernel who it is).
    const outsider = ipcClientAs(65534, socketPath, [JSON.stringify({ id: 1, method: 'events.subscribe' })], 4_000);
    const outsiderAsks = await ipcClientAs(65534, socketPath, [JSON.stringify({ id: 2, method: 'status.view' })]);
    expect(JSON.parse(outsiderAsks[0] ?? '{}')).toMatchObject({ id: 2, ok: false, error: { code: 'forbidden' } });
    await new Promise((resolve) => setTimeout(resolve, 500));

    // A stick whose product string is markup is plugged in: blocked, announced once, listed in the pushed view.
    await sysfs.plug(devices.hostileStrings, '1-2');
    await waitFor(async () => ((await authorizedOf(sysfs, '1-2')) === '0' ? true : null), 20_000, 'stick blocked');
    const notice = await waitFor(() => notices.find((n) => n.key === '1-2') ?? null, 10_000, 'blocked notice');
    expect(notice).toMatchObject({ channel: 'usb', id: '1234:5678', decision: 'block', requestable: true });
    expect(notice.name).toBe(devices.hostileStrings.expected.name);
    const shown = blockedNotification(notice, 'ja');
    for (const unsafe of ['<', '>', '\u0007', '\u001b']) expect(shown.body).not.toContain(unsafe);
    expect(shown.requestDeviceKey).toBe('1-2');
    const listed = await waitFor(() => views.at(-1)?.devices.some((d) => d.key === '1-2') ? views.at(-1)! : null, 10_000, 'device in the pushed view');
    expect(listed.devices.find((d) => d.key === '1-2')).toMatchObject({ decision: 'block', name: devices.hostileStrings.expected.name });
    expect(listed.recentBlocked[0]).toMatchObject({ key: '1-2' });
    // Several reconcile passes later (200 ms each) it has still been announced once.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(notices.filter((n) => n.key === '1-2')).toHaveLength(1);

    const outsiderLines = (await outsider).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(outsiderLines.find((line) => line.id === 1)).toMatchObject({ ok: true });
    const pushedToOutsider = outsiderLines.filter((line) => !('id' in line)).map((line) => IpcNotificationSchema.parse(line).event);
    // It was subscribed all along (its answer is there); the status and the notice never reached it.
    expect(outsiderLines.length).toBeGreaterThan(0);
    expect(pushedToOutsider).not.toContain('status.changed');
    expect(pushedToOutsider).not.toContain('device.blocked');

    // 申請 through the agent as the request form does, approved on the server: the next view shows the exception and the device allowed.
    const answer = await client.requestSubmit({ deviceKey: '1-2', purpose: '窓口で受け取った資料の確認', until: new Date(Date.now() + 3_600_000).toISOString(), access: 'read-only' });
    expect(answer.requests[0]).toMatchObject({ id: answer.id, state: 'unsent' });
    await waitFor(async () => ((await admin('GET', '/api/v1/admin/requests?state=pending')).json.requests as { id: string }[]).some((r) => r.id === answer.id) ? true : null, 20_000, 'request on the server');
    expect((await admin('POST', `/api/v1/admin/requests/${answer.id}/approve`, {})).status).toBe(200);
    const approved = await waitFor(() => views.find((view) => view.exceptions.some((e) => e.id === answer.id) && view.devices.some((d) => d.key === '1-2' && d.decision === 'read-only')) ?? null, 30_000, 'exception pushed');
    expect(approved.exceptions.find((e) => e.id === answer.id)).toMatchObject({ device: devices.hostileStrings.expected.name, access: 'read-only' });
    expect(approved.devices.find((d) => d.key === '1-2')?.rule).toMatchObject({ kind: 'exception', exceptionId: answer.id });
    expect((await client.requestList()).find((r) => r.id === answer.id)?.state).toBe('approved');

    // Unplugged and plugged again: announced again (once per plug-in).
    await sysfs.unplug('1-2');
    await waitFor(() => views.at(-1)?.devices.length === 0 ? true : null, 10_000, 'device gone from the view');
    const blockedBefore = notices.length;
    await sysfs.plug(devices.usbStick, '1-3');
    await waitFor(() => (notices.length > blockedBefore ? true : null), 10_000, 'second notice');
    expect(notices.at(-1)).toMatchObject({ key: '1-3', id: '0781:5567' });
  });
});
