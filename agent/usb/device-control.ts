import type { Logger } from 'winston';
import type { Journal } from '../journal/journal.js';
import type { EnforceOutcome, ObservedUsbDevice, UsbDeviceSource, UsbEnforcer, UsbTarget } from './usb-device.js';
import type { UsbEventSource } from './usb-events.js';

/** What the policy decided for one device (the policy engine's answer, as device control uses it). */
export interface DeviceDecision {
  readonly target: UsbTarget;
  /** Which rule decided (policy rule, exception, implicit): journaled as is. */
  readonly rule: Readonly<Record<string, unknown>>;
  /** Audit mode: journal what would happen, enforce nothing. */
  readonly audit: boolean;
  readonly flags: readonly string[];
}

export interface DeviceControlOptions {
  readonly source: UsbDeviceSource;
  readonly enforcer: UsbEnforcer;
  readonly events: UsbEventSource;
  readonly journal: Journal;
  readonly logger: Logger;
  /** Decides one device under the policy in force now. Throwing counts as "block" (fail closed). */
  readonly decide: (device: ObservedUsbDevice, present: readonly ObservedUsbDevice[]) => DeviceDecision;
  /** Reconcile period in ms: the longest a device can go undecided when no event arrives. */
  readonly reconcileMs: number;
}

/** What device control applied to a device, to notice drift and avoid journaling the same decision twice. */
interface Applied {
  readonly fingerprint: string;
  readonly target: UsbTarget;
  readonly enforced: UsbTarget;
  readonly ok: boolean;
  readonly rule: Readonly<Record<string, unknown>>;
}

/** A present device with what was decided for it (the status window, device requests). */
export interface DecidedDevice {
  readonly device: ObservedUsbDevice;
  readonly target: UsbTarget;
  readonly rule: Readonly<Record<string, unknown>>;
}

const EVENT_FOR: Record<UsbTarget, 'device.allowed' | 'device.blocked' | 'device.readonly'> = {
  allow: 'device.allowed',
  block: 'device.blocked',
  reject: 'device.blocked',
  'read-only': 'device.readonly',
};

/**
 * Device control (DESIGN.md §4): every device that appears — by hotplug event, by the periodic
 * reconcile pass, or present at start — is read, decided by the policy and enforced, and the
 * decision is journaled with the rule that made it. Work is serialised (one device at a time), so
 * an event and a reconcile pass never race on the same device. Reconcile also repairs drift: a
 * blocked device someone re-authorised is blocked again and journaled as tampering.
 */
export class DeviceControl {
  private readonly applied = new Map<string, Applied>();
  private queue: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private disposed = false;
  private present: ObservedUsbDevice[] = [];
  private forceNext = false;
  /** Resolves when a reconcile pass completes (tests and the benchmark wait on it). */
  private passListeners: (() => void)[] = [];

  constructor(private readonly options: DeviceControlOptions) {}

  /** Sets default-deny, runs present devices through the policy, then watches. */
  async start(): Promise<void> {
    await this.prepare();
    await this.reconcile();
    await this.options.events.start((event) => {
      // enqueue() never rejects (it logs), so these promises need no handler.
      if (event.kind === 'attach') void this.enqueue(() => this.handle(event.key));
      else void this.enqueue(() => this.forget(event.key));
    });
    this.schedule();
  }

  /** Re-decides every present device (the policy changed). */
  policyChanged(): Promise<void> {
    this.forceNext = true;
    return this.reconcile();
  }

  /** Runs one reconcile pass now (serialised with other work) and resolves when it is done. */
  reconcile(): Promise<void> {
    return this.enqueue(() => this.reconcilePass());
  }

  /**
   * A device that is present but cannot be read (descriptors that do not parse, EACCES): it is
   * blocked by key and journaled, never left as it was (USBGuard rejects such devices).
   */
  unreadable(key: string, reason: string): Promise<void> {
    return this.enqueue(async () => {
      if (this.applied.get(key)?.fingerprint === 'unreadable') return;
      const stub: ObservedUsbDevice = {
        key,
        identity: { vendorId: '0000', productId: '0000', serial: '', name: '', hash: '', parentHash: '', viaPort: key, connectType: '', interfaces: [] },
        manufacturer: '',
        isHub: false,
        authorized: null,
        blockDevices: [],
      };
      const outcome = await this.options.enforcer.apply(stub, 'block');
      this.applied.set(key, { fingerprint: 'unreadable', target: 'block', enforced: 'block', ok: outcome.ok, rule: { kind: 'unreadable' } });
      await this.options.journal.append('device.blocked', {
        key,
        decision: 'block',
        rule: { kind: 'unreadable', reason: reason.slice(0, 500) },
        audit: false,
        flags: ['unreadable'],
        enforced: { target: 'block', ok: outcome.ok, actions: [...outcome.actions], error: outcome.error ?? null },
        via: 'reconcile',
      });
    });
  }

  /** Handles an attach as an event would (the benchmark's and tests' event source). */
  attached(key: string): Promise<void> {
    return this.enqueue(() => this.handle(key));
  }

  dispose(): Promise<void> {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.options.events.dispose();
    return this.queue;
  }

  private schedule(): void {
    if (this.disposed) return;
    this.timer = setTimeout(() => {
      void this.reconcile().finally(() => this.schedule());
    }, this.options.reconcileMs);
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const next = this.queue.then(work).catch((error: unknown) => {
      this.options.logger.error('device control step failed', { error: error instanceof Error ? error.message : String(error) });
    });
    this.queue = next;
    return next;
  }

  private async prepare(): Promise<void> {
    const outcome = await this.options.enforcer.prepare();
    if (!outcome.ok) {
      this.options.logger.error('could not set default-deny', { error: outcome.error });
      await this.options.journal.append('tamper.detected', { kind: 'default-deny-failed', actions: [...outcome.actions], error: outcome.error ?? null });
    }
  }

  private async reconcilePass(): Promise<void> {
    if (this.disposed) return;
    const force = this.forceNext;
    this.forceNext = false;
    // A root hub that appeared since the last pass (a dock) must be default-deny too.
    const prepared = await this.options.enforcer.prepare();
    if (!prepared.ok) this.options.logger.warn('default-deny pass failed', { error: prepared.error });
    const devices = await this.options.source.list();
    this.present = devices;
    const keys = new Set(devices.map((device) => device.key));
    for (const key of [...this.applied.keys()]) if (!keys.has(key)) await this.forget(key);
    for (const device of devices) await this.decideAndEnforce(device, force, 'reconcile');
    for (const listener of this.passListeners.splice(0)) listener();
  }

  /** Resolves after the next complete reconcile pass. */
  nextPass(): Promise<void> {
    return new Promise((resolve) => this.passListeners.push(resolve));
  }

  private async handle(key: string): Promise<void> {
    const device = await this.options.source.read(key);
    if (device === null) return;
    this.present = [...this.present.filter((other) => other.key !== key), device];
    await this.decideAndEnforce(device, false, 'event');
  }

  private async forget(key: string): Promise<void> {
    const applied = this.applied.get(key);
    if (!applied) return;
    this.applied.delete(key);
    this.present = this.present.filter((device) => device.key !== key);
    await this.options.journal.append('device.detached', { key });
  }

  private async decideAndEnforce(device: ObservedUsbDevice, force: boolean, via: 'event' | 'reconcile'): Promise<void> {
    const fingerprint = `${device.identity.hash}|${device.identity.vendorId}:${device.identity.productId}|${device.identity.serial}|${device.identity.interfaces.join(',')}`;
    const previous = this.applied.get(device.key);
    const decision = this.safeDecide(device);
    const enforced: UsbTarget = decision.audit ? 'allow' : decision.target;
    const drifted = previous !== undefined && previous.ok && stateDrifted(device, previous.enforced);
    if (!force && !drifted && previous && previous.fingerprint === fingerprint && previous.target === decision.target && previous.ok) return;

    if (previous === undefined || previous.fingerprint !== fingerprint) {
      await this.options.journal.append('device.attached', { key: device.key, via, device: describe(device) });
    }
    if (drifted) {
      await this.options.journal.append('tamper.detected', {
        kind: 'device-state-drift',
        key: device.key,
        expected: previous.enforced,
        authorized: device.authorized,
      });
    }
    const outcome: EnforceOutcome = await this.options.enforcer.apply(device, enforced).catch((error: unknown) => ({
      ok: false,
      actions: [],
      error: error instanceof Error ? error.message : String(error),
    }));
    const before = previous?.rule;
    this.applied.set(device.key, { fingerprint, target: decision.target, enforced, ok: outcome.ok, rule: decision.rule });
    await this.options.journal.append(EVENT_FOR[decision.target], {
      key: device.key,
      device: describe(device),
      decision: decision.target,
      rule: { ...decision.rule },
      audit: decision.audit,
      flags: [...decision.flags],
      enforced: { target: enforced, ok: outcome.ok, actions: [...outcome.actions], error: outcome.error ?? null },
      via,
    });
    if (!outcome.ok) this.options.logger.error('enforcement failed', { key: device.key, target: enforced, error: outcome.error });
    // An approved request (一時許可) in use, and its end, are audit facts of their own.
    const exceptionId = typeof decision.rule.exceptionId === 'string' ? decision.rule.exceptionId : null;
    if (decision.rule.kind === 'exception' && exceptionId !== null && before?.exceptionId !== exceptionId) {
      await this.options.journal.append('exception.used', { exceptionId, key: device.key, access: decision.target, device: describe(device) });
    } else if (before?.kind === 'exception' && decision.rule.kind !== 'exception' && typeof before.exceptionId === 'string') {
      await this.options.journal.append('exception.expired', { exceptionId: before.exceptionId, key: device.key, now: decision.target, flags: [...decision.flags] });
    }
  }

  /** Every present device with its last decision. */
  decided(): DecidedDevice[] {
    const out: DecidedDevice[] = [];
    for (const device of this.present) {
      const applied = this.applied.get(device.key);
      if (applied) out.push({ device, target: applied.target, rule: applied.rule });
    }
    return out;
  }

  private safeDecide(device: ObservedUsbDevice): DeviceDecision {
    try {
      return this.options.decide(device, this.present);
    } catch (error) {
      // A bug or a bad policy must never let a device through.
      this.options.logger.error('decision failed; blocking', { key: device.key, error: error instanceof Error ? error.message : String(error) });
      return { target: 'block', rule: { kind: 'error' }, audit: false, flags: ['decision-error'] };
    }
  }
}

/** A device whose OS state no longer matches what was enforced (Linux: `authorized`). */
function stateDrifted(device: ObservedUsbDevice, enforced: UsbTarget): boolean {
  if (device.authorized === null) return false;
  const shouldBeAuthorized = enforced === 'allow' || enforced === 'read-only';
  return device.authorized !== shouldBeAuthorized;
}

/** The device identity as journaled: everything an auditor needs to say which device it was. */
function describe(device: ObservedUsbDevice): Record<string, unknown> {
  const { identity } = device;
  return {
    id: `${identity.vendorId}:${identity.productId}`,
    serial: identity.serial,
    name: identity.name,
    manufacturer: device.manufacturer,
    interfaces: [...identity.interfaces],
    viaPort: identity.viaPort,
    connectType: identity.connectType,
    hash: identity.hash,
    parentHash: identity.parentHash,
  };
}
