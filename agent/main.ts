import fs from 'node:fs/promises';
import os from 'node:os';
import type { Logger } from 'winston';
import { KnownCommandSchema, type AgentStatus, type Command, type CommandAck, type Enforcement } from '../shared/api.js';
import { isKnownEventType, type JournalEntry } from '../shared/journal.js';
import type { IpcPrivilege, IpcRequest } from '../shared/ipc.js';
import { assertNever } from '../shared/result.js';
import { IpcRefusal, IpcServer, type IpcConnectionContext, type IpcRefusedInfo, type IpcResult } from './ipc/ipc-server.js';
import { linuxPeerLookup, type PeerIdentity } from './ipc/peer-credentials.js';
import { LockService } from './lock/lock-service.js';
import { LinuxSession, UnknownSession, type SessionPlatform } from './platform/session.js';
import { Journal, type JournalOpenReport } from './journal/journal.js';
import { describeEnforcement, probeEnforcement } from './platform/enforcement.js';
import { readHostFacts } from './platform/host-facts.js';
import { Reporter } from './reporter/reporter.js';
import { AgentConfigSchema, CredentialsSchema, StatePaths, ipcEndpoint, readJsonFile, writeJsonFileAtomic, type AgentConfig } from './state.js';
import { serverUrlProblem } from './reporter/transport.js';
import { PolicySource } from './policy-source.js';
import { FAIL_CLOSED_TIER } from './policy/profiles.js';
import { TrustedClock, TrustedClockStateSchema, systemClockSources } from './policy/trusted-clock.js';
import { DeviceControl } from './usb/device-control.js';
import { NetworkWatcher } from './network/network-watcher.js';
import { settingsFromPolicy, type NetworkSettings } from './network/network-settings.js';
import { ProcNetReader } from './network/proc-net.js';
import { NodeCommandRunner } from './platform/command-runner.js';
import type { Policy } from '../shared/policy.js';
import { InputAdoption } from './usb/input-adoption.js';
import { RequestOutbox } from './requests/request-outbox.js';
import { countSerials, decideUsb } from './usb/policy-engine.js';
import { usbAdapters } from './usb/usb-platform.js';
import { StateLock } from './state-lock.js';
import { AGENT_VERSION } from './version.js';
import { MediaControl, type ExportDevice } from './export/media-control.linux.js';
import { decideAsStorage } from './export/storage-decision.js';
import { applyOpticalPolicy } from './export/optical.win32.js';
import { CupsPrintSource, WindowsPrintSource, type PrintSource } from './export/print-sources.js';
import { PrintWatcher, loadPrintCursor } from './export/print-watcher.js';
import { RegExeRegistry } from './platform/registry.win32.js';
import { createSelfChecks } from './selfcheck/checks.js';
import { SelfInspection } from './selfcheck/self-inspection.js';
import { StatusPublisher } from './status-view.js';
import { DEVICE_RULE_KINDS, type PresentDevice } from '../shared/ipc.js';

export interface AgentRunOptions {
  readonly stateDir: string;
  readonly serverUrl: string | null;
  readonly enrollToken: string | null;
  readonly logger: Logger;
  /** Where the one-line human messages go (stdout for the CLI). */
  readonly say: (line: string) => void;
  /** Root of sysfs (`/sys`); a fake tree in tests and VMs. */
  readonly sysfsRoot?: string;
  /** The local socket path (overrides the config file). */
  readonly socketPath?: string;
}

/** A running agent; `stop()` shuts it down in order and journals `agent.stopped`. */
export interface RunningAgent {
  stop(reason: string): Promise<void>;
}

/** Thrown when another live process owns the state directory. */
export class StateDirBusy extends Error {}

/** Thrown when the installer's config or the command line's server URL cannot be used (message for people). */
export class AgentConfigError extends Error {}

/** The installer's config (null when absent), after checking that the server would be reached safely. */
async function readAgentConfig(paths: StatePaths, serverUrl: string | null): Promise<AgentConfig | null> {
  let config: AgentConfig | null;
  try {
    config = await readJsonFile(paths.config, AgentConfigSchema);
  } catch (error) {
    throw new AgentConfigError(error instanceof Error ? error.message : String(error));
  }
  const problem = serverUrl === null ? null : serverUrlProblem(serverUrl, { allowInsecureHttp: config?.allowInsecureHttp, tls: config?.tls });
  if (problem !== null) throw new AgentConfigError(`--server: ${problem}`);
  return config;
}

/**
 * The agent service's composition root: the one place that reads `process.platform`, picks the
 * platform adapters and wires journal, reporter and local IPC together.
 */
export async function startAgent(options: AgentRunOptions): Promise<RunningAgent> {
  const platform = process.platform;
  // Everything the service creates (journal, credentials, socket) is owner-only.
  process.umask(0o077);
  const paths = new StatePaths(options.stateDir);
  await fs.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  // A config that does not parse, or a server URL that would carry the token and the credential in clear, stops the agent here.
  const config = await readAgentConfig(paths, options.serverUrl);

  const lock = await acquireStateLock(paths.lock);
  const startedAtMs = Date.now();
  let stopping: Promise<void> | null = null;

  const { journal, report } = await Journal.open(paths.journal);
  await journalOpenFindings(journal, report);

  const sysfsRoot = options.sysfsRoot ?? '/sys';
  let deviceControl: DeviceControl | null = null;
  const usb = usbAdapters(platform, sysfsRoot, options.logger, (key, reason) => void deviceControl?.unreadable(key, reason));
  const tier = config?.tier ?? FAIL_CLOSED_TIER;
  // The installer's key wins over the one the server named at enrolment (read on each use: enrolment happens later).
  let pinnedKey: string | null = config?.policyPublicKey ?? (await readJsonFile(paths.credentials, CredentialsSchema))?.policyPublicKey ?? null;
  const policies = new PolicySource(paths.policy, tier, () => pinnedKey, journal, options.logger.child({ subsystem: 'policy' }));
  await policies.refresh();
  const probe = await probeEnforcement({
    platform,
    uid: typeof process.getuid === 'function' ? process.getuid() : null,
    sysfsRoot,
    enforcerAvailable: usb !== null,
  });
  const probed: Enforcement = probe.state === 'enforced' && usb ? { ...probe, verifiedOnRealOs: usb.enforcer.verifiedOnRealOs } : probe;
  const enforcement = (): Enforcement => (probed.state === 'enforced' && policies.current.policy.mode === 'audit' ? { ...probed, state: 'audit' } : probed);
  options.say(`sekimori-agent: ${describeEnforcement(probed)}`);
  await journal.append('agent.started', { version: AGENT_VERSION, pid: process.pid, platform, tier, enforcement: probed });
  await policies.announce();

  const clock = new TrustedClock(systemClockSources, await readJsonFile(paths.clock, TrustedClockStateSchema).catch(() => null));
  // Filled in below, once the reporter exists (the lock asks it for the last contact and the server).
  let lockService: LockService | null = null;
  /** The console session's user as last seen (device exceptions are per user); refreshed every reconcile tick. */
  let consoleUserNow: string | null = config?.lock?.consoleUser ?? null;
  /** Set once the status view exists (below); a tick before that has nothing to publish. */
  let nudgeStatus = (): void => undefined;
  const status = (): AgentStatus => ({
    agentVersion: AGENT_VERSION,
    enforcement: enforcement(),
    lockState: lockService?.state ?? 'unknown',
    tier,
    policyVersion: policies.origin === 'signed' ? policies.current.policy.version : null,
    journal: { length: journal.durableHead.seq, headHash: journal.durableHead.hash },
  });

  // Device control runs only where this agent can really enforce; elsewhere it says so (above).
  if (usb !== null && probed.state === 'enforced') {
    const adoption = await InputAdoption.load(paths.adoptedInputDevices);
    if (adoption.firstRun) {
      const adopted = await adoption.adoptFirstRun(await usb.source.list());
      await journal.append('exception.granted', {
        kind: 'adopted-input-devices',
        devices: adopted.map((device) => ({ key: device.key, id: `${device.identity.vendorId}:${device.identity.productId}`, name: device.identity.name, hash: device.identity.hash })),
      });
    }
    deviceControl = new DeviceControl({
      ...usb,
      journal,
      logger: options.logger.child({ subsystem: 'usb' }),
      reconcileMs: config?.usb?.reconcileMs ?? 3000,
      decide: (device, present) => {
        const decision = decideUsb({
          device: device.identity,
          policy: policies.current,
          now: clock.now(),
          presentSerials: countSerials(present.map((item) => item.identity)),
          // An approved request names its user: it applies only while that user is at the console.
          user: consoleUserNow,
        });
        if (decision.target === 'block' && adoption.isAdopted(device)) {
          return { target: 'allow', rule: { kind: 'adopted-input-device', blockedBy: { ...decision.rule } }, audit: decision.audit, flags: decision.flags };
        }
        return { target: decision.target, rule: { ...decision.rule }, audit: decision.audit, flags: decision.flags };
      },
    });
    await deviceControl.start();
  }
  const exportDecision = (channel: Parameters<typeof decideAsStorage>[0], name: string, serial: string): ReturnType<typeof decideAsStorage> =>
    decideAsStorage(channel, name, serial, policies.current, clock.now());
  // Export channels beyond USB devices (optical, SD cards, Thunderbolt/USB4 disks): where device control runs.
  let media: MediaControl | null = null;
  if (platform === 'linux' && deviceControl !== null) {
    media = new MediaControl({
      sysfsRoot,
      commands: new NodeCommandRunner(),
      journal,
      logger: options.logger.child({ subsystem: 'export' }),
      decide: (channel, device: ExportDevice) =>
        device.kind === 'thunderbolt'
          ? exportDecision(channel, `${device.device.vendorName} ${device.device.deviceName}`.trim(), device.device.uniqueId)
          : exportDecision(channel, device.medium.model, device.medium.serial),
    });
    await media.reconcile();
  }
  // Windows: CD/DVD writing through the Removable Storage Access policy (tested at the registry boundary).
  const applyOptical = async (): Promise<void> => {
    if (platform !== 'win32' || probed.state !== 'enforced') return;
    const decision = exportDecision('optical', 'CD/DVD drives', '');
    const outcome = await applyOpticalPolicy(new RegExeRegistry(new NodeCommandRunner()), decision.audit ? 'allow' : decision.target);
    if (outcome.actions.length > 0 || !outcome.ok) {
      await journal.append(decision.target === 'allow' ? 'export.allowed' : 'export.blocked', {
        channel: 'optical',
        decision: decision.target,
        rule: { ...decision.rule },
        audit: decision.audit,
        enforced: { ok: outcome.ok, actions: [...outcome.actions], error: outcome.error },
      });
    }
  };
  await applyOptical();
  const policyChanged = async (): Promise<void> => {
    await deviceControl?.policyChanged();
    await media?.reconcile(true);
    await applyOptical();
  };
  // Network isolation (Linux): connections outside the tier's ranges, new interfaces, default routes.
  let network: NetworkWatcher | null = null;
  if (platform === 'linux') {
    const serverEndpoint = ipEndpointOf(options.serverUrl ?? config?.serverUrl ?? null);
    network = new NetworkWatcher({
      reader: new ProcNetReader(),
      journal,
      logger: options.logger.child({ subsystem: 'network' }),
      commands: new NodeCommandRunner(),
      settings: () => networkSettings(policies.current.policy, serverEndpoint, options.logger),
      lock: (reason) => {
        options.logger.warn('a network violation locks the terminal', { reason });
        lockService?.dispatch({ type: 'policy-violation' });
      },
    });
    await network.start();
  }

  // A new policy re-decides every present device. The trusted clock is kept for the next start,
  // once a minute and at stop: an fsynced write on every tick would cost I/O for nothing.
  let clockSavedAt = 0;
  const saveClock = (): Promise<void> => {
    clockSavedAt = Date.now();
    return writeJsonFileAtomic(paths.clock, clock.state());
  };
  const policyTimer = setInterval(() => {
    void (async () => {
      const user = await session.consoleUser().catch(() => null);
      if (user !== consoleUserNow) {
        consoleUserNow = user;
        await deviceControl?.policyChanged(); // exceptions are per user: re-decide present devices
      }
      if (await policies.refresh()) await policyChanged();
      else await media?.reconcile();
      if (Date.now() - clockSavedAt >= 60_000) await saveClock();
      // Server reachability and the console user change without a journal entry: re-check the view (published only if it differs).
      nudgeStatus();
    })().catch((error: unknown) => options.logger.error('policy refresh failed', { error: String(error) }));
  }, config?.usb?.reconcileMs ?? 3000);

  const reporterConfig = config?.reporter ?? {};
  const reporter = new Reporter({
    journal,
    paths,
    serverUrl: options.serverUrl ?? config?.serverUrl ?? null,
    enrollToken: options.enrollToken,
    hostFacts: () => readHostFacts(platform, AGENT_VERSION),
    status,
    logger: options.logger.child({ subsystem: 'reporter' }),
    heartbeatMs: (reporterConfig.heartbeatSeconds ?? 60) * 1000,
    retryBaseMs: reporterConfig.retryBaseMs ?? 1000,
    retryMaxMs: reporterConfig.retryMaxMs ?? 5 * 60_000,
    uploadDelayMs: reporterConfig.uploadDelayMs ?? 250,
    onServerTime: (serverTimeMs) => clock.sync(serverTimeMs),
    onPolicy: async (signed) => {
      pinnedKey ??= (await readJsonFile(paths.credentials, CredentialsSchema))?.policyPublicKey ?? null;
      if (await policies.offer(signed)) await policyChanged();
    },
    onEnrolled: async (recovery) => {
      await lockService?.setRecoveryKey(recovery.key, recovery.epoch);
    },
    heartbeatExtras: () => {
      const recovery = lockService?.recoveryReport();
      return recovery ? { recovery } : {};
    },
    afterHeartbeat: async () => {
      await lockService?.syncCredentials();
      await requests.sync(reporter.requestServer());
      nudgeStatus();
    },
    onCommands: (commands) => runCommands(commands),
    tls: config?.tls ?? null,
    allowInsecureHttp: config?.allowInsecureHttp === true,
  });

  const requests = await RequestOutbox.open(paths.requests, journal, options.logger.child({ subsystem: 'requests' }));
  const session: SessionPlatform = platform === 'linux' ? new LinuxSession(new NodeCommandRunner(), config?.lock?.consoleUser ?? null) : new UnknownSession(config?.lock?.consoleUser ?? null);
  const bootMonotonic = performance.now();
  const bootWall = Date.now();
  lockService = await LockService.open({
    stateDir: paths.dir,
    journal,
    logger: options.logger.child({ subsystem: 'lock' }),
    policy: () => policies.current.policy.lock,
    nowMs: () => clock.nowMs(),
    // Monotonic: a wall clock set back by the user must not count as a clock jump (it is not one).
    monotonicMs: () => Math.round(bootWall + performance.now() - bootMonotonic),
    hostname: os.hostname().slice(0, 255) || 'unknown',
    session,
    lastContactAt: () => reporter.snapshot.lastContactAt,
    hasServer: () => reporter.snapshot.serverUrl !== null,
    serverReachable: () => reporter.snapshot.problem !== 'server unreachable',
    deviceId: () => reporter.snapshot.deviceId,
    server: reporter.credentialServer(),
  });

  /** Runs server commands in order; each answers with an ack (never throws: a bad command is refused in its ack). */
  const runCommands = async (commands: readonly Command[]): Promise<CommandAck[]> => {
    const acks: CommandAck[] = [];
    for (const raw of commands) {
      const parsed = KnownCommandSchema.safeParse(raw);
      if (!parsed.success) {
        acks.push({ id: raw.id, ok: false, detail: `unknown or malformed command ${raw.type.slice(0, 64)}` });
        await journal.append('command.executed', { id: raw.id, type: raw.type.slice(0, 64), ok: false, detail: 'unknown or malformed' });
        continue;
      }
      const command = parsed.data;
      let detail: string | undefined;
      try {
        switch (command.type) {
          case 'lock':
            lockService?.dispatch({ type: 'remote-lock' });
            break;
          case 'resync':
            reporter.requestResync();
            break;
          case 'reset-factors':
            await lockService?.resetFactors(command.params.user, command.id);
            break;
          case 'set-recovery-key':
            await lockService?.setRecoveryKey(new Uint8Array(Buffer.from(command.params.key, 'base64')), command.params.epoch);
            detail = `recovery key epoch ${command.params.epoch}`;
            break;
          case 'selfcheck': {
            const run = await inspection.run('command', command.id);
            if (run === null) throw new Error('the agent is stopping');
            detail = `selfcheck ${run.runId}: ${run.summary.overall} (pass ${run.summary.pass}, fail ${run.summary.fail}, unknown ${run.summary.unknown})`;
            break;
          }
          default:
            assertNever(command, 'command');
        }
        acks.push(detail === undefined ? { id: command.id, ok: true } : { id: command.id, ok: true, detail });
        // The key itself never reaches the journal.
        await journal.append('command.executed', { id: command.id, type: command.type, ok: true, ...(command.type === 'reset-factors' ? { user: command.params.user } : {}) });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        acks.push({ id: command.id, ok: false, detail: message.slice(0, 500) });
        await journal.append('command.executed', { id: command.id, type: command.type, ok: false, detail: message.slice(0, 500) });
      }
    }
    return acks;
  };
  // Self-inspection (自己点検): at start, daily by the trusted clock, and on the server's command.
  const inspection = new SelfInspection({
    checks: createSelfChecks({
      platform,
      tier,
      stateDir: paths.dir,
      rootDir: '/',
      sysfsRoot,
      commands: new NodeCommandRunner(),
      policies,
      hasServer: () => reporter.snapshot.serverUrl !== null,
      enforcement,
      nowMs: () => clock.nowMs(),
      clockSkew: () => clock.serverSkew(),
      upload: () => {
        const snapshot = reporter.snapshot;
        return { serverUrl: snapshot.serverUrl, ackSeq: snapshot.ackSeq, lastContactAt: snapshot.lastContactAt, problem: snapshot.problem, journalLength: journal.durableHead.seq, chainBrokenAt: report.scan.firstBreak?.seq ?? null };
      },
      uid: typeof process.getuid === 'function' ? process.getuid() : null,
      pid: process.pid,
      startedAtMs,
      ui: async () => ({ consoleUser: (await session.consoleUser()) !== null, lockScreenConnected: lockScreens.size > 0 }),
    }),
    journal,
    logger: options.logger.child({ subsystem: 'selfcheck' }),
    nowMs: () => clock.nowMs(),
    context: () => ({ tier, policyVersion: policies.current.policy.version, policyOrigin: policies.origin, agentVersion: AGENT_VERSION, platform }),
    stateFile: paths.selfcheck,
  });

  // Printing: journaled on every tier, blocked where the policy says so.
  let print: PrintWatcher | null = null;
  const printSource: PrintSource | null =
    platform === 'linux'
      ? new CupsPrintSource({ rootDir: '/', commands: new NodeCommandRunner(), cursor: await loadPrintCursor(paths.printLog) })
      : platform === 'win32'
        ? new WindowsPrintSource({ commands: new NodeCommandRunner(), cursor: await loadPrintCursor(paths.printLog), nowMs: () => clock.nowMs() })
        : null;
  if (printSource !== null) {
    print = new PrintWatcher({
      source: printSource,
      journal,
      logger: options.logger.child({ subsystem: 'print' }),
      mode: () => ({ mode: policies.current.policy.printing?.mode ?? 'log', audit: policies.current.policy.mode === 'audit' }),
      stateFile: paths.printLog,
      intervalMs: (config?.print?.pollSeconds ?? 15) * 1000,
    });
    await print.start();
  }

  // The start inspection runs a little after start (default 60 s): by then the first heartbeat has
  // given the upload and clock checks their data, and the boot is not slowed by lsblk and dpkg-query.
  let inspectionTimer: NodeJS.Timeout | null = null;
  let releaseInspection = (): void => undefined;
  const inspectionStarted = new Promise<void>((resolve) => {
    releaseInspection = resolve;
    inspectionTimer = setTimeout(resolve, (config?.selfcheck?.startDelaySeconds ?? 60) * 1000);
  })
    .then(async () => {
      if (stopping === null) await inspection.start();
    })
    .catch((error: unknown) => options.logger.error('self-inspection could not start', { error: String(error) }));
  await reporter.start();

  const lockNow = lockService;
  /** Present USB devices with their decisions (status window, request form). */
  const presentDevices = (): PresentDevice[] =>
    (deviceControl?.decided() ?? []).map(({ device, target, rule }) => ({
      key: device.key,
      vendorId: device.identity.vendorId,
      productId: device.identity.productId,
      name: device.identity.name,
      serial: device.identity.serial,
      interfaces: [...device.identity.interfaces],
      decision: target,
      rule: {
        kind: DEVICE_RULE_KINDS.find((kind) => kind === rule.kind) ?? 'unknown',
        label: typeof rule.label === 'string' ? rule.label : null,
        exceptionId: typeof rule.exceptionId === 'string' ? rule.exceptionId : null,
      },
    }));
  // The status window's view, pushed to the console user's app whenever it changes (never polled).
  let ipcServer: IpcServer | null = null;
  const statusView = new StatusPublisher({
    sources: {
      nowMs: () => clock.nowMs(),
      hostname: os.hostname().slice(0, 255) || 'unknown',
      user: () => consoleUserNow,
      tier,
      enforcement,
      policy: () => ({
        version: policies.current.policy.version,
        origin: policies.origin,
        mode: policies.current.policy.mode,
        receivedAtMs: policies.appliedAtMs,
        exceptions: policies.current.policy.exceptions,
      }),
      server: () => {
        const snapshot = reporter.snapshot;
        return { configured: snapshot.serverUrl !== null, enrolled: snapshot.enrolled, lastContactAt: snapshot.lastContactAt, reachable: snapshot.serverUrl !== null && snapshot.problem !== 'server unreachable' };
      },
      lockState: () => lockNow.state,
      devices: presentDevices,
      requests: () => requests.list(),
      lastInspection: () => inspection.last,
    },
    publish: (view) => ipcServer?.broadcast({ event: 'status.changed', data: view }, 'console'),
    notify: (notice) => ipcServer?.broadcast({ event: 'device.blocked', data: notice }, 'console'),
    onError: (error) => options.logger.error('status view failed', { error: String(error) }),
  });
  const stopObservingJournal = journal.onDidPersistEntries((entries) => statusView.observe(entries));
  nudgeStatus = () => statusView.nudge();
  const handle = async (request: IpcRequest, connection: IpcConnectionContext): Promise<IpcResult> => {
    switch (request.method) {
      case 'status.view':
        return statusView.view();
      case 'status.get': {
        const snapshot = reporter.snapshot;
        return {
          deviceId: snapshot.deviceId,
          enrolled: snapshot.enrolled,
          journalLength: journal.durableHead.seq,
          ackSeq: snapshot.ackSeq,
          serverUrl: snapshot.serverUrl,
          lastContactAt: snapshot.lastContactAt,
          status: status(),
        };
      }
      case 'journal.append': {
        if (!isKnownEventType(request.params.type)) throw new IpcRefusal('unknown-type', `unknown event type ${request.params.type}`);
        const entry: JournalEntry = await journal.append(request.params.type, request.params.data);
        return { seq: entry.seq, hash: entry.hash };
      }
      case 'events.subscribe':
        connection.subscribe();
        return { subscribed: true };
      case 'lock.get':
        return await lockNow.view();
      case 'lock.submit':
        return await lockNow.submit(request.params.factor, request.params.secret);
      case 'lock.now':
        lockNow.dispatch({ type: 'manual-lock' });
        return await lockNow.view();
      case 'lock.activity':
        lockNow.dispatch({ type: 'activity' });
        return { ok: true };
      case 'lock.uiHeartbeat': {
        // The first heartbeat on a connection marks it as the lock screen: its disconnection is a lock trigger.
        if (!lockScreens.has(connection)) {
          lockScreens.add(connection);
          connection.onClose(() => {
            lockScreens.delete(connection);
            lockNow.dispatch({ type: 'ui-gone' });
          });
        }
        lockNow.dispatch({ type: 'ui-heartbeat' });
        return { state: lockNow.state };
      }
      case 'lock.sessionEvent':
        lockNow.dispatch({ type: request.params.event });
        return await lockNow.view();
      case 'lock.enrolBegin':
        return await lockNow.enrolBegin(request.params.pin);
      case 'lock.enrolConfirm':
        return await lockNow.enrolConfirm(request.params.code);
      case 'lock.recoveryChallenge':
        return await lockNow.recoveryChallenge(request.params.action);
      case 'lock.recoveryRespond':
        return await lockNow.recoveryRespond(request.params.response);
      case 'auth.verify':
        return await lockNow.verifyBoth(request.params.user, request.params.pin, request.params.code, request.params.service);
      case 'devices.list':
        return presentDevices();
      case 'request.submit': {
        const user = await session.consoleUser().catch(() => null);
        if (user === null) throw new IpcRefusal('no-console-user', 'no console session user is known');
        const present = deviceControl?.decided().find((entry) => entry.device.key === request.params.deviceKey);
        if (!present) throw new IpcRefusal('no-such-device', 'that device is not present (unplugged?)');
        if (present.target === 'allow') throw new IpcRefusal('not-blocked', 'that device is already allowed');
        const submitted = await requests.submit({ user, device: present.device.identity, purpose: request.params.purpose, until: request.params.until, access: request.params.access, nowMs: clock.nowMs() });
        if (!submitted.ok) throw new IpcRefusal(submitted.code, submitted.message);
        reporter.nudge();
        return { id: submitted.id, requests: requests.list() };
      }
      case 'request.list':
        return requests.list();
      default:
        return assertNever(request, 'ipc request');
    }
  };
  const lockScreens = new Set<IpcConnectionContext>();
  const authorize = async (privilege: IpcPrivilege, peer: PeerIdentity | null): Promise<boolean> => {
    if (privilege === 'any') return true;
    if (peer === null) return false;
    // The agent's own uid (root for the service; the developer in `npm start`) acts for anyone.
    if (peer.uid === 0 || peer.uid === ownUid) return true;
    if (privilege === 'root') return false;
    const [name, consoleUser] = await Promise.all([session.userName(peer.uid), session.consoleUser()]);
    return name !== null && name === consoleUser;
  };
  const ownUid = typeof process.getuid === 'function' ? process.getuid() : -1;
  const refusals = new RefusalJournal(journal, options.logger);
  const ipc = await IpcServer.listen({
    endpoint: ipcEndpoint(platform, paths, options.socketPath ?? config?.ipc?.socketPath),
    handler: handle,
    logger: options.logger.child({ subsystem: 'ipc' }),
    lookupPeer: platform === 'linux' ? linuxPeerLookup(new NodeCommandRunner()) : undefined,
    authorize,
    onRefused: (info) => refusals.note(info),
  });
  ipcServer = ipc;
  lockService.onDidChange((view) => {
    ipc.broadcast({ event: 'lock.changed', data: view });
    statusView.nudge();
  });

  return {
    stop(reason: string): Promise<void> {
      stopping ??= (async () => {
        clearInterval(policyTimer);
        stopObservingJournal();
        statusView.dispose();
        if (inspectionTimer) clearTimeout(inspectionTimer);
        releaseInspection();
        await inspectionStarted;
        await inspection.dispose();
        await print?.dispose();
        await media?.dispose();
        await saveClock().catch((error: unknown) => options.logger.error('could not save the trusted clock', { error: String(error) }));
        await network?.dispose();
        lockService?.dispose();
        await ipc.close();
        await deviceControl?.dispose();
        await reporter.dispose();
        await journal.append('agent.stopped', { reason });
        await journal.close();
        await lock.release();
      })();
      return stopping;
    },
  };
}

/**
 * Journals refused IPC messages, at most 20 a minute: a local user looping on a forbidden call must
 * not fill the journal. The suppressed count goes into the next entry.
 */
class RefusalJournal {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;
  constructor(
    private readonly journal: Journal,
    private readonly logger: Logger,
  ) {}

  note(info: IpcRefusedInfo): void {
    const now = Date.now();
    if (now - this.windowStart >= 60_000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (++this.inWindow > 20) {
      this.suppressed++;
      return;
    }
    const suppressed = this.suppressed;
    this.suppressed = 0;
    void this.journal
      .append('ipc.refused', { reason: info.reason, method: info.method, uid: info.uid, pid: info.pid, detail: info.detail.slice(0, 300), ...(suppressed > 0 ? { suppressedBefore: suppressed } : {}) })
      .catch((error: unknown) => this.logger.error('could not journal an IPC refusal', { error: String(error) }));
  }
}

/** `a.b.c.d:port` of the server when its URL names an IP address: the agent's own reporting is never a violation. */
function ipEndpointOf(serverUrl: string | null): string | null {
  if (serverUrl === null) return null;
  try {
    const url = new URL(serverUrl);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    // IPv4 literals and bracketed IPv6 literals; a host name is not resolved here.
    return /^[0-9.]+$/.test(url.hostname) || url.hostname.startsWith('[') ? `${url.hostname}:${port}` : null;
  } catch {
    return null;
  }
}

/** The network watcher's settings from the policy in force; a policy section the watcher cannot use falls back to alerting only. */
function networkSettings(policy: Policy, serverEndpoint: string | null, logger: Logger): NetworkSettings {
  const extra = { allowedEndpoints: serverEndpoint ? [serverEndpoint] : [] };
  const settings = settingsFromPolicy(policy.network, policy.mode, extra);
  if (settings.ok) return settings.value;
  logger.error('network section of the policy unusable; alerting on new interfaces only', { error: settings.error.message });
  const fallback = settingsFromPolicy({ allowedCidrs: [], onViolation: 'alert' }, policy.mode, extra);
  if (!fallback.ok) throw new Error(fallback.error.message);
  return fallback.value;
}

/**
 * Takes the state lock, waiting a little: an operator's `journal append` may hold it for a moment
 * while no agent runs. Another agent holding it for longer is an error, not something to wait out.
 */
async function acquireStateLock(file: string): Promise<StateLock> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const attempt = await StateLock.acquire(file);
    if (attempt.ok) return attempt.lock;
    if (Date.now() > deadline) throw new StateDirBusy(`another process (pid ${attempt.heldBy}) holds the state directory lock ${file}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Journals what opening the journal found: a recovered torn tail, or a chain that does not verify. */
export async function journalOpenFindings(journal: Journal, report: JournalOpenReport): Promise<void> {
  if (report.recovered) {
    await journal.append('journal.recovered', { droppedBytes: report.recovered.bytes, savedTo: report.recovered.savedTo });
  }
  if (report.scan.firstBreak) {
    const { seq, reason, message } = report.scan.firstBreak;
    await journal.append('tamper.detected', { kind: 'journal-chain', seq, reason, message });
  }
}
