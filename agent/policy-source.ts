import fs from 'node:fs/promises';
import type { Logger } from 'winston';
import { validatePolicy, type Tier, type ValidatedPolicy } from '../shared/policy.js';
import { parseUntrustedJson } from '../shared/safe-json.js';
import type { Journal } from './journal/journal.js';
import { builtInPolicy } from './policy/profiles.js';

export type PolicyOrigin = 'built-in' | 'file';

/**
 * The policy in force (DESIGN.md §5). Until a valid policy arrives the built-in profile of the
 * terminal's tier applies (the strictest, `mynumber`, when the tier is unknown: fail closed). A new
 * policy is refused — and the last good one kept, journaled `policy.rejected` — when it does not
 * validate (any bad rule rejects it whole), names another tier, or is older than the one in force
 * (no rollback). Today policies arrive as a root-only file in the state directory; the server's
 * signed policies (Ed25519, pinned key) arrive through the same gate with the dashboard issue.
 */
export class PolicySource {
  private active: { policy: ValidatedPolicy; origin: PolicyOrigin };
  private lastFileStamp = '';

  constructor(
    private readonly file: string,
    private readonly tier: Tier,
    private readonly journal: Journal,
    private readonly logger: Logger,
  ) {
    this.active = { policy: builtInPolicy(tier), origin: 'built-in' };
  }

  get current(): ValidatedPolicy {
    return this.active.policy;
  }

  get origin(): PolicyOrigin {
    return this.active.origin;
  }

  /** Journals the policy in force at start. */
  async announce(): Promise<void> {
    await this.journalApplied();
  }

  /**
   * Looks at the policy file (cheaply: only when its size or mtime changed) and applies it if it is
   * acceptable. Resolves true when the policy in force changed.
   */
  async refresh(): Promise<boolean> {
    let stamp: string;
    try {
      const stat = await fs.stat(this.file);
      stamp = `${stat.size}:${stat.mtimeMs}:${stat.ino}`;
    } catch {
      return false;
    }
    if (stamp === this.lastFileStamp) return false;
    this.lastFileStamp = stamp;

    const text = await fs.readFile(this.file, 'utf8').catch(() => null);
    if (text === null) return false;
    const json = parseUntrustedJson(text);
    if (!json.ok) return this.reject(`policy file is not valid JSON: ${json.error.message}`, null);
    const validated = validatePolicy(json.value);
    if (!validated.ok) return this.reject(validated.error.message, null);
    const candidate = validated.value;
    if (candidate.policy.tier !== this.tier) {
      return this.reject(`policy is for tier ${candidate.policy.tier}, this terminal is ${this.tier}`, candidate.policy.version);
    }
    const current = this.active.origin === 'file' ? this.active.policy.policy.version : 0;
    if (candidate.policy.version <= current) {
      if (candidate.policy.version === current) return false;
      return this.reject(`policy version ${candidate.policy.version} is older than version ${current} in force (no rollback)`, candidate.policy.version);
    }
    this.active = { policy: candidate, origin: 'file' };
    await this.journalApplied();
    return true;
  }

  private async reject(reason: string, version: number | null): Promise<false> {
    this.logger.error('policy rejected; keeping the policy in force', { reason: reason.slice(0, 500) });
    await this.journal.append('policy.rejected', {
      reason: reason.slice(0, 4000),
      version,
      kept: { version: this.active.policy.policy.version, origin: this.active.origin },
    });
    return false;
  }

  private async journalApplied(): Promise<void> {
    const { policy } = this.active.policy;
    await this.journal.append('policy.applied', {
      origin: this.active.origin,
      version: policy.version,
      tier: policy.tier,
      mode: policy.mode,
      rules: policy.usb.rules.length,
      exceptions: policy.exceptions.length,
    });
  }
}
