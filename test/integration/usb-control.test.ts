import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JournalEntry } from '../../shared/journal.js';
import { builtInPolicyDocument } from '../../agent/policy/profiles.js';
import * as devices from '../fixtures/usb-devices/devices.js';
import { AGENT_CLI, agentStatus, cli, enrollmentToken, killAll, startProcess, startServer, waitFor } from '../helpers/processes.js';
import { policySigningKey } from '../helpers/policy-signing.js';
import { authorizedOf, readJournal, useFakeKernel } from '../helpers/agent-state.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
const fakeKernel = useFakeKernel();
afterEach(killAll);

async function adminEvents(dataDir: string, url: string, deviceId: string): Promise<JournalEntry[]> {
  const token = (await fs.readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
  const response = await fetch(`${url}/api/v1/admin/devices/${deviceId}/events?after=0&limit=1000`, { headers: { authorization: `Bearer ${token}` } });
  return ((await response.json()) as { events: JournalEntry[] }).events;
}

describe('USB device control in the running agent (real agent + server processes, kernel-shaped sysfs)', { timeout: 180_000 }, () => {
  it('decides, enforces and reports every device; a new policy file re-decides present devices; a bad one is refused', async () => {
    const sysfs = await fakeKernel([{ bus: 1 }, { bus: 2, superSpeed: true }]);
    const dataDir = await tempDir();
    const stateDir = await tempDir();
    const server = await startServer(dataDir);
    await fs.mkdir(stateDir, { recursive: true });
    // The installer carries the policy key (it wins over the server's at enrolment).
    const signer = policySigningKey();
    await fs.writeFile(
      path.join(stateDir, 'config.json'),
      JSON.stringify({
        serverUrl: server.url,
        enrollToken: await enrollmentToken(dataDir),
        tier: 'mynumber',
        policyPublicKey: signer.publicKey,
        usb: { reconcileMs: 200 },
        reporter: { heartbeatSeconds: 1, retryBaseMs: 50, retryMaxMs: 400, uploadDelayMs: 20 },
      }),
    );
    // A keyboard is present before the agent starts: it must stay usable.
    await sysfs.plug(devices.keyboard, '1-1');
    const agent = startProcess(AGENT_CLI, ['run', '--state', stateDir, '--sysfs-root', sysfs.root]);
    await agent.waitForOutput(/device control: enforced/);
    await waitFor(async () => ((await sysfs.attribute('usb2', 'authorized_default')).trim() === '0' ? true : null), 20_000, 'default-deny');

    await sysfs.plug(devices.usbStick, '1-2');
    await sysfs.plug(devices.badUsb, '2-1');
    await sysfs.plug(devices.ethernetAdapter, '1-3');
    await waitFor(async () => (!sysfs.has('2-1') && (await authorizedOf(sysfs, '1-2')) === '0' ? true : null), 20_000, 'the stick blocked and the BadUSB rejected');
    expect((await authorizedOf(sysfs, '1-1'))).toBe('1');
    expect((await authorizedOf(sysfs, '1-3'))).toBe('0');
    expect(sysfs.blockDevicesOf('1-2')).toEqual([]);

    const status = await waitFor(async () => {
      const current = await agentStatus(stateDir);
      return current.enrolled && current.ackSeq === current.journalLength ? current : null;
    }, 30_000, 'delivery to the server');
    const local = JSON.parse((await cli(AGENT_CLI, ['status', '--state', stateDir, '--json'])).stdout);
    expect(local.status.enforcement).toEqual({ state: 'enforced', verifiedOnRealOs: true });
    const held = await adminEvents(dataDir, server.url, status.deviceId!);
    const decision = (key: string) => held.filter((entry) => entry.data.key === key && 'decision' in entry.data).at(-1);
    expect(decision('1-1')).toMatchObject({ type: 'device.allowed', data: { rule: { label: 'keyboard / mouse' } } });
    expect(decision('1-2')).toMatchObject({ type: 'device.blocked', data: { decision: 'block', rule: { kind: 'rule', label: 'removable storage' }, enforced: { ok: true } } });
    expect(decision('2-1')).toMatchObject({ type: 'device.blocked', data: { decision: 'reject', rule: { label: 'BadUSB: storage + keyboard' } } });
    expect(decision('1-3')).toMatchObject({ type: 'device.blocked', data: { rule: { label: 'USB network adapter' } } });

    const writePolicy = async (envelope: unknown): Promise<void> => {
      await fs.writeFile(path.join(stateDir, 'policy.json.tmp'), JSON.stringify(envelope));
      await fs.rename(path.join(stateDir, 'policy.json.tmp'), path.join(stateDir, 'policy.json'));
    };
    const rejections = async (count: number): Promise<JournalEntry[]> =>
      waitFor(async () => {
        const lines = await readJournal(stateDir);
        const found = lines.filter((entry) => entry.type === 'policy.rejected');
        return found.length >= count ? found : null;
      }, 20_000, `${count} policy.rejected`);

    // The administrator registers the stick: a new signed policy (version 2) arrives.
    const policy = builtInPolicyDocument('mynumber');
    policy.version = 2;
    policy.usb.rules.unshift(`allow id 0781:5567 serial "${devices.usbStick.expected.serial}" label "総務課 USB #7"`);
    // Unsigned, or signed by any other key: refused, the stick stays blocked.
    await writePolicy(policy);
    expect((await rejections(1))[0]!.data.reason).toMatch(/unsigned/);
    await writePolicy(policySigningKey().sign(policy));
    expect((await rejections(2))[1]!.data.reason).toMatch(/not the pinned key/);
    expect((await authorizedOf(sysfs, '1-2'))).toBe('0');

    await writePolicy(signer.sign(policy));
    await waitFor(async () => ((await authorizedOf(sysfs, '1-2')) === '1' ? true : null), 20_000, 'the registered stick to be authorised');

    // A broken policy (version 3, one bad rule) is refused whole; the stick stays allowed.
    policy.version = 3;
    policy.usb.rules.push('allow with-interface equals { 08:*:* ');
    await writePolicy(signer.sign(policy));
    expect((await rejections(3))[2]!.data.reason).toMatch(/usb\.rules\[\d+\]: line \d+, column \d+/);
    // An older version, properly signed, is a rollback: refused.
    policy.version = 1;
    policy.usb.rules.pop();
    await writePolicy(signer.sign(policy));
    expect((await rejections(4))[3]!.data.reason).toMatch(/no rollback/);
    expect((await authorizedOf(sysfs, '1-2'))).toBe('1');

    await waitFor(async () => {
      const current = await agentStatus(stateDir);
      return current.ackSeq === current.journalLength ? true : null;
    }, 30_000, 'delivery of the policy events');
    const after = await adminEvents(dataDir, server.url, status.deviceId!);
    expect(after.filter((entry) => entry.data.key === '1-2' && entry.type === 'device.allowed').at(-1)).toMatchObject({
      data: { rule: { kind: 'rule', line: 1, label: '総務課 USB #7' } },
    });
    expect(after.some((entry) => entry.type === 'policy.applied' && entry.data.version === 2)).toBe(true);

    await agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
  });

  it('adopts the keyboard present at first run under a policy that forgets HID, and blocks an unreadable device', async () => {
    const sysfs = await fakeKernel([{ bus: 1 }]);
    const stateDir = await tempDir();
    // An administrator's policy that allows nothing but one stick: HID is not allowed.
    const signer = policySigningKey();
    await fs.writeFile(path.join(stateDir, 'config.json'), JSON.stringify({ tier: 'mynumber', policyPublicKey: signer.publicKey, usb: { reconcileMs: 200 } }));
    const policy = builtInPolicyDocument('mynumber');
    policy.version = 5;
    policy.usb.rules = ['allow id 0951:1727 label "registered"'];
    await fs.writeFile(path.join(stateDir, 'policy.json'), JSON.stringify(signer.sign(policy)));
    await sysfs.plug(devices.keyboard, '1-1');
    // A device already authorised (kernel default) whose descriptors do not parse.
    await sysfs.plug(devices.mouse, '1-2');
    await fs.writeFile(path.join(sysfs.deviceDir('1-2'), 'descriptors'), Buffer.from([0x12, 0x01, 0x00]));

    const agent = startProcess(AGENT_CLI, ['run', '--state', stateDir, '--sysfs-root', sysfs.root]);
    await agent.waitForOutput(/device control: enforced/);
    await waitFor(async () => ((await authorizedOf(sysfs, '1-2')) === '0' ? true : null), 20_000, 'the unreadable device to be blocked');
    expect((await authorizedOf(sysfs, '1-1'))).toBe('1');

    // An input device plugged in later is not adopted: the policy decides, and it blocks. (The same
    // keyboard model with the same serial would have the same USBGuard hash, and count as adopted.)
    await sysfs.plug(devices.mouse, '1-3');
    await waitFor(async () => {
      const lines = await readJournal(stateDir);
      return lines.some((entry) => entry.data.key === '1-3' && entry.type === 'device.blocked') ? true : null;
    }, 20_000, 'the later mouse decided');
    expect((await authorizedOf(sysfs, '1-3'))).toBe('0');

    const journal = await readJournal(stateDir);
    expect(journal.find((entry) => entry.type === 'exception.granted')).toMatchObject({ data: { kind: 'adopted-input-devices', devices: [{ key: '1-1' }] } });
    expect(journal.filter((entry) => entry.data.key === '1-1' && entry.type === 'device.allowed').at(-1)).toMatchObject({ data: { rule: { kind: 'adopted-input-device' } } });
    expect(journal.find((entry) => entry.data.key === '1-2' && entry.type === 'device.blocked')).toMatchObject({ data: { rule: { kind: 'unreadable' }, enforced: { ok: true } } });
    await agent.kill('SIGTERM');
  });
});
