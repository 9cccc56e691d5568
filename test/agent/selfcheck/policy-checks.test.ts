import fs from 'node:fs/promises';
import path from 'node:path';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../../../agent/journal/journal.js';
import { PolicySource } from '../../../agent/policy-source.js';
import { builtInPolicy, builtInPolicyDocument } from '../../../agent/policy/profiles.js';
import { deviceControlCheck, exceptionsCheck, idleLockCheck, policyCurrentCheck } from '../../../agent/selfcheck/checks/policy-checks.js';
import { validatePolicy, type Policy, type ValidatedPolicy } from '../../../shared/policy.js';
import { FakeSysfs } from '../../fakes/fake-sysfs.js';
import { policySigningKey } from '../../helpers/policy-signing.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();
const silent = winston.createLogger({ silent: true });
const journals: Journal[] = [];
const trees: FakeSysfs[] = [];
afterEach(async () => {
  for (const journal of journals.splice(0)) await journal.close();
  for (const tree of trees.splice(0)) await tree.dispose();
});

function validated(document: Policy): ValidatedPolicy {
  const result = validatePolicy(document);
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

async function source(): Promise<{ policies: PolicySource; file: string; signer: ReturnType<typeof policySigningKey> }> {
  const dir = await tempDir();
  const { journal } = await Journal.open(path.join(dir, 'journal.jsonl'));
  journals.push(journal);
  const signer = policySigningKey();
  const file = path.join(dir, 'policy.json');
  return { policies: new PolicySource(file, 'mynumber', () => signer.publicKey, journal, silent), file, signer };
}

describe('policy-current', () => {
  it('passes a signed policy whose file re-verifies against the pinned key', async () => {
    const { policies, file, signer } = await source();
    await fs.writeFile(file, JSON.stringify(signer.sign({ ...builtInPolicyDocument('mynumber'), version: 7, issuedAt: '2026-11-25T09:00:00+09:00' })));
    await policies.refresh();
    const outcome = await policyCurrentCheck({ policies, hasServer: () => true }).run();
    expect(outcome).toMatchObject({ result: 'pass', evidence: { origin: 'signed', version: 7, signatureValid: true } });
  });

  it('fails when the policy file on disk was changed after it was applied (signature no longer verifies)', async () => {
    const { policies, file, signer } = await source();
    const signed = signer.sign({ ...builtInPolicyDocument('mynumber'), version: 7 });
    await fs.writeFile(file, JSON.stringify(signed));
    await policies.refresh();
    await fs.writeFile(file, JSON.stringify({ ...signed, payload: signed.payload.replace('"enforce"', '"audit"') }));
    const outcome = await policyCurrentCheck({ policies, hasServer: () => true }).run();
    expect(outcome).toMatchObject({ result: 'fail', evidence: { signatureValid: false, reason: 'policy signature does not verify' } });
  });

  it('fails when a later policy from the server was refused (the terminal keeps an older one)', async () => {
    const { policies, file, signer } = await source();
    await fs.writeFile(file, JSON.stringify(signer.sign({ ...builtInPolicyDocument('mynumber'), version: 7 })));
    await policies.refresh();
    await policies.offer(policySigningKey().sign({ ...builtInPolicyDocument('mynumber'), version: 8 }));
    const outcome = await policyCurrentCheck({ policies, hasServer: () => true }).run();
    expect(outcome.result).toBe('fail');
    expect(outcome.evidence).toMatchObject({ lastRejected: { afterApplied: true } });
  });

  it('fails with the built-in profile on a terminal that reports to a server; unknown without a server', async () => {
    const { policies } = await source();
    expect((await policyCurrentCheck({ policies, hasServer: () => true }).run()).result).toBe('fail');
    expect((await policyCurrentCheck({ policies, hasServer: () => false }).run()).result).toBe('unknown');
  });
});

describe('device-control', () => {
  it('passes when enforced and every root hub of the sysfs tree is default-deny', async () => {
    const sysfs = await FakeSysfs.create([{ bus: 1, authorizedDefault: 0 }, { bus: 2, superSpeed: true, authorizedDefault: 0 }]);
    trees.push(sysfs);
    const outcome = await deviceControlCheck({ enforcement: () => ({ state: 'enforced', verifiedOnRealOs: true }), platform: 'linux', sysfsRoot: sysfs.root }).run();
    expect(outcome).toMatchObject({ result: 'pass', evidence: { state: 'enforced', rootHubs: 2 } });
  });

  it('fails when a root hub lets new devices in (authorized_default is not 0)', async () => {
    const sysfs = await FakeSysfs.create([{ bus: 1, authorizedDefault: 0 }, { bus: 2, authorizedDefault: 1 }]);
    trees.push(sysfs);
    const outcome = await deviceControlCheck({ enforcement: () => ({ state: 'enforced' }), platform: 'linux', sysfsRoot: sysfs.root }).run();
    expect(outcome).toMatchObject({ result: 'fail', evidence: { notDefaultDeny: [{ hub: 'usb2', authorizedDefault: '1' }] } });
  });

  it('fails in audit mode and when unenforced, with the reason', async () => {
    const audit = await deviceControlCheck({ enforcement: () => ({ state: 'audit' }), platform: 'linux', sysfsRoot: '/nonexistent' }).run();
    expect(audit.result).toBe('fail');
    const unenforced = await deviceControlCheck({ enforcement: () => ({ state: 'unenforced', reason: 'not-root' }), platform: 'linux', sysfsRoot: '/nonexistent' }).run();
    expect(unenforced).toMatchObject({ result: 'fail', evidence: { reason: 'not-root' } });
  });

  it('is unknown when the root hubs cannot be listed', async () => {
    expect((await deviceControlCheck({ enforcement: () => ({ state: 'enforced' }), platform: 'linux', sysfsRoot: path.join(await tempDir(), 'missing') }).run()).result).toBe('unknown');
  });
});

describe('exceptions', () => {
  const withExceptions = (until: string[]): ValidatedPolicy =>
    validated({
      ...builtInPolicyDocument('lgwan'),
      version: 3,
      exceptions: until.map((time, index) => ({ id: `req-${index + 1}`, device: 'id 0930:6545 serial "A1"', until: time, access: 'read-write' as const })),
    });

  it('lists active exceptions with their expiry and passes', async () => {
    const policy = withExceptions(['2026-11-26T17:00:00+09:00']);
    const outcome = await exceptionsCheck({ policy: () => policy, nowMs: () => Date.parse('2026-11-25T09:00:00+09:00') }).run();
    expect(outcome).toMatchObject({ result: 'pass', evidence: { count: 1, active: [{ id: 'req-1', until: '2026-11-26T17:00:00+09:00', access: 'read-write' }], expiredStillListed: [] } });
  });

  it('fails when an expired exception is still listed (at the instant of until it has ended)', async () => {
    const policy = withExceptions(['2026-11-26T17:00:00+09:00', '2026-11-25T09:00:00+09:00']);
    const outcome = await exceptionsCheck({ policy: () => policy, nowMs: () => Date.parse('2026-11-25T09:00:00+09:00') }).run();
    expect(outcome).toMatchObject({ result: 'fail', evidence: { expiredStillListed: [{ id: 'req-2' }] } });
  });
});

describe('idle-lock', () => {
  const lock = (idleSeconds: number): ValidatedPolicy => validated({ ...builtInPolicyDocument('mynumber'), lock: { ...builtInPolicyDocument('mynumber').lock, idleSeconds } });

  it('passes within the tier maximum (5 min on the My Number tier) and fails above it or when off', async () => {
    expect(await idleLockCheck({ policy: () => builtInPolicy('mynumber'), tier: 'mynumber' }).run()).toMatchObject({ result: 'pass', evidence: { idleSeconds: 300, maxSeconds: 300 } });
    expect((await idleLockCheck({ policy: () => lock(600), tier: 'mynumber' }).run()).result).toBe('fail');
    expect((await idleLockCheck({ policy: () => lock(0), tier: 'mynumber' }).run()).result).toBe('fail');
    expect((await idleLockCheck({ policy: () => lock(600), tier: 'lgwan' }).run()).result).toBe('pass');
  });
});
