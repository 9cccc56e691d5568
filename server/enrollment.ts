import type { EnrollRequest, EnrollResponse } from '../shared/api.js';
import { err, ok, type Result } from '../shared/result.js';
import { newDeviceCredential } from './credentials.js';
import { randomBase64Url, sha256Hex } from './crypto.js';
import type { DataKey } from './data-key.js';
import { deviceRecoveryTag, newSealedRecoveryKey } from './recovery.js';
import type { Store } from './store.js';

/**
 * Enrolment tokens and device credentials (DESIGN.md §7, "Enrolment").
 *
 * Tokens and credentials are 32 random bytes, so a plain SHA-256 is the right way to store them:
 * there is nothing to brute-force that a slow password hash would protect.
 */

/** Default lifetime of an enrolment token: one week, long enough to push an installer to every PC. */
export const DEFAULT_TOKEN_TTL_HOURS = 7 * 24;
/** Longest lifetime a token may be given (a year). */
export const MAX_TOKEN_TTL_HOURS = 366 * 24;

const HOUR_MS = 60 * 60 * 1000;

/**
 * Creates and stores a one-time enrolment token valid for `ttlHours` from `now`, and returns it.
 * The token itself is shown once (to the operator) and kept only as its hash.
 */
export async function issueEnrollmentToken(store: Store, ttlHours: number, now: Date): Promise<string> {
  if (!(ttlHours > 0 && ttlHours <= MAX_TOKEN_TTL_HOURS)) throw new RangeError(`token lifetime ${ttlHours} h out of range`);
  const token = randomBase64Url(32);
  await store.addEnrollmentToken({
    tokenHash: sha256Hex(token),
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlHours * HOUR_MS).toISOString(),
  });
  return token;
}

/**
 * Enrols a device: spends the token and creates a device with a fresh random id (never derived
 * from the hardware id, so cloned PCs become distinct devices) and credential, and hands it the
 * policy-signing public key to pin (`policyPublicKey`, SPKI DER base64) and its first
 * administrator-recovery key (32 random bytes, epoch 0; stored sealed under `dataKey`).
 * Fails with `token-invalid` for an unknown, used or expired token.
 */
export async function enrollDevice(
  store: Store,
  request: EnrollRequest,
  now: Date,
  keys: { readonly policyPublicKey: string; readonly dataKey: DataKey },
): Promise<Result<EnrollResponse, 'token-invalid'>> {
  const { deviceId, credential } = newDeviceCredential();
  const recovery = newSealedRecoveryKey(keys.dataKey, deviceId, 0, now.toISOString());
  const enrolled = await store.enrollDevice(sha256Hex(request.token), {
    id: deviceId,
    hostname: request.host.hostname,
    os: request.host.os,
    arch: request.host.arch,
    hardwareId: request.host.hardwareId,
    agentVersion: request.host.agentVersion,
    credentialHash: sha256Hex(credential),
    enrolledAt: now.toISOString(),
    recoveryTag: deviceRecoveryTag(deviceId),
    recoveryKey: recovery.sealed,
  });
  if (!enrolled) return err('token-invalid', 'enrolment token unknown, already used or expired');
  return ok({
    deviceId,
    credential,
    serverTime: now.toISOString(),
    policyPublicKey: keys.policyPublicKey,
    recoveryKey: recovery.key.toString('base64'),
    recoveryKeyEpoch: recovery.sealed.epoch,
  });
}
