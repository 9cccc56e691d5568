import { randomBytes } from 'node:crypto';
import { z } from 'zod';
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
 *
 * A token may enrol up to `uses` devices (default 1): for a mass rollout one installer config with
 * one token goes to every PC. Each device records the token's id (`enr_…`), never the token. The
 * trade-off: a leaked multi-use token enrols devices until it is used up, expires or is revoked.
 */

/** Default lifetime of an enrolment token: one week, long enough to push an installer to every PC. */
export const DEFAULT_TOKEN_TTL_HOURS = 7 * 24;
/** Longest lifetime a token may be given (a year). */
export const MAX_TOKEN_TTL_HOURS = 366 * 24;
/** Devices one token enrols unless told otherwise. */
export const DEFAULT_TOKEN_USES = 1;
/** Most devices one token may enrol: a large municipality's PCs, not an open door. */
export const MAX_TOKEN_USES = 10_000;

/** A token's id: `enr_` + 24 hex digits (random; names the token in lists, the trail and on devices). */
export const EnrollmentTokenIdSchema = z.string().regex(/^enr_[0-9a-f]{24}$/, 'an enrolment token id (enr_ followed by 24 hex digits)');

const HOUR_MS = 60 * 60 * 1000;

/** A token just created: `token` is shown once to whoever asked for it and stored only as its hash. */
export interface IssuedEnrollmentToken {
  readonly id: string;
  readonly token: string;
  readonly uses: number;
  readonly createdAt: string;
  readonly expiresAt: string;
}

export function newEnrollmentTokenId(): string {
  return `enr_${randomBytes(12).toString('hex')}`;
}

/** Checks a token's lifetime and uses; throws RangeError (callers validate their input first). */
export function checkTokenLimits(ttlHours: number, uses: number): void {
  if (!(ttlHours > 0 && ttlHours <= MAX_TOKEN_TTL_HOURS)) throw new RangeError(`token lifetime ${ttlHours} h out of range`);
  if (!(Number.isSafeInteger(uses) && uses >= 1 && uses <= MAX_TOKEN_USES)) throw new RangeError(`token uses ${uses} out of range (1-${MAX_TOKEN_USES})`);
}

/**
 * Creates and stores an enrolment token for `uses` devices (default 1), valid for `ttlHours` from
 * `now`. The token itself is in the answer only; the store keeps its hash.
 */
export async function createEnrollmentToken(
  store: Store,
  request: { readonly ttlHours: number; readonly uses?: number; readonly now: Date; readonly createdBy: string },
): Promise<IssuedEnrollmentToken> {
  const uses = request.uses ?? DEFAULT_TOKEN_USES;
  checkTokenLimits(request.ttlHours, uses);
  const token = randomBase64Url(32);
  const issued = {
    id: newEnrollmentTokenId(),
    token,
    uses,
    createdAt: request.now.toISOString(),
    expiresAt: new Date(request.now.getTime() + request.ttlHours * HOUR_MS).toISOString(),
  };
  await store.addEnrollmentToken({
    id: issued.id,
    tokenHash: sha256Hex(token),
    createdAt: issued.createdAt,
    expiresAt: issued.expiresAt,
    maxUses: uses,
    createdBy: request.createdBy,
  });
  return issued;
}

/** `createEnrollmentToken` by the command line, returning the token only. */
export async function issueEnrollmentToken(store: Store, ttlHours: number, now: Date, uses: number = DEFAULT_TOKEN_USES): Promise<string> {
  return (await createEnrollmentToken(store, { ttlHours, uses, now, createdBy: 'cli' })).token;
}

/**
 * Enrols a device: spends one use of the token and creates a device with a fresh random id (never derived
 * from the hardware id, so cloned PCs become distinct devices) and credential, and hands it the
 * policy-signing public key to pin (`policyPublicKey`, SPKI DER base64) and its first
 * administrator-recovery key (32 random bytes, epoch 0; stored sealed under `dataKey`).
 * Fails with `token-invalid` for an unknown, used up, expired or revoked token.
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
  if (!enrolled) return err('token-invalid', 'enrolment token unknown, used up, expired or revoked');
  return ok({
    deviceId,
    credential,
    serverTime: now.toISOString(),
    policyPublicKey: keys.policyPublicKey,
    recoveryKey: recovery.key.toString('base64'),
    recoveryKeyEpoch: recovery.sealed.epoch,
  });
}
