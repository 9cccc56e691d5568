import fs from 'node:fs/promises';
import path from 'node:path';
import type { Enforcement } from '../../../shared/api.js';
import type { Tier, ValidatedPolicy } from '../../../shared/policy.js';
import type { PolicyOrigin, PolicyRejection } from '../../policy-source.js';
import { builtInPolicyDocument } from '../../policy/profiles.js';
import { errorText, fail, pass, unknown, type SelfCheck } from '../check.js';

/** What the policy checks read from the policy source (`PolicySource` satisfies it). */
export interface PolicyView {
  readonly current: ValidatedPolicy;
  readonly origin: PolicyOrigin;
  readonly lastRejection: PolicyRejection | null;
  readonly appliedAtMs: number;
  verifyInForce(): Promise<{ readonly ok: true } | { readonly ok: false; readonly reason: string }>;
}

/**
 * `policy-current`: a server-signed policy is in force, its file still verifies against the pinned
 * key, and no policy was refused after it (a refused newer policy means the terminal is behind).
 * The built-in profile is a fail when the terminal reports to a server (it should have received
 * one) and unknown on a terminal without a server.
 */
export function policyCurrentCheck(options: { readonly policies: PolicyView; readonly hasServer: () => boolean }): SelfCheck {
  return {
    id: 'policy-current',
    async run() {
      const { policies } = options;
      const policy = policies.current.policy;
      const evidence: Record<string, unknown> = { origin: policies.origin, version: policy.version, issuedAt: policy.issuedAt, tier: policy.tier, mode: policy.mode };
      const rejection = policies.lastRejection;
      if (rejection !== null) evidence.lastRejected = { version: rejection.version, reason: rejection.reason.slice(0, 200), afterApplied: rejection.atMs >= policies.appliedAtMs };
      if (policies.origin === 'built-in') {
        return options.hasServer() ? fail({ ...evidence, reason: 'no signed policy from the server is in force (built-in profile)' }) : unknown({ ...evidence, reason: 'no server configured: the built-in profile applies' });
      }
      const verified = await policies.verifyInForce();
      evidence.signatureValid = verified.ok;
      if (!verified.ok) return fail({ ...evidence, reason: verified.reason });
      if (rejection !== null && rejection.atMs >= policies.appliedAtMs && (rejection.version === null || rejection.version > policy.version)) {
        return fail({ ...evidence, reason: 'a later policy from the server was refused; the terminal keeps an older one' });
      }
      return pass(evidence);
    },
  };
}

/**
 * `device-control`: device control is enforced (not `unenforced`, not audit mode) and, on Linux,
 * every root hub under the sysfs root is default-deny (`authorized_default` = 0) right now.
 */
export function deviceControlCheck(options: {
  readonly enforcement: () => Enforcement;
  readonly platform: NodeJS.Platform;
  readonly sysfsRoot: string;
}): SelfCheck {
  return {
    id: 'device-control',
    async run() {
      const enforcement = options.enforcement();
      const evidence: Record<string, unknown> = { state: enforcement.state, reason: enforcement.reason ?? null, verifiedOnRealOs: enforcement.verifiedOnRealOs ?? null };
      if (enforcement.state === 'unenforced') return fail({ ...evidence, detail: 'device control is not enforced on this terminal' });
      if (enforcement.state === 'audit') return fail({ ...evidence, detail: 'the policy is in audit mode: nothing is blocked' });
      if (options.platform !== 'linux') return pass(evidence);
      const busDir = path.join(options.sysfsRoot, 'bus', 'usb', 'devices');
      let hubs: string[];
      try {
        hubs = (await fs.readdir(busDir)).filter((name) => /^usb\d+$/.test(name)).sort();
      } catch (error) {
        return unknown({ ...evidence, detail: `cannot list root hubs: ${errorText(error)}` });
      }
      const notDenied: { hub: string; authorizedDefault: string }[] = [];
      for (const hub of hubs) {
        const value = (await fs.readFile(path.join(busDir, hub, 'authorized_default'), 'utf8').catch(() => '?')).trim();
        if (value !== '0') notDenied.push({ hub, authorizedDefault: value });
      }
      evidence.rootHubs = hubs.length;
      if (notDenied.length > 0) return fail({ ...evidence, notDefaultDeny: notDenied });
      return pass(evidence);
    },
  };
}

/**
 * `exceptions`: lists the policy's temporary permissions (一時許可) with their expiry; fails when an
 * expired one is still listed (it no longer applies — the decision engine checks expiry by the
 * trusted clock — but the policy should have dropped it).
 */
export function exceptionsCheck(options: { readonly policy: () => ValidatedPolicy; readonly nowMs: () => number }): SelfCheck {
  return {
    id: 'exceptions',
    run() {
      const now = options.nowMs();
      const active: Record<string, unknown>[] = [];
      const expired: Record<string, unknown>[] = [];
      for (const exception of options.policy().policy.exceptions) {
        const entry = { id: exception.id, until: exception.until, access: exception.access, ...(exception.user ? { user: exception.user } : {}) };
        if (Date.parse(exception.until) > now) active.push(entry);
        else expired.push(entry);
      }
      const evidence = { count: active.length + expired.length, active, expiredStillListed: expired, checkedAt: new Date(now).toISOString() };
      return Promise.resolve(expired.length > 0 ? fail(evidence) : pass(evidence));
    },
  };
}

/**
 * `idle-lock`: the policy locks after idle (not 0 = never) within the tier's maximum, which is the
 * built-in profile's idle time (マイナンバー利用事務系 5 min, LGWAN 10 min, インターネット 15 min).
 */
export function idleLockCheck(options: { readonly policy: () => ValidatedPolicy; readonly tier: Tier }): SelfCheck {
  return {
    id: 'idle-lock',
    run() {
      const { idleSeconds } = options.policy().policy.lock;
      const maxSeconds = builtInPolicyDocument(options.tier).lock.idleSeconds;
      const evidence = { idleSeconds, maxSeconds, tier: options.tier };
      if (idleSeconds === 0) return Promise.resolve(fail({ ...evidence, detail: 'idle lock is off' }));
      return Promise.resolve(idleSeconds <= maxSeconds ? pass(evidence) : fail(evidence));
    },
  };
}
