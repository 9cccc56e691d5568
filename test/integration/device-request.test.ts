import { afterEach, describe, expect, it } from 'vitest';
import { PresentDeviceSchema } from '../../shared/ipc.js';
import { DeviceRequestSchema } from '../../shared/requests.js';
import { callAgent } from '../../agent/ipc/ipc-client.js';
import * as devices from '../fixtures/usb-devices/devices.js';
import { authorizedOf, readJournal, useFakeKernel } from '../helpers/agent-state.js';
import { startManagedTerminal } from '../helpers/managed-terminal.js';
import { killAll, waitFor } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
const fakeKernel = useFakeKernel();
afterEach(killAll);

/**
 * 申請 → 承認 → use → expiry, end to end: a real server, a real agent process enforcing on a
 * kernel-shaped sysfs tree, the request made over the agent's IPC as the lock screen's app would,
 * the approval through the admin API.
 */
describe('device request → approval → device authorised → expiry → blocked again', { timeout: 120_000 }, () => {
  it('walks the whole workflow and journals every step', async () => {
    const sysfs = await fakeKernel([{ bus: 1 }]);
    const { stateDir, socketPath, deviceId, admin } = await startManagedTerminal({ sysfs, dataDir: await tempDir(), base: await tempDir() });
    // The published lgwan policy has arrived (version ≥ 2).
    await waitFor(async () => ((await readJournal(stateDir)).some((e) => e.type === 'policy.applied' && Number(e.data.version) >= 2) ? true : null), 20_000, 'tier policy applied');

    await sysfs.plug(devices.usbStick, '1-2');
    await waitFor(async () => ((await authorizedOf(sysfs, '1-2')) === '0' ? true : null), 20_000, 'stick blocked');
    const call = async (request: Record<string, unknown>) => {
      const answer = await callAgent(socketPath, { id: 1, ...request } as Parameters<typeof callAgent>[1]);
      if (!answer.ok) throw new Error(`${String(request.method)}: ${answer.error.code} ${answer.error.message}`);
      return answer.result;
    };
    const present = (await waitFor(async () => {
      const listed = (await call({ method: 'devices.list' })) as unknown[];
      return listed.length > 0 ? listed.map((d) => PresentDeviceSchema.parse(d)) : null;
    }, 10_000, 'devices.list')).find((d) => d.key === '1-2')!;
    expect(present).toMatchObject({ decision: 'block', rule: { kind: 'rule', label: 'removable storage' } });

    // 申請: the staff member asks for the stick, read-write, until the end of the day.
    const submitted = (await call({ method: 'request.submit', params: { deviceKey: '1-2', purpose: '会議資料の受け取り', until: new Date(Date.now() + 8 * 3_600_000).toISOString(), access: 'read-write' } })) as { id: string };
    const pending = await waitFor(async () => {
      const listed = await admin('GET', '/api/v1/admin/requests?state=pending');
      const found = (listed.json.requests as unknown[]).map((r) => DeviceRequestSchema.parse(r)).find((r) => r.id === submitted.id);
      return found ?? null;
    }, 20_000, 'request on the server');
    expect(pending).toMatchObject({ deviceId, user: 'tanaka', purpose: '会議資料の受け取り', device: { vendorId: '0781', productId: '5567' } });

    // 承認, narrowed to a short window so the test sees it end.
    const until = new Date(Date.now() + 12_000).toISOString();
    const approved = await admin('POST', `/api/v1/admin/requests/${submitted.id}/approve`, { until });
    expect(approved.status).toBe(200);
    await waitFor(async () => ((await authorizedOf(sysfs, '1-2')) === '1' ? true : null), 20_000, 'stick authorised by the exception');
    const allowed = (await readJournal(stateDir)).filter((e) => e.type === 'device.allowed' && e.data.key === '1-2').at(-1);
    expect(allowed?.data).toMatchObject({ rule: { kind: 'exception', exceptionId: submitted.id } });
    // The app sees the decision on its request.
    await waitFor(async () => (((await call({ method: 'request.list' })) as { id: string; state: string }[]).some((r) => r.id === submitted.id && r.state === 'approved') ? true : null), 20_000, 'approval seen by the terminal');

    // Expiry: blocked again by the agent's own clock, no new policy needed.
    await waitFor(async () => ((await authorizedOf(sysfs, '1-2')) === '0' ? true : null), 30_000, 'stick blocked again after expiry');
    const journal = await readJournal(stateDir);
    const types = journal.map((e) => e.type);
    for (const type of ['request.submitted', 'request.decided', 'exception.used', 'exception.expired']) expect(types, type).toContain(type);
    expect(journal.find((e) => e.type === 'exception.expired')?.data).toMatchObject({ exceptionId: submitted.id });
    expect(journal.filter((e) => e.type === 'device.blocked' && e.data.key === '1-2').at(-1)?.data.flags).toContain('exception-expired');
    // The auditor's view on the server: who asked, who approved, and the use.
    const trail = await admin('GET', '/api/v1/admin/actions?limit=20');
    expect(JSON.stringify(trail.json)).toContain('request.approved');
  });
});
