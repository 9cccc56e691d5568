import path from 'node:path';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import { parseNetworkSettings, settingsFromPolicy, type NetworkSettings, type NetworkSettingsInput } from '../../../agent/network/network-settings.js';
import { NetworkWatcher } from '../../../agent/network/network-watcher.js';
import { ProcNetReader } from '../../../agent/network/proc-net.js';
import { FakeCommandRunner } from '../../fakes/fake-command-runner.js';
import { useTempDirs } from '../../helpers/temp-dir.js';
import { FakeProc, ROUTE_HEADER, TCP6_HEADER, TCP_HEADER, UDP_HEADER, port, tcpLine, udpLine, v4hex, v6hex } from './fake-proc.js';
import { useJournals } from '../../helpers/journals.js';

const tempDir = useTempDirs();
const openJournal = useJournals();
const silent = winston.createLogger({ silent: true });

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- journal data is free-form JSON; assertions read into it
type LooseEntry = { seq: number; type: string; data: Record<string, any> };

function settings(input: Partial<NetworkSettingsInput> = {}): NetworkSettings {
  const parsed = parseNetworkSettings({ allowedCidrs: ['10.20.0.0/16'], onViolation: 'alert', ...input });
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.value;
}

const TIER_NIC = `${v4hex('10.20.0.5')}`;
const ep = (hex: string, n: number): string => `${hex}:${port(n)}`;

interface Rig {
  fake: FakeProc;
  watcher: NetworkWatcher;
  commands: FakeCommandRunner;
  locks: string[];
  current: { settings: NetworkSettings };
  entries(): Promise<LooseEntry[]>;
  violations(): Promise<LooseEntry[]>;
}

const watchers: NetworkWatcher[] = [];
afterEach(async () => {
  await Promise.all(watchers.splice(0).map((watcher) => watcher.dispose()));
});

async function makeRig(initial: NetworkSettings = settings(), prepare?: (fake: FakeProc) => Promise<void>): Promise<Rig> {
  const dir = await tempDir();
  const fake = await FakeProc.create(path.join(dir, 'root'));
  await fake.addInterface({ name: 'eth0' });
  await fake.setTable('route', ROUTE_HEADER, ['eth0\t0000140A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0']);
  if (prepare) await prepare(fake);
  const { journal } = await openJournal(path.join(dir, 'journal.jsonl'));
  const commands = new FakeCommandRunner();
  const locks: string[] = [];
  const current = { settings: initial };
  const watcher = new NetworkWatcher({
    reader: new ProcNetReader({ procRoot: fake.procRoot, sysRoot: fake.sysRoot, littleEndian: true }),
    journal,
    logger: silent,
    settings: () => current.settings,
    commands,
    lock: (reason) => {
      locks.push(reason);
    },
    intervalMs: 60_000,
  });
  watchers.push(watcher);
  const entries = async (): Promise<LooseEntry[]> => (await journal.read(1, 10_000));
  return { fake, watcher, commands, locks, current, entries, violations: async () => (await entries()).filter((entry) => entry.type === 'network.violation') };
}

describe('NetworkWatcher (fake /proc)', () => {
  it('records the interfaces present at start once, as the baseline, not as violations', async () => {
    const rig = await makeRig();
    await rig.watcher.start();
    await rig.watcher.check();
    const entries = await rig.entries();
    expect(entries.map((entry) => entry.type)).toEqual(['network.baseline']);
    expect(entries[0]?.data.interfaces.map((entry: { name: string }) => entry.name)).toEqual(['eth0', 'lo']);
  });

  it('journals an established connection outside the tier once, with addresses, ports, interface, process and action', async () => {
    const rig = await makeRig();
    await rig.watcher.start();
    await rig.fake.addProcess(4242, 'curl', [9001]);
    await rig.fake.setTable('tcp', TCP_HEADER, [
      tcpLine(0, ep(TIER_NIC, 50000), ep(v4hex('10.20.3.4'), 443), '01', 9000),
      tcpLine(1, ep(TIER_NIC, 50001), ep(v4hex('203.0.113.9'), 443), '01', 9001),
      tcpLine(2, ep(v4hex('127.0.0.1'), 50002), ep(v4hex('127.0.0.1'), 8080), '01', 9002),
    ]);
    const report = await rig.watcher.check();
    expect(report.violations).toBe(1);
    await rig.watcher.check();
    await rig.watcher.check();
    const violations = await rig.violations();
    expect(violations).toHaveLength(1);
    expect(violations[0]?.data).toEqual({
      kind: 'connection-outside-tier',
      protocol: 'tcp',
      state: 'ESTABLISHED',
      direction: 'outbound',
      remote: { address: '203.0.113.9', port: 443 },
      local: { address: '10.20.0.5', port: 50001 },
      uid: 1000,
      process: { pid: 4242, command: 'curl' },
      interface: null,
      policy: { onViolation: 'alert', audit: false },
      action: { type: 'alert', ok: true },
    });
  });

  it('journals an attempt (SYN_SENT), and again once when it becomes established', async () => {
    const rig = await makeRig();
    await rig.watcher.start();
    const line = (state: string): string => tcpLine(0, ep(TIER_NIC, 50000), ep(v4hex('198.51.100.7'), 22), state, 7);
    await rig.fake.setTable('tcp', TCP_HEADER, [line('02')]);
    await rig.watcher.check();
    await rig.watcher.check();
    await rig.fake.setTable('tcp', TCP_HEADER, [line('01')]);
    await rig.watcher.check();
    await rig.fake.setTable('tcp', TCP_HEADER, [line('06')]);
    await rig.watcher.check();
    expect((await rig.violations()).map((entry) => entry.data.kind)).toEqual(['connection-attempt-outside-tier', 'connection-outside-tier']);
  });

  it('journals a connection again when it reappears after it left the table', async () => {
    const rig = await makeRig();
    await rig.watcher.start();
    const outside = tcpLine(0, ep(TIER_NIC, 50000), ep(v4hex('198.51.100.7'), 22), '01', 7);
    await rig.fake.setTable('tcp', TCP_HEADER, [outside]);
    await rig.watcher.check();
    await rig.fake.setTable('tcp', TCP_HEADER, []);
    await rig.watcher.check();
    await rig.fake.setTable('tcp', TCP_HEADER, [outside]);
    await rig.watcher.check();
    expect(await rig.violations()).toHaveLength(2);
  });

  it('checks IPv6, IPv4-mapped peers and connected UDP; ignores listeners, unconnected UDP and allowed endpoints', async () => {
    const rig = await makeRig(settings({ allowedCidrs: ['10.20.0.0/16', '2001:db8:20::/48'], allowedEndpoints: ['192.0.2.53:53', '[2001:db8::53]:53'] }));
    await rig.watcher.start();
    const mapped = (a: number, b: number): string => v6hex([0, 0, 0, 0, 0, 0xffff, a, b]);
    await rig.fake.setTable('tcp6', TCP6_HEADER, [
      tcpLine(0, ep(v6hex([0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 5]), 40000), ep(v6hex([0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 9]), 443), '01', 1),
      tcpLine(1, ep(v6hex([0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 5]), 40001), ep(v6hex([0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 9]), 443), '01', 2),
      tcpLine(2, ep(mapped(0x0a14, 5), 40002), ep(mapped(0x0a14, 9), 443), '01', 3),
      tcpLine(3, ep(mapped(0x0a14, 5), 40003), ep(mapped(0xcb00, 0x7101), 443), '01', 4),
      tcpLine(4, ep(v6hex([0, 0, 0, 0, 0, 0, 0, 0]), 22), ep(v6hex([0, 0, 0, 0, 0, 0, 0, 0]), 0), '0A', 5),
    ]);
    await rig.fake.setTable('udp', UDP_HEADER, [
      udpLine(0, ep(TIER_NIC, 5353), ep('00000000', 0), '07', 10),
      udpLine(1, ep(TIER_NIC, 40000), ep(v4hex('192.0.2.53'), 53), '01', 11),
      udpLine(2, ep(TIER_NIC, 40001), ep(v4hex('192.0.2.54'), 53), '01', 12),
    ]);
    await rig.watcher.check();
    const remotes = (await rig.violations()).map((entry) => `${entry.data.protocol} ${entry.data.remote.address}:${entry.data.remote.port}`).sort();
    expect(remotes).toEqual(['tcp6 2001:db8:99::9:443', 'tcp6 ::ffff:203.0.113.1:443', 'udp 192.0.2.54:53']);
  });

  it('marks a connection to a listening port as inbound', async () => {
    const rig = await makeRig();
    await rig.watcher.start();
    await rig.fake.setTable('tcp', TCP_HEADER, [
      tcpLine(0, ep('00000000', 22), ep('00000000', 0), '0A', 1),
      tcpLine(1, ep(TIER_NIC, 22), ep(v4hex('198.51.100.7'), 51000), '01', 2),
    ]);
    await rig.watcher.check();
    expect((await rig.violations())[0]?.data.direction).toBe('inbound');
  });

  it('treats loopback as allowed unless the settings say otherwise', async () => {
    const rig = await makeRig(settings({ allowedCidrs: ['127.0.0.1/32'], allowLoopback: false }));
    await rig.watcher.start();
    await rig.fake.setTable('tcp', TCP_HEADER, [
      tcpLine(0, ep(v4hex('127.0.0.1'), 50000), ep(v4hex('127.0.0.1'), 8080), '01', 1),
      tcpLine(1, ep(v4hex('127.0.0.1'), 50001), ep(v4hex('127.0.0.2'), 8080), '01', 2),
    ]);
    await rig.watcher.check();
    expect((await rig.violations()).map((entry) => entry.data.remote.address)).toEqual(['127.0.0.2']);
  });

  it('does no range check when allowedCidrs is empty (as the policy schema documents)', async () => {
    const rig = await makeRig(settings({ allowedCidrs: [] }));
    await rig.watcher.start();
    await rig.fake.setTable('tcp', TCP_HEADER, [tcpLine(0, ep(TIER_NIC, 50000), ep(v4hex('198.51.100.7'), 22), '01', 7)]);
    await rig.watcher.check();
    expect(await rig.violations()).toEqual([]);
  });

  it('journals an interface that appears after start once per appearance, and allows names the settings allow', async () => {
    const rig = await makeRig(settings({ allowedInterfaces: ['docker*'] }));
    await rig.watcher.start();
    await rig.fake.addInterface({ name: 'usb0', mac: '02:00:00:00:00:01', operstate: 'unknown' });
    await rig.fake.addInterface({ name: 'docker0' });
    await rig.watcher.check();
    await rig.watcher.check();
    await rig.fake.removeInterface('usb0');
    await rig.watcher.check();
    await rig.fake.addInterface({ name: 'usb0' });
    await rig.watcher.check();
    const violations = await rig.violations();
    expect(violations.map((entry) => [entry.data.kind, entry.data.interface])).toEqual([
      ['new-interface', 'usb0'],
      ['new-interface', 'usb0'],
    ]);
    expect(violations[0]?.data.mac).toBe('02:00:00:00:00:01');
  });

  it('counts a baseline interface that vanished and came back as a new appearance', async () => {
    const rig = await makeRig(settings(), (fake) => fake.addInterface({ name: 'wlan0' }));
    await rig.watcher.start();
    await rig.fake.removeInterface('wlan0');
    await rig.watcher.check();
    await rig.fake.addInterface({ name: 'wlan0' });
    await rig.watcher.check();
    expect((await rig.violations()).map((entry) => entry.data.interface)).toEqual(['wlan0']);
  });

  it('journals a default route where the tier must not have one, once, from the first check', async () => {
    const rig = await makeRig(settings({ defaultRouteAllowed: false }), (fake) =>
      fake.setTable('route', ROUTE_HEADER, ['eth0\t00000000\t0100140A\t0003\t0\t0\t100\t00000000\t0\t0\t0', 'eth0\t0000140A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0']),
    );
    await rig.watcher.start();
    await rig.watcher.check();
    const violations = await rig.violations();
    expect(violations.map((entry) => entry.data)).toEqual([
      {
        kind: 'default-route',
        route: { family: 4, destination: '0.0.0.0/0', gateway: '10.20.0.1', interface: 'eth0', metric: 100 },
        interface: 'eth0',
        policy: { onViolation: 'alert', audit: false },
        action: { type: 'alert', ok: true },
      },
    ]);
    expect((await rig.entries())[0]?.data.defaultRoutes).toHaveLength(1);
  });

  it('alert-disable takes the new interface down with `ip link set dev IFACE down` and journals the outcome', async () => {
    const rig = await makeRig(settings({ onViolation: 'alert-disable' }));
    await rig.watcher.start();
    rig.commands.on(['link', 'set', 'dev', 'wwan0'], { code: 2, stdout: '', stderr: 'RTNETLINK answers: Operation not permitted\n' });
    await rig.fake.addInterface({ name: 'usb0' });
    await rig.fake.addInterface({ name: 'wwan0' });
    await rig.watcher.check();
    expect(rig.commands.calls.map((call) => [call.file, ...call.args])).toEqual([
      ['ip', 'link', 'set', 'dev', 'usb0', 'down'],
      ['ip', 'link', 'set', 'dev', 'wwan0', 'down'],
    ]);
    const actions = Object.fromEntries((await rig.violations()).map((entry) => [entry.data.interface, entry.data.action]));
    expect(actions).toEqual({
      usb0: { type: 'disable', ok: true },
      wwan0: { type: 'disable', ok: false, detail: 'ip exited 2: RTNETLINK answers: Operation not permitted' },
    });
  });

  it('alert-disable disables the interface a violating connection leaves by, but never lo or a protected interface', async () => {
    const rig = await makeRig(settings({ onViolation: 'alert-disable', protectedInterfaces: ['eth0'] }), (fake) =>
      fake.setTable('route', ROUTE_HEADER, ['wlan0\t00000000\t0100A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0', 'eth0\t0000140A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0', 'eth0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0']),
    );
    await rig.watcher.start();
    await rig.fake.setTable('tcp', TCP_HEADER, [
      tcpLine(0, ep(v4hex('192.168.0.5'), 50000), ep(v4hex('198.51.100.7'), 443), '01', 1),
      tcpLine(1, ep(TIER_NIC, 50001), ep(v4hex('10.99.0.1'), 443), '01', 2),
    ]);
    await rig.watcher.check();
    expect(rig.commands.argvs()).toEqual([['link', 'set', 'dev', 'wlan0', 'down']]);
    const byRemote = Object.fromEntries((await rig.violations()).map((entry) => [entry.data.remote.address, [entry.data.interface, entry.data.action]]));
    expect(byRemote).toEqual({
      '198.51.100.7': ['wlan0', { type: 'disable', ok: true }],
      '10.99.0.1': ['eth0', { type: 'disable', ok: false, detail: 'protected interface: not disabled' }],
    });
  });

  it('alert-lock calls lock once per check with a reason, and journals whether it worked', async () => {
    const rig = await makeRig(settings({ onViolation: 'alert-lock' }));
    await rig.watcher.start();
    await rig.fake.addInterface({ name: 'usb0' });
    await rig.fake.addInterface({ name: 'usb1' });
    await rig.watcher.check();
    expect(rig.locks).toEqual(['network.violation: new-interface (+1)']);
    expect((await rig.violations()).map((entry) => entry.data.action)).toEqual([
      { type: 'lock', ok: true },
      { type: 'lock', ok: true },
    ]);
  });

  it('in audit mode journals what it would do and does nothing', async () => {
    const rig = await makeRig(settings({ onViolation: 'alert-disable', audit: true }));
    await rig.watcher.start();
    await rig.fake.addInterface({ name: 'usb0' });
    await rig.watcher.check();
    expect(rig.commands.calls).toEqual([]);
    expect((await rig.violations())[0]?.data.action).toEqual({ type: 'disable', ok: false, detail: 'audit mode: not disabled' });
    expect((await rig.violations())[0]?.data.policy).toEqual({ onViolation: 'alert-disable', audit: true });
  });

  it('applies changed settings at the next check', async () => {
    const rig = await makeRig(settings({ allowedCidrs: ['0.0.0.0/0'] }));
    await rig.watcher.start();
    await rig.fake.setTable('tcp', TCP_HEADER, [tcpLine(0, ep(TIER_NIC, 50000), ep(v4hex('198.51.100.7'), 22), '01', 7)]);
    await rig.watcher.check();
    expect(await rig.violations()).toEqual([]);
    rig.current.settings = settings();
    await rig.watcher.check();
    expect(await rig.violations()).toHaveLength(1);
  });

  it('journals at most maxEventsPerCheck violations per check and the rest at the next checks, none lost', async () => {
    const dir = await tempDir();
    const fake = await FakeProc.create(dir);
    const { journal } = await openJournal(path.join(dir, 'journal.jsonl'));
    const watcher = new NetworkWatcher({
      reader: new ProcNetReader({ procRoot: fake.procRoot, sysRoot: fake.sysRoot }),
      journal,
      logger: silent,
      settings: () => settings(),
      commands: new FakeCommandRunner(),
      lock: () => undefined,
      maxEventsPerCheck: 10,
    });
    watchers.push(watcher);
    await watcher.start();
    await fake.setTable('tcp', TCP_HEADER, Array.from({ length: 25 }, (_, i) => tcpLine(i, ep(TIER_NIC, 40000 + i), ep(v4hex('198.51.100.7'), 443), '01', 100 + i)));
    expect((await watcher.check()).deferred).toBe(15);
    expect((await watcher.check()).deferred).toBe(5);
    expect((await watcher.check()).violations).toBe(5);
    expect((await watcher.check()).violations).toBe(0);
    const entries = (await journal.read(1, 100)) as LooseEntry[];
    expect(new Set(entries.filter((entry) => entry.type === 'network.violation').map((entry) => entry.data.local.port)).size).toBe(25);
  });

  it('keeps checking on its interval after start, and stops on dispose', async () => {
    const dir = await tempDir();
    const fake = await FakeProc.create(dir);
    const { journal } = await openJournal(path.join(dir, 'journal.jsonl'));
    const watcher = new NetworkWatcher({
      reader: new ProcNetReader({ procRoot: fake.procRoot, sysRoot: fake.sysRoot }),
      journal,
      logger: silent,
      settings: () => settings(),
      commands: new FakeCommandRunner(),
      lock: () => undefined,
      intervalMs: 20,
    });
    await watcher.start();
    const next = watcher.nextCheck();
    await fake.addInterface({ name: 'usb0' });
    await next;
    await watcher.nextCheck();
    await watcher.dispose();
    const entries = (await journal.read(1, 100)) as LooseEntry[];
    expect(entries.map((entry) => entry.type)).toEqual(['network.baseline', 'network.violation']);
  });
});

describe('network settings', () => {
  it('refuses bad ranges, endpoints and interface names, naming each', () => {
    const parsed = parseNetworkSettings({
      allowedCidrs: ['10.0.0.1/8', '10.0.0.0/8'],
      allowedEndpoints: ['example.org:443', '10.0.0.5:0', '[2001:db8::1]:443'],
      onViolation: 'alert',
      protectedInterfaces: ['eth0', 'a/b'],
    });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error.message).toContain('allowedCidrs[0]: "10.0.0.1/8" has host bits set');
      expect(parsed.error.message).toContain('allowedEndpoints[0]');
      expect(parsed.error.message).toContain('host names are not resolved');
      expect(parsed.error.message).toContain('allowedEndpoints[1]');
      expect(parsed.error.message).not.toContain('allowedEndpoints[2]');
      expect(parsed.error.message).toContain('protectedInterfaces[1]');
    }
  });

  it('reads today\'s policy section: block is alert-disable, audit mode follows the policy mode', () => {
    const parsed = settingsFromPolicy({ allowedCidrs: ['10.20.0.0/16'], onViolation: 'block' }, 'audit');
    expect(parsed.ok && parsed.value.onViolation).toBe('alert-disable');
    expect(parsed.ok && parsed.value.audit).toBe(true);
  });
});
