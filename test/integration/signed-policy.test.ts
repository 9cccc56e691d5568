import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { builtInPolicyDocument } from '../../agent/policy/profiles.js';
import * as devices from '../fixtures/usb-devices/devices.js';
import { AGENT_CLI, SERVER_CLI, cli, enrollmentToken, killAll, startProcess, startServer, waitFor } from '../helpers/processes.js';
import { policySigningKey } from '../helpers/policy-signing.js';
import { authorizedOf, readJournal, useFakeKernel } from '../helpers/agent-state.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
const fakeKernel = useFakeKernel();
afterEach(killAll);

describe('signed policy from the server to the agent (real processes)', { timeout: 180_000 }, () => {
  it('applies a policy the administrator publishes, pinned to the key named at enrolment, and refuses a forged one', async () => {
    const sysfs = await fakeKernel([{ bus: 1 }]);
    const dataDir = await tempDir();
    const stateDir = await tempDir();
    const server = await startServer(dataDir);
    await fs.writeFile(
      path.join(stateDir, 'config.json'),
      JSON.stringify({
        serverUrl: server.url,
        enrollToken: await enrollmentToken(dataDir),
        tier: 'mynumber',
        usb: { reconcileMs: 200 },
        reporter: { heartbeatSeconds: 1, retryBaseMs: 50, retryMaxMs: 400, uploadDelayMs: 20 },
      }),
    );
    await sysfs.plug(devices.usbStick, '1-1');
    const agent = startProcess(AGENT_CLI, ['run', '--state', stateDir, '--sysfs-root', sysfs.root]);
    await agent.waitForOutput(/device control: enforced/);
    await waitFor(async () => ((await readJournal(stateDir)).some((entry) => entry.type === 'agent.enrolled') ? true : null), 20_000, 'enrolment');
    expect((await authorizedOf(sysfs, '1-1'))).toBe('0');

    // The administrator registers the stick for the mynumber tier.
    const document = builtInPolicyDocument('mynumber');
    document.usb.rules.unshift(`allow id 0781:5567 serial "${devices.usbStick.expected.serial}" label "会計課 USB #3"`);
    const file = path.join(dataDir, 'policy-draft.json');
    await fs.writeFile(file, JSON.stringify(document));
    const published = await cli(SERVER_CLI, ['policy', 'set', '--data', dataDir, '--tier', 'mynumber', file]);
    expect(published.code).toBe(0);
    expect(published.stdout).toMatch(/tier mynumber version 2/);

    await waitFor(async () => ((await authorizedOf(sysfs, '1-1')) === '1' ? true : null), 30_000, 'the published policy to allow the stick');
    const applied = (await readJournal(stateDir)).filter((entry) => entry.type === 'policy.applied').at(-1);
    expect(applied?.data).toMatchObject({ origin: 'signed', version: 2, tier: 'mynumber' });
    const allowed = (await readJournal(stateDir)).filter((entry) => entry.type === 'device.allowed' && entry.data.key === '1-1').at(-1);
    expect(allowed?.data.rule).toMatchObject({ kind: 'rule', line: 1, label: '会計課 USB #3' });

    // Someone with write access to the state directory drops in a policy signed by another key.
    const forged = builtInPolicyDocument('mynumber');
    forged.version = 99;
    forged.usb.rules = ['allow'];
    await fs.writeFile(path.join(stateDir, 'policy.json'), JSON.stringify(policySigningKey().sign(forged)));
    await waitFor(async () => ((await readJournal(stateDir)).some((entry) => entry.type === 'policy.rejected') ? true : null), 20_000, 'the forged policy refused');
    expect((await readJournal(stateDir)).find((entry) => entry.type === 'policy.rejected')?.data.reason).toMatch(/not the pinned key/);

    await agent.kill('SIGTERM');
  });
});
