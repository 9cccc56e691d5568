import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import {
  RECOVERY_VALIDITY_MS,
  RecoveryActionSchema,
  RecoveryChallengeSchema,
  decodeResponse,
  encodeChallenge,
  issuedMinuteOf,
  recoveryTags,
  responseDigits,
  type CodeErrorCode,
  type RecoveryAction,
  type RecoveryChallenge,
} from '../../shared/lock.js';
import { err, ok, type Result } from '../../shared/result.js';
import { sha256Hex } from '../crypto.js';
import { readJsonFile, writeJsonFileAtomic } from '../state.js';

/**
 * Offline administrator recovery (DESIGN.md §6), agent side.
 *
 * The server gives each device a random 32-byte key (`setKey`, at enrolment and at each rotation).
 * The lock screen asks for a challenge (`issueChallenge`); the administrator types it into the
 * dashboard, which answers HMAC-SHA256(key, challenge) as 12 digits in 3 checked groups
 * (`shared/lock.ts`). The agent accepts a response:
 * - only for the challenge on screen (issuing a new one discards the old),
 * - only within `RECOVERY_VALIDITY_MS` (15 min) of issue, by the trusted clock (a clock that went
 *   backwards makes it expire, never last longer),
 * - only once: the challenge is discarded and the key ratchets to
 *   K' = HMAC-SHA256(K, "sekimori-recovery-rotate-v1") (epoch + 1) and is persisted before the
 *   answer, so neither the response nor the old key works again. The server derives K' the same way
 *   (the challenge names the epoch mod 10), so this works offline; `rotationDue` tells the caller to
 *   fetch a fresh random key from the server at the next contact, which ends the ratchet chain.
 * - with at most `MAX_RESPONSE_ATTEMPTS` wrong responses per challenge (12 digits ≈ 40 bits): then
 *   the challenge is discarded. A typo caught by a check digit is not an attempt; it names the group.
 *
 * State file `lock-recovery.json` (0600): key, epoch, pending challenge, rotationDue.
 */

export const LOCK_RECOVERY_FILE = 'lock-recovery.json';
export const MAX_RESPONSE_ATTEMPTS = 5;
const ROTATE_LABEL = 'sekimori-recovery-rotate-v1';

const RecoveryStateSchema = z.strictObject({
  version: z.literal(1),
  key: z.base64().nullable(),
  keyEpoch: z.int().min(0),
  rotationDue: z.boolean(),
  pending: z
    .strictObject({
      challenge: RecoveryChallengeSchema,
      user: z.string().min(1).max(256),
      issuedAtMs: z.number().int().nonnegative(),
      failures: z.int().min(0),
    })
    .nullable(),
});
type RecoveryState = z.infer<typeof RecoveryStateSchema>;

/** The next key of the ratchet (the server computes the same). */
export function rotateRecoveryKey(key: Uint8Array): Uint8Array {
  return new Uint8Array(crypto.createHmac('sha256', key).update(ROTATE_LABEL, 'utf8').digest());
}

/** HMAC-SHA256 with `key` as the injected MAC for `shared/lock.ts` (the server uses the same). */
export function hmacWith(key: Uint8Array): (message: string) => Uint8Array {
  return (message) => new Uint8Array(crypto.createHmac('sha256', key).update(message, 'utf8').digest());
}

export type RecoveryErrorCode = CodeErrorCode | 'no-key' | 'no-challenge' | 'expired' | 'wrong-response' | 'too-many-attempts';

export interface IssuedChallenge {
  /** What the lock screen shows: `NNNNC-NNNNC-NNNNC-NNNNC-NNNNC-NNNNC`. */
  readonly code: string;
  readonly challenge: RecoveryChallenge;
  readonly expiresAtMs: number;
}

export class RecoveryVerifier {
  private constructor(
    private readonly file: string,
    private readonly deviceId: string,
    private state: RecoveryState,
  ) {}

  /** Opens (or starts) the recovery state in `dir`; throws on a malformed file (a bug or tampering: the caller journals it). */
  static async open(dir: string, deviceId: string): Promise<RecoveryVerifier> {
    const file = path.join(dir, LOCK_RECOVERY_FILE);
    const state = (await readJsonFile(file, RecoveryStateSchema)) ?? { version: 1, key: null, keyEpoch: 0, rotationDue: false, pending: null };
    return new RecoveryVerifier(file, deviceId, state);
  }

  get keyEpoch(): number {
    return this.state.keyEpoch;
  }

  /** True after a response was accepted until the server delivers a fresh key. */
  get rotationDue(): boolean {
    return this.state.rotationDue;
  }

  get hasKey(): boolean {
    return this.state.key !== null;
  }

  private async save(next: RecoveryState): Promise<void> {
    await writeJsonFileAtomic(this.file, next);
    this.state = next;
  }

  /** Installs the key the server sent (enrolment or rotation); discards any pending challenge. */
  async setKey(key: Uint8Array, epoch: number): Promise<void> {
    if (key.length !== 32) throw new RangeError('recovery key must be 32 bytes');
    await this.save({ version: 1, key: Buffer.from(key).toString('base64'), keyEpoch: epoch, rotationDue: false, pending: null });
  }

  /** A new challenge for `user` and `action`; replaces any earlier one. */
  async issueChallenge(user: string, action: RecoveryAction, nowMs: number): Promise<Result<IssuedChallenge, 'no-key'>> {
    if (this.state.key === null) return err('no-key', 'this terminal has no recovery key yet (never reached the server)');
    RecoveryActionSchema.parse(action);
    const tags = recoveryTags(this.deviceId, user, sha256Hex);
    const nonce = String(crypto.randomInt(0, 100_000_000)).padStart(8, '0');
    const challenge: RecoveryChallenge = { action, keyEpoch: this.state.keyEpoch % 10, issuedMinute: issuedMinuteOf(nowMs), ...tags, nonce };
    await this.save({ ...this.state, pending: { challenge, user, issuedAtMs: nowMs, failures: 0 } });
    return ok({ code: encodeChallenge(challenge), challenge, expiresAtMs: nowMs + RECOVERY_VALIDITY_MS });
  }

  /** The challenge on screen, if any (for re-rendering after a lock-screen restart). */
  pendingChallenge(): IssuedChallenge | null {
    const p = this.state.pending;
    return p ? { code: encodeChallenge(p.challenge), challenge: p.challenge, expiresAtMs: p.issuedAtMs + RECOVERY_VALIDITY_MS } : null;
  }

  /**
   * Checks a typed response. Success returns the user and action of the challenge (the caller
   * applies it: clear the lock-out, and for `unlock` dispatch `recovery-unlock`; journal
   * `auth.recovered`). Errors: `check-digit` (with `groups`), `bad-length`, `bad-character`,
   * `empty` (typos, not counted), `no-challenge`, `expired`, `wrong-response`, `too-many-attempts`.
   */
  async verifyResponse(input: unknown, nowMs: number): Promise<Result<{ user: string; action: RecoveryAction }, RecoveryErrorCode> & { groups?: readonly number[] }> {
    const pending = this.state.pending;
    if (pending === null || this.state.key === null) return err('no-challenge', 'no recovery challenge is on screen: ask for one first');
    if (nowMs < pending.issuedAtMs || nowMs - pending.issuedAtMs > RECOVERY_VALIDITY_MS) {
      await this.save({ ...this.state, pending: null });
      return err('expired', 'the challenge expired: ask for a new one');
    }
    const typed = decodeResponse(input);
    if (!typed.ok) return typed;
    const key = Buffer.from(this.state.key, 'base64');
    const expected = Buffer.from(responseDigits(pending.challenge, hmacWith(key)), 'utf8');
    const given = Buffer.from(typed.value, 'utf8');
    if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
      const failures = pending.failures + 1;
      if (failures >= MAX_RESPONSE_ATTEMPTS) {
        await this.save({ ...this.state, pending: null });
        return err('too-many-attempts', 'too many wrong responses: ask for a new challenge');
      }
      await this.save({ ...this.state, pending: { ...pending, failures } });
      return err('wrong-response', 'the response does not match this challenge');
    }
    const next = rotateRecoveryKey(key);
    await this.save({ version: 1, key: Buffer.from(next).toString('base64'), keyEpoch: this.state.keyEpoch + 1, rotationDue: true, pending: null });
    return ok({ user: pending.user, action: pending.challenge.action });
  }

  /** Mode check for the state file (POSIX): group/other access → the caller refuses and journals `tamper.detected`. */
  async checkMode(): Promise<boolean> {
    try {
      const stat = await fs.stat(this.file);
      return (stat.mode & 0o077) === 0;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw error;
    }
  }
}
