import crypto from 'node:crypto';
import type { HeartbeatRequest, RecoveryAnswer } from '../shared/api.js';
import { RECOVERY_VALIDITY_MS, decodeChallenge, encodeResponse, recoveryTags, type RecoveryChallenge } from '../shared/lock.js';
import { err, ok, type Result } from '../shared/result.js';
import { newCommandId } from './commands.js';
import { sha256Hex } from './crypto.js';
import { recoveryKeyAad, type DataKey } from './data-key.js';
import type { DeviceRecoveryKeys, SealedRecoveryKey, Store } from './store.js';

/**
 * Administrator recovery, server side (DESIGN.md §6; the agent side is agent/lock/recovery.ts).
 *
 * Each device holds a random 32-byte key from the server (enrolment, then rotations). The lock
 * screen shows a challenge; an administrator types it into `POST /admin/recovery`, which answers
 * HMAC-SHA256(key, challenge) as 12 checked digits (`encodeResponse` in shared/lock.ts).
 *
 * The key ratchets: after each accepted response the agent replaces K by
 * K' = HMAC-SHA256(K, "sekimori-recovery-rotate-v1") and its epoch by epoch + 1, offline. The
 * challenge carries the epoch mod 10, so the server ratchets its stored key forward to the smallest
 * epoch ≥ the stored one with that digit (at most 9 steps). Answering never moves the stored key:
 * an answer that is never typed in must not desynchronise the server from the terminal.
 *
 * The server learns the agent's epoch from heartbeats (`recovery.keyEpoch`) and moves its stored
 * key forward to it; when the agent says `rotationDue` (it used a key), or its epoch is not the
 * server's, the server sends a fresh random key for epoch + 1 with a `set-recovery-key` command and
 * keeps it PENDING until the agent acknowledges it (then it becomes current; a failed ack drops it).
 */

const ROTATE_LABEL = 'sekimori-recovery-rotate-v1';

/** Most ratchet steps a heartbeat may ask the server to take (each is one HMAC); beyond, only a fresh key helps. */
export const MAX_HEARTBEAT_RATCHET_STEPS = 1000;

/** How far ahead of the server's clock a terminal's clock may be for its challenge's minute to count as "now". */
export const CHALLENGE_CLOCK_SKEW_MINUTES = 5;

/** Most devices a challenge's 6-digit tag is matched against (a collision shows as several). */
const MAX_MATCHES = 20;
/** Most known users looked at per matching device. */
const MAX_USERS_PER_DEVICE = 1000;

/** The next key of the ratchet (the agent computes the same: agent/lock/recovery.ts). */
export function rotateRecoveryKey(key: Uint8Array): Uint8Array {
  return new Uint8Array(crypto.createHmac('sha256', key).update(ROTATE_LABEL, 'utf8').digest());
}

/** HMAC-SHA256 with `key` as the injected MAC for shared/lock.ts (the agent uses the same). */
export function hmacWith(key: Uint8Array): (message: string) => Uint8Array {
  return (message) => new Uint8Array(crypto.createHmac('sha256', key).update(message, 'utf8').digest());
}

/** `key` ratcheted `steps` times. */
export function ratchetRecoveryKey(key: Uint8Array, steps: number): Uint8Array {
  let next = key;
  for (let i = 0; i < steps; i += 1) next = rotateRecoveryKey(next);
  return next;
}

/** The device tag a challenge from `deviceId` carries. */
export function deviceRecoveryTag(deviceId: string): string {
  return recoveryTags(deviceId, '-', sha256Hex).deviceTag;
}

/** The user tag a challenge for `user` carries. */
export function userRecoveryTag(user: string): string {
  return recoveryTags('-', user, sha256Hex).userTag;
}

/** A fresh random recovery key, sealed for the device and epoch; `key` is what goes to the agent. */
export function newSealedRecoveryKey(dataKey: DataKey, deviceId: string, epoch: number, at: string): { key: Buffer; sealed: SealedRecoveryKey } {
  const key = crypto.randomBytes(32);
  return { key, sealed: sealRecoveryKey(dataKey, deviceId, epoch, key, at) };
}

function sealRecoveryKey(dataKey: DataKey, deviceId: string, epoch: number, key: Uint8Array, at: string): SealedRecoveryKey {
  return { epoch, sealedKey: dataKey.seal(key, recoveryKeyAad(deviceId, epoch)), createdAt: at };
}

/** Opens a stored recovery key; throws SealedDataError when it was altered or moved. */
export function openRecoveryKey(dataKey: DataKey, deviceId: string, sealed: SealedRecoveryKey): Buffer {
  return dataKey.open(sealed.sealedKey, recoveryKeyAad(deviceId, sealed.epoch));
}

/**
 * The key a challenge with epoch digit `digit` was made with: the pending key when it was delivered
 * and its epoch has that digit (the agent most likely installed it), else the current key ratcheted
 * forward to the smallest epoch ≥ its own with that digit. Null when the device has no key.
 */
export function keyForDigit(dataKey: DataKey, deviceId: string, keys: DeviceRecoveryKeys, digit: number): { key: Uint8Array; epoch: number } | null {
  const { pending, current } = keys;
  if (pending !== null && pending.delivered && pending.epoch % 10 === digit) {
    return { key: openRecoveryKey(dataKey, deviceId, pending), epoch: pending.epoch };
  }
  if (current === null) return null;
  const steps = (digit - (current.epoch % 10) + 10) % 10;
  return { key: ratchetRecoveryKey(openRecoveryKey(dataKey, deviceId, current), steps), epoch: current.epoch + steps };
}

/**
 * The minute a challenge was issued: the latest minute not after now (or at most
 * CHALLENGE_CLOCK_SKEW_MINUTES ahead, for a terminal whose clock is fast) that is ≡ `issuedMinute`
 * mod 10 000. `expired` when even the end of that minute is older than RECOVERY_VALIDITY_MS.
 */
export function resolveIssuedMinute(issuedMinute: number, nowMs: number): { issuedAtMs: number; expired: boolean } {
  const nowMinute = Math.floor(nowMs / 60_000);
  let minute = nowMinute - ((((nowMinute - issuedMinute) % 10_000) + 10_000) % 10_000);
  if (minute + 10_000 <= nowMinute + CHALLENGE_CLOCK_SKEW_MINUTES) minute += 10_000;
  return { issuedAtMs: minute * 60_000, expired: nowMs - (minute + 1) * 60_000 > RECOVERY_VALIDITY_MS };
}

export type RecoveryErrorCode = 'bad-challenge' | 'expired' | 'unknown-device' | 'not-this-device' | 'no-key';

export interface RecoveryOutcome {
  readonly answer: RecoveryAnswer;
  /** The device the response was computed for (null: none or several matched). */
  readonly respondedFor: string | null;
  /** The full key epoch the response used. */
  readonly keyEpoch: number | null;
}

export interface RecoveryDeps {
  readonly store: Store;
  readonly dataKey: DataKey;
}

/**
 * Turns a typed challenge into what the administrator sees: what it decodes to, the devices (and
 * their users) whose tags match, and the response when exactly one device matches or `deviceId`
 * chose one. Stores nothing (the caller records the request in the admin trail).
 *
 * Errors: `bad-challenge` (typo, wrong length…; `groups` names mistyped groups), `expired`,
 * `unknown-device` (the chosen device does not exist), `not-this-device` (the chosen device's tag is
 * not the challenge's), `no-key` (the device was never given a recovery key).
 */
export async function answerRecovery(
  { store, dataKey }: RecoveryDeps,
  request: { readonly challenge: string; readonly deviceId?: string | undefined },
  nowMs: number,
): Promise<Result<RecoveryOutcome, RecoveryErrorCode> & { groups?: readonly number[]; decoded?: RecoveryAnswer['decoded'] }> {
  const parsed = decodeChallenge(request.challenge);
  if (!parsed.ok) {
    const failure = err('bad-challenge', parsed.error.message);
    return parsed.groups === undefined ? failure : { ...failure, groups: parsed.groups };
  }
  const challenge = parsed.value;
  const issued = resolveIssuedMinute(challenge.issuedMinute, nowMs);
  const decoded = decodedOf(challenge, issued.issuedAtMs);
  if (issued.expired) return { ...err('expired', `the challenge was issued at ${decoded.issuedAt}, more than ${RECOVERY_VALIDITY_MS / 60_000} minutes ago: ask for a new one`), decoded };

  let candidates;
  if (request.deviceId !== undefined) {
    const tier = await store.deviceTier(request.deviceId);
    if (tier === null) return { ...err('unknown-device', `no device ${request.deviceId}`), decoded };
    if (deviceRecoveryTag(request.deviceId) !== challenge.deviceTag) {
      return { ...err('not-this-device', `the challenge was not made on device ${request.deviceId} (its device tag is not ${challenge.deviceTag})`), decoded };
    }
    const hostname = (await store.devicesByRecoveryTag(challenge.deviceTag)).find((d) => d.deviceId === request.deviceId)?.hostname ?? '';
    candidates = [{ deviceId: request.deviceId, hostname }];
  } else {
    candidates = (await store.devicesByRecoveryTag(challenge.deviceTag)).slice(0, MAX_MATCHES);
  }

  const matches: RecoveryAnswer['matches'] = [];
  for (const candidate of candidates) {
    const users = (await store.knownUsers(candidate.deviceId, MAX_USERS_PER_DEVICE)).filter((user) => userRecoveryTag(user) === challenge.userTag);
    matches.push({ deviceId: candidate.deviceId, hostname: candidate.hostname, users });
  }

  const target = request.deviceId ?? (matches.length === 1 ? matches[0]!.deviceId : null);
  if (target === null) return ok({ answer: { decoded, matches, response: null }, respondedFor: null, keyEpoch: null });
  const keys = await store.recoveryKeys(target);
  const key = keys === null ? null : keyForDigit(dataKey, target, keys, challenge.keyEpoch);
  if (key === null) return { ...err('no-key', `device ${target} has no recovery key yet (it gets one at its next heartbeat)`), decoded };
  const response = encodeResponse(challenge, hmacWith(key.key));
  return ok({ answer: { decoded, matches, response }, respondedFor: target, keyEpoch: key.epoch });
}

function decodedOf(challenge: RecoveryChallenge, issuedAtMs: number): RecoveryAnswer['decoded'] {
  return {
    action: challenge.action,
    keyEpoch: challenge.keyEpoch,
    issuedAt: new Date(issuedAtMs).toISOString(),
    deviceTag: challenge.deviceTag,
    userTag: challenge.userTag,
  };
}

/**
 * Heartbeat side of the key's life (call after the heartbeat's acks were recorded, so an
 * acknowledged `set-recovery-key` is already current): moves the stored key forward to the agent's
 * epoch, and queues a fresh key (pending, `set-recovery-key`) when the agent asks for rotation, has
 * another epoch than the server had, or the server holds no key for it. A fresh key already pending
 * for exactly the next epoch is not replaced (its command is re-delivered until acknowledged).
 */
export async function syncRecoveryKey(
  { store, dataKey }: RecoveryDeps,
  deviceId: string,
  report: NonNullable<HeartbeatRequest['recovery']>,
  at: string,
): Promise<void> {
  const keys = await store.recoveryKeys(deviceId);
  if (keys === null) return;
  const agentEpoch = report.keyEpoch;
  const { pending, current } = keys;
  // No epoch the server could ever send (z.int() stops at 2^53 - 1): a broken or hostile report.
  if (agentEpoch >= Number.MAX_SAFE_INTEGER - 1) return;
  if (pending !== null && pending.delivered && agentEpoch === pending.epoch && !report.rotationDue) {
    // Only a set-recovery-key puts an agent at the pending epoch without a rotation due: it
    // installed the pending key and its ack was lost (a restart). Take it as acknowledged.
    await store.acknowledgeCommands(deviceId, [{ id: pending.commandId, ok: true, detail: 'installed (epoch reported by heartbeat)' }], at);
    return;
  }
  const storedEpoch = current?.epoch ?? null;
  // An agent at or past the pending key's epoch without acknowledging it: which key it ratcheted
  // from is unknown, so the current key is not moved; the fresh key below settles it.
  const pendingAmbiguous = pending !== null && agentEpoch >= pending.epoch;
  if (current !== null && agentEpoch > current.epoch && agentEpoch - current.epoch <= MAX_HEARTBEAT_RATCHET_STEPS && !pendingAmbiguous) {
    const key = ratchetRecoveryKey(openRecoveryKey(dataKey, deviceId, current), agentEpoch - current.epoch);
    const next = sealRecoveryKey(dataKey, deviceId, agentEpoch, key, at);
    // Lost the race to a concurrent heartbeat: it did the same, and this one changes nothing.
    if (!(await store.advanceRecoveryKey(deviceId, current.epoch, next))) return;
  }
  if (storedEpoch === agentEpoch && !report.rotationDue) return;
  if (pending !== null && pending.epoch === agentEpoch + 1) return;
  const epoch = agentEpoch + 1;
  const { sealed } = newSealedRecoveryKey(dataKey, deviceId, epoch, at);
  await store.setPendingRecoveryKey(deviceId, deviceRecoveryTag(deviceId), sealed, {
    id: newCommandId(),
    deviceId,
    type: 'set-recovery-key',
    // The key itself stays sealed in recovery_keys; delivery puts it into the command.
    params: { epoch },
    createdAt: at,
    createdBy: 'server',
  });
}
