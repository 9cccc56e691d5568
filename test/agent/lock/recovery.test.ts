import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LOCK_RECOVERY_FILE, MAX_RESPONSE_ATTEMPTS, RecoveryVerifier, hmacWith, rotateRecoveryKey } from '../../../agent/lock/recovery.js';
import { sha256Hex } from '../../../agent/crypto.js';
import { decodeChallenge, encodeResponse, recoveryTags } from '../../../shared/lock.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();
const DEVICE = 'dev_0123456789abcdef0123456789abcdef';
const KEY = new Uint8Array(crypto.randomBytes(32));
const T0 = 1_700_000_000_000;

/** What the server does: decode the typed challenge, answer with the device key of that epoch. */
function serverRespond(challengeCode: string, key: Uint8Array): string {
  const decoded = decodeChallenge(challengeCode);
  if (!decoded.ok) throw new Error(decoded.error.message);
  return encodeResponse(decoded.value, hmacWith(key));
}

async function verifierWithKey(dir: string): Promise<RecoveryVerifier> {
  const verifier = await RecoveryVerifier.open(dir, DEVICE);
  await verifier.setKey(KEY, 0);
  return verifier;
}

describe('administrator recovery', () => {
  it('encodes device, user, action and epoch in the challenge the dashboard decodes', async () => {
    const verifier = await verifierWithKey(await tempDir());
    const issued = await verifier.issueChallenge('tanaka', 'unlock', T0);
    if (!issued.ok) throw new Error('issue');
    const decoded = decodeChallenge(issued.value.code);
    expect(decoded).toMatchObject({ ok: true, value: { action: 'unlock', keyEpoch: 0, ...recoveryTags(DEVICE, 'tanaka', sha256Hex) } });
  });

  it('accepts the right response once, then rotates the key so neither the response nor the old key works again', async () => {
    const dir = await tempDir();
    const verifier = await verifierWithKey(dir);
    const issued = await verifier.issueChallenge('tanaka', 'unlock', T0);
    if (!issued.ok) throw new Error('issue');
    const response = serverRespond(issued.value.code, KEY);
    expect(await verifier.verifyResponse(response, T0 + 60_000)).toEqual({ ok: true, value: { user: 'tanaka', action: 'unlock' } });
    expect(verifier.keyEpoch).toBe(1);
    expect(verifier.rotationDue).toBe(true);
    expect(await verifier.verifyResponse(response, T0 + 61_000)).toMatchObject({ ok: false, error: { code: 'no-challenge' } });
    const next = await verifier.issueChallenge('tanaka', 'unlock', T0 + 120_000);
    if (!next.ok) throw new Error('issue');
    expect(decodeChallenge(next.value.code)).toMatchObject({ ok: true, value: { keyEpoch: 1 } });
    expect(await verifier.verifyResponse(serverRespond(next.value.code, KEY), T0 + 121_000)).toMatchObject({ ok: false, error: { code: 'wrong-response' } });
    expect((await verifier.verifyResponse(serverRespond(next.value.code, rotateRecoveryKey(KEY)), T0 + 122_000)).ok).toBe(true);
  });

  it('keeps the once-only rule across a restart', async () => {
    const dir = await tempDir();
    const verifier = await verifierWithKey(dir);
    const issued = await verifier.issueChallenge('tanaka', 'reset-lockout', T0);
    if (!issued.ok) throw new Error('issue');
    const response = serverRespond(issued.value.code, KEY);
    const restarted = await RecoveryVerifier.open(dir, DEVICE);
    expect(restarted.pendingChallenge()?.code).toBe(issued.value.code);
    expect((await restarted.verifyResponse(response, T0 + 1_000)).ok).toBe(true);
    const again = await RecoveryVerifier.open(dir, DEVICE);
    expect(await again.verifyResponse(response, T0 + 2_000)).toMatchObject({ ok: false, error: { code: 'no-challenge' } });
    expect((await fs.stat(path.join(dir, LOCK_RECOVERY_FILE))).mode & 0o777).toBe(0o600);
    expect(await again.checkMode()).toBe(true);
  });

  it('refuses a response after 15 minutes, and when the clock went backwards', async () => {
    const verifier = await verifierWithKey(await tempDir());
    let issued = await verifier.issueChallenge('tanaka', 'unlock', T0);
    if (!issued.ok) throw new Error('issue');
    expect(await verifier.verifyResponse(serverRespond(issued.value.code, KEY), T0 + 15 * 60_000 + 1)).toMatchObject({ ok: false, error: { code: 'expired' } });
    issued = await verifier.issueChallenge('tanaka', 'unlock', T0);
    if (!issued.ok) throw new Error('issue');
    expect(await verifier.verifyResponse(serverRespond(issued.value.code, KEY), T0 - 1)).toMatchObject({ ok: false, error: { code: 'expired' } });
  });

  it('only accepts the response for the challenge on screen', async () => {
    const verifier = await verifierWithKey(await tempDir());
    const old = await verifier.issueChallenge('tanaka', 'unlock', T0);
    await verifier.issueChallenge('tanaka', 'unlock', T0 + 1_000);
    if (!old.ok) throw new Error('issue');
    expect(await verifier.verifyResponse(serverRespond(old.value.code, KEY), T0 + 2_000)).toMatchObject({ ok: false, error: { code: 'wrong-response' } });
  });

  it('names the mistyped group without counting an attempt, and discards the challenge after too many wrong responses', async () => {
    const verifier = await verifierWithKey(await tempDir());
    const issued = await verifier.issueChallenge('tanaka', 'unlock', T0);
    if (!issued.ok) throw new Error('issue');
    const response = serverRespond(issued.value.code, KEY);
    const groups = response.split('-');
    groups[1] = groups[1]!.slice(0, 4) + String((Number(groups[1]![4]) + 1) % 10);
    const typo = await verifier.verifyResponse(groups.join('-'), T0 + 1_000);
    expect(typo).toMatchObject({ ok: false, error: { code: 'check-digit' }, groups: [2] });
    // Wrong responses with valid check digits: a guess.
    const wrong = serverRespond(issued.value.code, new Uint8Array(32));
    for (let i = 1; i < MAX_RESPONSE_ATTEMPTS; i++) expect(await verifier.verifyResponse(wrong, T0 + 1_000)).toMatchObject({ ok: false, error: { code: 'wrong-response' } });
    expect(await verifier.verifyResponse(wrong, T0 + 1_000)).toMatchObject({ ok: false, error: { code: 'too-many-attempts' } });
    expect(await verifier.verifyResponse(response, T0 + 1_000)).toMatchObject({ ok: false, error: { code: 'no-challenge' } });
  });

  it('has no challenge to give before the server delivered a key', async () => {
    const verifier = await RecoveryVerifier.open(await tempDir(), DEVICE);
    expect(await verifier.issueChallenge('tanaka', 'unlock', T0)).toMatchObject({ ok: false, error: { code: 'no-key' } });
    expect(await verifier.verifyResponse('12345-12345-12345', T0)).toMatchObject({ ok: false, error: { code: 'no-challenge' } });
  });

  it('never throws and never accepts arbitrary or corrupted responses (fuzz)', async () => {
    const verifier = await verifierWithKey(await tempDir());
    const issued = await verifier.issueChallenge('tanaka', 'unlock', T0);
    if (!issued.ok) throw new Error('issue');
    const right = serverRespond(issued.value.code, KEY);
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.stringMatching(/^\d{5}-\d{5}-\d{5}$/), fc.anything()), async (input) => {
        fc.pre(input !== right);
        const result = await verifier.verifyResponse(input, T0 + 1_000);
        expect(result.ok).toBe(false);
        if (!result.ok && result.error.code === 'too-many-attempts') await verifier.issueChallenge('tanaka', 'unlock', T0);
      }),
      { numRuns: 300 },
    );
  });
});
