import crypto from 'node:crypto';
import {
  decodeResponse,
  encodeChallenge,
  issuedMinuteOf,
  recoveryTags,
  responseDigits,
  type RecoveryAction,
  type RecoveryChallenge,
} from '../../shared/lock.js';

/**
 * The terminal's half of administrator recovery, written again from the algorithm's description
 * (agent/lock/recovery.ts, shared/lock.ts) so server tests check the server against the protocol,
 * not against the server's own helpers:
 * - the challenge carries the key epoch mod 10, the issued minute, the device and user tags;
 * - the response is HMAC-SHA256(key, "sekimori-recovery-v1:" + challenge digits) as digits;
 * - after an accepted response the key ratchets: K' = HMAC-SHA256(K, "sekimori-recovery-rotate-v1"),
 *   epoch + 1, and a rotation is due until the server sends a fresh key.
 */
export class RecoveryTerminal {
  key: Buffer;
  epoch: number;
  rotationDue = false;
  private pending: RecoveryChallenge | null = null;

  constructor(
    readonly deviceId: string,
    keyBase64: string,
    epoch: number,
  ) {
    this.key = Buffer.from(keyBase64, 'base64');
    this.epoch = epoch;
  }

  /** A new challenge for `user`, as the lock screen shows it. */
  challenge(user: string, nowMs: number, action: RecoveryAction = 'unlock'): string {
    const sha256Hex = (text: string) => crypto.createHash('sha256').update(text, 'utf8').digest('hex');
    const nonce = String(crypto.randomInt(0, 100_000_000)).padStart(8, '0');
    this.pending = { action, keyEpoch: this.epoch % 10, issuedMinute: issuedMinuteOf(nowMs), ...recoveryTags(this.deviceId, user, sha256Hex), nonce };
    return encodeChallenge(this.pending);
  }

  /** The response this terminal expects for its pending challenge (what a correct server answers). */
  expectedResponseDigits(): string {
    if (this.pending === null) throw new Error('no challenge pending');
    return responseDigits(this.pending, (message) => crypto.createHmac('sha256', this.key).update(message, 'utf8').digest());
  }

  /** Checks a typed response; on success ratchets the key and returns true. */
  accept(response: string): boolean {
    const typed = decodeResponse(response);
    if (!typed.ok || this.pending === null || typed.value !== this.expectedResponseDigits()) return false;
    this.key = crypto.createHmac('sha256', this.key).update('sekimori-recovery-rotate-v1', 'utf8').digest();
    this.epoch += 1;
    this.rotationDue = true;
    this.pending = null;
    return true;
  }

  /** Installs a key from a `set-recovery-key` command. */
  setKey(keyBase64: string, epoch: number): void {
    this.key = Buffer.from(keyBase64, 'base64');
    this.epoch = epoch;
    this.rotationDue = false;
    this.pending = null;
  }

  /** What the heartbeat reports. */
  report(): { keyEpoch: number; rotationDue: boolean } {
    return { keyEpoch: this.epoch, rotationDue: this.rotationDue };
  }
}

/** Changes one digit of the 1-based `group` of a grouped code (`NNNNC-NNNNC-…`), keeping its form. */
export function mistypeGroup(code: string, group: number): string {
  const groups = code.split('-');
  const target = groups[group - 1];
  if (target === undefined) throw new RangeError(`no group ${group}`);
  const first = Number(target[0]);
  groups[group - 1] = String((first + 1) % 10) + target.slice(1);
  return groups.join('-');
}
