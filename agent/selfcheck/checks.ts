import path from 'node:path';
import type { Enforcement } from '../../shared/api.js';
import type { Policy, Tier } from '../../shared/policy.js';
import type { CommandRunner } from '../platform/command-runner.js';
import type { SelfCheck } from './check.js';
import { diskEncryptionCheck } from './checks/disk-encryption.js';
import { hardwareChangesCheck } from './checks/hardware-changes.js';
import { mfaCheck } from './checks/mfa-check.js';
import { DEFAULT_MAX_UPDATE_AGE_DAYS, osUpdatesCheck } from './checks/os-updates.js';
import { deviceControlCheck, exceptionsCheck, idleLockCheck, policyCurrentCheck, type PolicyView } from './checks/policy-checks.js';
import { agentIntegrityCheck, DEFAULT_MAX_CLOCK_SKEW_SECONDS, journalUploadCheck, timeSyncCheck, type UploadState } from './checks/runtime-checks.js';
import { softwareInventoryCheck } from './checks/software-inventory.js';

/** Everything the twelve checks read, gathered by the composition root (`agent/main.ts`). */
export interface SelfCheckDependencies {
  readonly platform: NodeJS.Platform;
  readonly tier: Tier;
  readonly stateDir: string;
  /** Root of the file system for `/etc/passwd`, PAM and apt files (`/`). */
  readonly rootDir: string;
  readonly sysfsRoot: string;
  readonly commands: CommandRunner;
  readonly policies: PolicyView;
  readonly hasServer: () => boolean;
  readonly enforcement: () => Enforcement;
  readonly nowMs: () => number;
  readonly clockSkew: () => { readonly skewMs: number; readonly sinceSyncMs: number } | null;
  readonly upload: () => UploadState;
  readonly uid: number | null;
  readonly pid: number;
  readonly startedAtMs: number;
  readonly ui: () => Promise<{ readonly consoleUser: boolean; readonly lockScreenConnected: boolean } | null>;
}

/** File in the state directory holding the last hardware inventory. */
export const HARDWARE_INVENTORY_FILE = 'hardware-inventory.json';

/** The checks of `SELFCHECK_IDS`, one each, for this platform. */
export function createSelfChecks(deps: SelfCheckDependencies): SelfCheck[] {
  const thresholds = (): Policy['selfcheck'] => deps.policies.current.policy.selfcheck;
  return [
    policyCurrentCheck({ policies: deps.policies, hasServer: deps.hasServer }),
    deviceControlCheck({ enforcement: deps.enforcement, platform: deps.platform, sysfsRoot: deps.sysfsRoot }),
    exceptionsCheck({ policy: () => deps.policies.current, nowMs: deps.nowMs }),
    mfaCheck({ platform: deps.platform, tier: deps.tier, lockPolicy: () => deps.policies.current.policy.lock, rootDir: deps.rootDir, stateDir: deps.stateDir }),
    idleLockCheck({ policy: () => deps.policies.current, tier: deps.tier }),
    diskEncryptionCheck({ platform: deps.platform, commands: deps.commands }),
    osUpdatesCheck({ platform: deps.platform, rootDir: deps.rootDir, commands: deps.commands, nowMs: deps.nowMs, maxAgeDays: () => thresholds()?.maxUpdateAgeDays ?? DEFAULT_MAX_UPDATE_AGE_DAYS }),
    timeSyncCheck({ skew: deps.clockSkew, maxSkewSeconds: () => thresholds()?.maxClockSkewSeconds ?? DEFAULT_MAX_CLOCK_SKEW_SECONDS }),
    agentIntegrityCheck({ platform: deps.platform, stateDir: deps.stateDir, uid: deps.uid, pid: deps.pid, startedAtMs: deps.startedAtMs, nowMs: deps.nowMs, ui: deps.ui }),
    softwareInventoryCheck({ platform: deps.platform, commands: deps.commands, lists: () => deps.policies.current.policy.software }),
    hardwareChangesCheck({ sysfsRoot: deps.sysfsRoot, stateFile: path.join(deps.stateDir, HARDWARE_INVENTORY_FILE), nowMs: deps.nowMs }),
    journalUploadCheck({ state: deps.upload, nowMs: deps.nowMs }),
  ];
}
