import net from 'node:net';
import type { Logger } from 'winston';
import { formatAddress, formatCidr, isLoopback, isUnspecified, parseAddress } from '../../shared/cidr.js';
import type { Journal } from '../journal/journal.js';
import type { CommandRunner } from '../platform/command-runner.js';
import { interfaceAllowed, isAllowedRemote, type CanaryTarget, type NetworkSettings } from './network-settings.js';
import { defaultRoutes, routeInterface, type NetworkReader, type NetworkSnapshot, type RouteEntry, type SocketEntry, type SocketOwner, type SocketState } from './proc-net.js';

export const NETWORK_VIOLATION_KINDS = ['connection-outside-tier', 'connection-attempt-outside-tier', 'new-interface', 'default-route', 'canary'] as const;
export type NetworkViolationKind = (typeof NETWORK_VIOLATION_KINDS)[number];

/** What was done about a violation, as journaled. */
export interface ViolationAction {
  readonly type: 'alert' | 'lock' | 'disable';
  /** The action completed (alert: always; lock: the callback resolved; disable: `ip` exited 0). */
  readonly ok: boolean;
  /** Why nothing/what failed: `audit mode`, `protected interface`, `no interface`, the command's error. */
  readonly detail?: string;
}

export interface NetworkWatcherOptions {
  readonly reader: NetworkReader;
  readonly journal: Pick<Journal, 'append'>;
  readonly logger: Logger;
  /** The settings in force now (read at every check, so a policy change applies at the next one). */
  readonly settings: () => NetworkSettings;
  /** Runs `ip link set dev IFACE down` for `alert-disable`. */
  readonly commands: CommandRunner;
  /** Locks the terminal for `alert-lock` (the lock state machine, issue-owned elsewhere). Throwing = lock failed. */
  readonly lock: (reason: string) => void | Promise<void>;
  /** Check period in ms (default 3 000). */
  readonly intervalMs?: number;
  /** Clock for check timing (injectable for tests). */
  readonly now?: () => number;
  /** Most violations journaled per check; the rest are journaled by the next checks (default 100). */
  readonly maxEventsPerCheck?: number;
  /** Look up the owning process of a violating socket (default true; costs a /proc/PID/fd scan per check with new violations). */
  readonly ownerLookup?: boolean;
  /** The `ip` program (default `ip`, found on PATH by the command runner). */
  readonly ipProgram?: string;
  /** Opens a TCP connection for the canary probe (default `tcpProbe`, node:net); tests may script it. */
  readonly connect?: (host: string, port: number, timeoutMs: number) => Promise<ProbeAttempt>;
  /** How long one canary connection attempt may take (default 3 000 ms). */
  readonly canaryTimeoutMs?: number;
}

/** The outcome of one canary connection attempt. */
export type ProbeAttempt =
  | { readonly connected: true; readonly remoteAddress: string; readonly remotePort: number; readonly localAddress: string; readonly localPort: number }
  | { readonly connected: false; readonly error: string };

/** What one canary pass did. */
export interface CanaryReport {
  readonly probed: number;
  readonly reachable: number;
  /** Violations journaled by this pass (a target reachable since an earlier pass is not journaled again). */
  readonly violations: number;
}

/**
 * Tries one TCP connection and closes it at once. A connection that was made is closed with a
 * reset (no TIME_WAIT left behind for the connection table to report a second time).
 */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeAttempt> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let settled = false;
    const finish = (attempt: ProbeAttempt): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => undefined); // a late error after the close must not crash the agent
      if (attempt.connected) socket.resetAndDestroy();
      else socket.destroy();
      resolve(attempt);
    };
    const timer = setTimeout(() => finish({ connected: false, error: `timed out after ${timeoutMs} ms` }), timeoutMs);
    socket.once('connect', () =>
      finish({ connected: true, remoteAddress: socket.remoteAddress ?? host, remotePort: socket.remotePort ?? port, localAddress: socket.localAddress ?? '', localPort: socket.localPort ?? 0 }),
    );
    socket.once('error', (error: NodeJS.ErrnoException) => finish({ connected: false, error: (error.code ?? error.message).slice(0, 200) }));
  });
}

/** What one check found and did (for tests, the benchmark and the log). */
export interface CheckReport {
  readonly sockets: number;
  readonly interfaces: number;
  readonly violations: number;
  /** Violations left for the next check by `maxEventsPerCheck`. */
  readonly deferred: number;
  /** Wall time of read + evaluate + act + journal, ms. */
  readonly durationMs: number;
  /** Time spent reading /proc and /sys, ms. */
  readonly readMs: number;
}

interface Violation {
  readonly key: string;
  readonly kind: NetworkViolationKind;
  readonly iface: string | null;
  readonly data: Record<string, unknown>;
  readonly inode: number;
}

/** TCP states of a connection that was (or is) established: short connections are still seen in TIME_WAIT for ~60 s after closing. */
const CONNECTED_STATES: ReadonlySet<SocketState> = new Set(['ESTABLISHED', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSING']);
/** Half-open connections: ours (SYN_SENT) or someone's towards us (SYN_RECV). */
const ATTEMPT_STATES: ReadonlySet<SocketState> = new Set(['SYN_SENT', 'SYN_RECV', 'NEW_SYN_RECV']);

/**
 * Network isolation of the tier (通信経路の分離, issue 7). Every `intervalMs` it reads the
 * connections, interfaces and routes and journals `network.violation` for:
 * - `connection-outside-tier`: an established TCP connection (or one closing, still in the table)
 *   or a connected UDP socket whose remote address is outside the allowed ranges/endpoints;
 * - `connection-attempt-outside-tier`: the same for a half-open TCP connection (SYN_SENT/SYN_RECV);
 * - `new-interface`: an interface that was not there at start (and is not allowed by name);
 * - `default-route`: a default route, where the settings forbid one.
 * Each is journaled once: a connection while it stays in the table (an attempt that then succeeds
 * is journaled again as a connection), an interface or default route once per appearance. Then the
 * configured action runs (lock once per check; disable once per interface per check) and its
 * outcome is part of the event. Interfaces and default routes present at start are journaled once
 * as `network.baseline`. Checks are serialised; nothing here throws into the caller.
 */
export class NetworkWatcher {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly maxEvents: number;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private disposed = false;
  private started = false;
  private baseline: ReadonlySet<string> = new Set();
  /** Violations journaled and still present, with the kind journaled. */
  private readonly reported = new Map<string, NetworkViolationKind>();
  private checkListeners: ((report: CheckReport) => void)[] = [];
  /** Canary targets found reachable and journaled, until they are unreachable again. */
  private readonly canaryReachable = new Set<string>();
  private lastCanaryAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: NetworkWatcherOptions) {
    this.intervalMs = options.intervalMs ?? 3_000;
    this.now = options.now ?? (() => performance.now());
    this.maxEvents = options.maxEventsPerCheck ?? 100;
  }

  /** Records the baseline (journaled once), runs the first check, then checks every `intervalMs`. */
  async start(): Promise<void> {
    if (this.started) throw new Error('network watcher already started');
    this.started = true;
    await this.enqueue(async () => {
      const snapshot = await this.options.reader.read();
      this.baseline = new Set(snapshot.interfaces.map((entry) => entry.name));
      await this.options.journal.append('network.baseline', {
        interfaces: snapshot.interfaces.map((entry) => ({ name: entry.name, operstate: entry.operstate, mac: entry.mac, virtual: entry.virtual })),
        defaultRoutes: defaultRoutes(snapshot.routes).map(describeRoute),
        unreadable: [...snapshot.unreadable],
      });
      return this.evaluate(snapshot, this.now());
    });
    this.schedule();
  }

  /** Runs one check now (serialised with the timer's) and resolves with its report. */
  check(): Promise<CheckReport> {
    return this.enqueue(async () => {
      const started = this.now();
      const snapshot = await this.options.reader.read();
      return this.evaluate(snapshot, started);
    });
  }

  /** Resolves with the report of the next check that completes. */
  nextCheck(): Promise<CheckReport> {
    return new Promise((resolve) => this.checkListeners.push(resolve));
  }

  /** Stops the timer and waits for a running check. */
  async dispose(): Promise<void> {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.queue.catch(() => undefined);
  }

  private schedule(): void {
    if (this.disposed) return;
    this.timer = setTimeout(() => {
      this.check()
        .then(() => {
          const canary = this.options.settings().canary;
          return canary !== null && this.now() - this.lastCanaryAt >= canary.intervalMs ? this.probeCanaries() : undefined;
        })
        .catch(() => undefined)
        .finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  /**
   * Canary probe (policy `network.canary`): tries every target once, in parallel, serialised with
   * the checks (so the watcher never sees the probe's own half-open connections). Each target that
   * accepts a connection is a `network.violation` of kind `canary`, journaled once until the
   * target is unreachable again, and the policy's action runs as for any violation.
   */
  probeCanaries(): Promise<CanaryReport> {
    const next = this.queue.then(() => this.canaryPass()).catch((error: unknown) => {
      this.options.logger.error('canary probe failed', { error: error instanceof Error ? error.message : String(error) });
      return { probed: 0, reachable: 0, violations: 0 } satisfies CanaryReport;
    });
    this.queue = next;
    return next;
  }

  private async canaryPass(): Promise<CanaryReport> {
    const settings = this.options.settings();
    this.lastCanaryAt = this.now();
    if (settings.canary === null) {
      this.canaryReachable.clear();
      return { probed: 0, reachable: 0, violations: 0 };
    }
    const connect = this.options.connect ?? tcpProbe;
    const timeoutMs = this.options.canaryTimeoutMs ?? 3_000;
    const targets = settings.canary.targets;
    const attempts = await Promise.all(targets.map((target) => connect(target.host, target.port, timeoutMs).catch((error: unknown): ProbeAttempt => ({ connected: false, error: String(error) }))));
    const reached: { target: CanaryTarget; attempt: Extract<ProbeAttempt, { connected: true }> }[] = [];
    targets.forEach((target, index) => {
      const attempt = attempts[index];
      if (attempt?.connected) reached.push({ target, attempt });
    });
    const reachedKeys = new Set(reached.map(({ target }) => target.text));
    for (const key of [...this.canaryReachable]) if (!reachedKeys.has(key)) this.canaryReachable.delete(key);
    const fresh = reached.filter(({ target }) => !this.canaryReachable.has(target.text));
    if (fresh.length > 0) {
      const routes = (await this.options.reader.read().catch(() => null))?.routes ?? [];
      const batch: Violation[] = fresh.map(({ target, attempt }) => {
        const remote = parseAddress(attempt.remoteAddress);
        return {
          key: `canary|${target.text}`,
          kind: 'canary',
          iface: remote.ok ? (isLoopback(remote.value) ? 'lo' : routeInterface(routes, remote.value)) : null,
          inode: 0,
          data: {
            target: target.text,
            remote: { address: attempt.remoteAddress, port: attempt.remotePort },
            local: { address: attempt.localAddress, port: attempt.localPort },
            detail: 'a canary target outside the tier accepted a connection',
          },
        };
      });
      const actions = await this.act(batch, settings);
      const policy = { onViolation: settings.onViolation, audit: settings.audit };
      for (const violation of batch) {
        await this.options.journal.append('network.violation', { kind: violation.kind, ...violation.data, interface: violation.iface, policy, action: actions(violation) });
        this.canaryReachable.add(violation.key.slice('canary|'.length));
      }
      this.options.logger.warn('canary targets reachable', { count: batch.length });
    }
    return { probed: targets.length, reachable: reached.length, violations: fresh.length };
  }

  private enqueue(work: () => Promise<CheckReport>): Promise<CheckReport> {
    const next = this.queue.then(work).catch((error: unknown) => {
      this.options.logger.error('network check failed', { error: error instanceof Error ? error.message : String(error) });
      return { sockets: 0, interfaces: 0, violations: 0, deferred: 0, durationMs: 0, readMs: 0 } satisfies CheckReport;
    });
    this.queue = next;
    return next;
  }

  private async evaluate(snapshot: NetworkSnapshot, started: number): Promise<CheckReport> {
    const readDone = this.now();
    const settings = this.options.settings();
    const found = this.findViolations(snapshot, settings);
    const current = new Set(found.map((violation) => violation.key));
    // Gone from the table: a later appearance is a new one.
    for (const key of [...this.reported.keys()]) if (!current.has(key)) this.reported.delete(key);
    const fresh = found.filter((violation) => {
      const previous = this.reported.get(violation.key);
      return previous === undefined || (previous === 'connection-attempt-outside-tier' && violation.kind === 'connection-outside-tier');
    });
    const batch = fresh.slice(0, this.maxEvents);
    if (batch.length > 0) {
      const owners = await this.owners(batch);
      const actions = await this.act(batch, settings);
      const policy = { onViolation: settings.onViolation, audit: settings.audit };
      await Promise.all(
        batch.map(async (violation) => {
          const owner = violation.inode > 0 ? owners.get(violation.inode) : undefined;
          const process = violation.kind.startsWith('connection') ? { process: owner ? { pid: owner.pid, command: owner.command } : null } : {};
          await this.options.journal.append('network.violation', {
            kind: violation.kind,
            ...violation.data,
            ...process,
            interface: violation.iface,
            policy,
            action: actions(violation),
          });
          this.reported.set(violation.key, violation.kind);
        }),
      );
      this.options.logger.warn('network violations', { count: batch.length, deferred: fresh.length - batch.length });
    }
    const report: CheckReport = {
      sockets: snapshot.sockets.length,
      interfaces: snapshot.interfaces.length,
      violations: batch.length,
      deferred: fresh.length - batch.length,
      durationMs: this.now() - started,
      readMs: readDone - started,
    };
    for (const listener of this.checkListeners.splice(0)) listener(report);
    return report;
  }

  /** Every violation present in this snapshot (journaled before or not). Pure. */
  private findViolations(snapshot: NetworkSnapshot, settings: NetworkSettings): Violation[] {
    const violations: Violation[] = [];
    for (const entry of snapshot.interfaces) {
      if (this.baseline.has(entry.name) || interfaceAllowed(settings.allowedInterfaces, entry.name)) continue;
      violations.push({
        key: `if|${entry.name}`,
        kind: 'new-interface',
        iface: entry.name,
        inode: 0,
        data: { operstate: entry.operstate, mac: entry.mac, virtual: entry.virtual },
      });
    }
    // An interface that vanished leaves the baseline: if it comes back, that is an appearance.
    const present = new Set(snapshot.interfaces.map((entry) => entry.name));
    if ([...this.baseline].some((name) => !present.has(name))) this.baseline = new Set([...this.baseline].filter((name) => present.has(name)));

    if (!settings.defaultRouteAllowed) {
      for (const route of defaultRoutes(snapshot.routes)) {
        violations.push({
          key: `route|${route.family}|${route.interface}|${route.gateway === null ? '' : route.gateway.value.toString(16)}`,
          kind: 'default-route',
          iface: route.interface,
          inode: 0,
          data: { route: describeRoute(route) },
        });
      }
    }

    if (settings.allowedCidrs.length === 0 && settings.allowedEndpoints.length === 0) return violations;
    let listening: Set<string> | null = null;
    for (const socket of snapshot.sockets) {
      const kind = connectionKind(socket);
      if (kind === null || isUnspecified(socket.remote)) continue;
      if (isAllowedRemote(settings, socket.remote, socket.remotePort, isLoopback(socket.remote))) continue;
      listening ??= listeningPorts(snapshot.sockets);
      const inbound = listening.has(`${socket.protocol}|${socket.localPort}`);
      violations.push({
        key: `${socket.protocol}|${socket.local.value.toString(16)}|${socket.localPort}|${socket.remote.value.toString(16)}|${socket.remotePort}`,
        kind,
        // A connection to one of this host's own addresses goes over lo (the kernel's local table).
        iface: socket.remote.value === socket.local.value && socket.remote.family === socket.local.family ? 'lo' : routeInterface(snapshot.routes, socket.remote),
        inode: socket.inode,
        data: {
          protocol: socket.protocol,
          state: socket.state,
          direction: socket.protocol.startsWith('udp') ? 'unknown' : inbound ? 'inbound' : 'outbound',
          remote: { address: formatAddress(socket.remote), port: socket.remotePort },
          local: { address: formatAddress(socket.local), port: socket.localPort },
          uid: socket.uid,
        },
      });
    }
    return violations;
  }

  private async owners(batch: readonly Violation[]): Promise<ReadonlyMap<number, SocketOwner>> {
    const lookup = this.options.reader.socketOwners?.bind(this.options.reader);
    const inodes = batch.map((violation) => violation.inode).filter((inode) => inode > 0);
    if (this.options.ownerLookup === false || lookup === undefined || inodes.length === 0) return new Map();
    try {
      return await lookup(inodes);
    } catch {
      return new Map();
    }
  }

  /** Runs the configured action for a batch; returns the outcome per violation. */
  private async act(batch: readonly Violation[], settings: NetworkSettings): Promise<(violation: Violation) => ViolationAction> {
    switch (settings.onViolation) {
      case 'alert':
        return () => ({ type: 'alert', ok: true });
      case 'alert-lock': {
        if (settings.audit) return () => ({ type: 'lock', ok: false, detail: 'audit mode: not locked' });
        const first = batch[0];
        const reason = `network.violation: ${first?.kind ?? ''}${batch.length > 1 ? ` (+${batch.length - 1})` : ''}`;
        let outcome: ViolationAction;
        try {
          await this.options.lock(reason);
          outcome = { type: 'lock', ok: true };
        } catch (error) {
          outcome = { type: 'lock', ok: false, detail: error instanceof Error ? error.message : String(error) };
          this.options.logger.error('lock after network violation failed', { error: outcome.detail });
        }
        return () => outcome;
      }
      case 'alert-disable': {
        const outcomes = new Map<string, ViolationAction>();
        for (const name of new Set(batch.map((violation) => violation.iface))) {
          if (name === null) continue;
          outcomes.set(name, await this.disable(name, settings));
        }
        return (violation) => (violation.iface === null ? { type: 'disable', ok: false, detail: 'no interface: no route to the address' } : (outcomes.get(violation.iface) ?? { type: 'disable', ok: false }));
      }
      default: {
        const never: never = settings.onViolation;
        throw new Error(`unexpected onViolation: ${String(never)}`);
      }
    }
  }

  private async disable(name: string, settings: NetworkSettings): Promise<ViolationAction> {
    if (name === 'lo' || settings.protectedInterfaces.includes(name)) return { type: 'disable', ok: false, detail: 'protected interface: not disabled' };
    if (settings.audit) return { type: 'disable', ok: false, detail: 'audit mode: not disabled' };
    const result = await this.options.commands.run(this.options.ipProgram ?? 'ip', ['link', 'set', 'dev', name, 'down'], { timeoutMs: 10_000 });
    if (result.code === 0 && result.error === undefined) return { type: 'disable', ok: true };
    const detail = (result.error ?? `ip exited ${String(result.code)}: ${result.stderr.trim()}`).slice(0, 300);
    this.options.logger.error('could not disable interface', { interface: name, error: detail });
    return { type: 'disable', ok: false, detail };
  }
}

function connectionKind(socket: SocketEntry): NetworkViolationKind | null {
  if (socket.protocol === 'udp' || socket.protocol === 'udp6') return socket.state === 'ESTABLISHED' ? 'connection-outside-tier' : null;
  if (CONNECTED_STATES.has(socket.state)) return 'connection-outside-tier';
  if (ATTEMPT_STATES.has(socket.state)) return 'connection-attempt-outside-tier';
  return null;
}

/** `protocol|port` of every listening TCP socket: a connection on such a port came in. */
function listeningPorts(sockets: readonly SocketEntry[]): Set<string> {
  const ports = new Set<string>();
  for (const socket of sockets) if (socket.state === 'LISTEN') ports.add(`${socket.protocol}|${socket.localPort}`);
  return ports;
}

function describeRoute(route: RouteEntry): Record<string, unknown> {
  return {
    family: route.family,
    destination: formatCidr(route.destination),
    gateway: route.gateway === null ? null : formatAddress(route.gateway),
    interface: route.interface,
    metric: route.metric,
  };
}

