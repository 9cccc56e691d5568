import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import type { Logger } from 'winston';
import { SignedPolicySchema, type SignedPolicy } from '../shared/api.js';
import { validatePolicy, type Tier, type ValidatedPolicy } from '../shared/policy.js';
import { parseUntrustedJson } from '../shared/safe-json.js';
import type { Journal } from './journal/journal.js';
import { writeJsonFileAtomic } from './state.js';
import { builtInPolicy } from './policy/profiles.js';

/** `signed`: a policy signed by the pinned server key (from the server, or restored from the state dir). */
export type PolicyOrigin = 'built-in' | 'signed';

/**
 * The policy in force (DESIGN.md §5). Until a valid policy arrives the built-in profile of the
 * terminal's tier applies (the strictest, `mynumber`, when the tier is unknown: fail closed).
 *
 * There is one gate: `policy.json` in the state directory holds a signed policy envelope
 * (`SignedPolicy`). The reporter writes what the server sends there, and a policy restored after a
 * restart passes the same checks. A policy is refused — the last good one kept, journaled
 * `policy.rejected` — when it is not signed by the pinned Ed25519 key, does not validate (any bad
 * rule rejects it whole), names another tier, or is older than the one in force (no rollback).
 */
/** The last policy refused (self-inspection reports it when it came after the one in force). */
export interface PolicyRejection {
  readonly reason: string;
  readonly version: number | null;
  /** Wall-clock ms when it was refused (for ordering against `appliedAtMs` only). */
  readonly atMs: number;
}

export class PolicySource {
  private active: { policy: ValidatedPolicy; origin: PolicyOrigin };
  private lastFileStamp = '';
  private rejection: PolicyRejection | null = null;
  private appliedAt = Date.now();

  /**
   * @param publicKey the pinned policy-signing key (SPKI DER, base64), or null when none is pinned
   *   yet (not enrolled, no installer key): then every policy file is refused.
   */
  constructor(
    private readonly file: string,
    private readonly tier: Tier,
    private readonly publicKey: () => string | null,
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

  /** The last policy refused since start, or null. */
  get lastRejection(): PolicyRejection | null {
    return this.rejection;
  }

  /** Wall-clock ms when the policy in force was received (its file's time when it was read from disk at start). */
  get appliedAtMs(): number {
    return this.appliedAt;
  }

  /**
   * Self-inspection: re-reads the policy file and checks, as at acceptance, that it is signed by
   * the pinned key and is the policy in force (same version). A built-in policy has no file to check.
   */
  async verifyInForce(): Promise<{ readonly ok: true } | { readonly ok: false; readonly reason: string }> {
    if (this.active.origin === 'built-in') return { ok: false, reason: 'the built-in profile is in force (no signed policy)' };
    const text = await fs.readFile(this.file, 'utf8').catch(() => null);
    if (text === null) return { ok: false, reason: 'the policy file is missing' };
    const envelope = parseUntrustedJson(text);
    if (!envelope.ok) return { ok: false, reason: 'the policy file is not valid JSON' };
    const signed = SignedPolicySchema.safeParse(envelope.value);
    if (!signed.success) return { ok: false, reason: 'the policy file is not a signed envelope' };
    const signature = this.checkSignature(signed.data);
    if (signature !== null) return { ok: false, reason: signature };
    const json = parseUntrustedJson(signed.data.payload);
    const version = json.ok && typeof json.value === 'object' && json.value !== null ? (json.value as { version?: unknown }).version : undefined;
    if (version !== this.active.policy.policy.version) return { ok: false, reason: `the policy file holds version ${String(version)}, version ${this.active.policy.policy.version} is in force` };
    return { ok: true };
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
    let modifiedMs: number;
    try {
      const stat = await fs.stat(this.file);
      stamp = `${stat.size}:${stat.mtimeMs}:${stat.ino}`;
      modifiedMs = stat.mtimeMs;
    } catch {
      return false;
    }
    if (stamp === this.lastFileStamp) return false;
    this.lastFileStamp = stamp;

    const text = await fs.readFile(this.file, 'utf8').catch(() => null);
    if (text === null) return false;
    const envelope = parseUntrustedJson(text);
    if (!envelope.ok) return this.reject(`policy file is not valid JSON: ${envelope.error.message}`, null);
    const changed = await this.consider(envelope.value);
    // A policy read from its file was received when the file was written (by `offer` or the operator), not now.
    if (changed) this.appliedAt = Math.min(Date.now(), Math.round(modifiedMs));
    return changed;
  }

  /**
   * A signed policy from the server: the same checks as the file, and only an accepted policy is
   * written to the file (a refused one never replaces the last good one on disk).
   * Resolves true when the policy in force changed.
   */
  async offer(signed: SignedPolicy): Promise<boolean> {
    const changed = await this.consider(signed);
    if (changed) {
      await writeJsonFileAtomic(this.file, signed);
      const stat = await fs.stat(this.file);
      this.lastFileStamp = `${stat.size}:${stat.mtimeMs}:${stat.ino}`;
    }
    return changed;
  }

  private async consider(envelope: unknown): Promise<boolean> {
    const signed = SignedPolicySchema.safeParse(envelope);
    if (!signed.success) return this.reject('policy is not a signed policy envelope (unsigned policies are refused)', null);
    const signature = this.checkSignature(signed.data);
    if (signature !== null) return this.reject(signature, null);
    const json = parseUntrustedJson(signed.data.payload);
    if (!json.ok) return this.reject(`signed payload is not valid JSON: ${json.error.message}`, null);
    const validated = validatePolicy(json.value);
    if (!validated.ok) return this.reject(validated.error.message, null);
    const candidate = validated.value;
    if (candidate.policy.tier !== this.tier) {
      return this.reject(`policy is for tier ${candidate.policy.tier}, this terminal is ${this.tier}`, candidate.policy.version);
    }
    const current = this.active.origin === 'signed' ? this.active.policy.policy.version : 0;
    if (candidate.policy.version <= current) {
      if (candidate.policy.version === current) return false;
      return this.reject(`policy version ${candidate.policy.version} is older than version ${current} in force (no rollback)`, candidate.policy.version);
    }
    this.active = { policy: candidate, origin: 'signed' };
    this.appliedAt = Date.now();
    await this.journalApplied();
    return true;
  }

  /** Null when the envelope is signed by the pinned key; otherwise why not. */
  private checkSignature(signed: SignedPolicy): string | null {
    const pinned = this.publicKey();
    if (pinned === null) return 'no policy-signing key is pinned (not enrolled and none in the installer config)';
    let key: crypto.KeyObject;
    const der = Buffer.from(pinned, 'base64');
    try {
      key = crypto.createPublicKey({ key: der, format: 'der', type: 'spki' });
    } catch {
      return 'the pinned policy-signing key is unusable';
    }
    if (key.asymmetricKeyType !== 'ed25519') return 'the pinned policy-signing key is not Ed25519';
    if (policyKeyId(der) !== signed.keyId) return `policy signed by key ${signed.keyId}, not the pinned key ${policyKeyId(der)}`;
    const ok = crypto.verify(null, Buffer.from(signed.payload, 'utf8'), key, Buffer.from(signed.signature, 'base64'));
    return ok ? null : 'policy signature does not verify';
  }

  private async reject(reason: string, version: number | null): Promise<false> {
    this.rejection = { reason: reason.slice(0, 300), version, atMs: Date.now() };
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

/** First 16 hex digits of SHA-256 over a public key's SPKI DER: how envelopes name their key. */
export function policyKeyId(spkiDer: Buffer): string {
  return crypto.createHash('sha256').update(spkiDer).digest('hex').slice(0, 16);
}
