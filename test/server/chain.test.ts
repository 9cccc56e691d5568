import { describe, expect, it } from 'vitest';
import { EMPTY_HEAD } from '../../shared/journal.js';
import { ChainVerifier, planBatch } from '../../server/chain.js';
import { sha256Hex } from '../../server/crypto.js';
import { journal, rehashed } from './helpers.js';

describe('planBatch', () => {
  const nothingStored = (): undefined => undefined;

  it('accepts a batch that starts the chain at seq 1', () => {
    const chain = journal(3);
    expect(planBatch(EMPTY_HEAD, chain, nothingStored, sha256Hex)).toEqual({
      accepted: chain,
      head: { seq: 3, hash: chain[2]!.hash },
      rejection: null,
    });
  });

  it('skips an entry repeated within the same batch', () => {
    const chain = journal(2);
    const plan = planBatch(EMPTY_HEAD, [chain[0]!, chain[1]!, chain[0]!], nothingStored, sha256Hex);
    expect(plan.accepted).toEqual(chain);
    expect(plan.rejection).toBeNull();
  });

  it('sees a fork against an entry accepted earlier in the same batch', () => {
    const chain = journal(2);
    const plan = planBatch(EMPTY_HEAD, [...chain, rehashed(chain[0]!, { type: 'operator.marker' })], nothingStored, sha256Hex);
    expect(plan.accepted).toEqual(chain);
    expect(plan.rejection).toMatchObject({ kind: 'fork', seq: 1 });
  });

  it('treats a replay of a seq the store no longer has as a fork, not a match', () => {
    const chain = journal(2);
    const plan = planBatch({ seq: 2, hash: chain[1]!.hash }, [chain[0]!], nothingStored, sha256Hex);
    expect(plan.rejection).toMatchObject({ kind: 'fork', seq: 1, detail: { heldHash: 'none' } });
  });

  it('stops at the first break and keeps the head of the entries before it', () => {
    const chain = journal(4);
    const plan = planBatch(EMPTY_HEAD, [chain[0]!, chain[1]!, chain[3]!], nothingStored, sha256Hex);
    expect(plan.accepted).toEqual(chain.slice(0, 2));
    expect(plan.head).toEqual({ seq: 2, hash: chain[1]!.hash });
    expect(plan.rejection).toMatchObject({ kind: 'gap', seq: 4, detail: { expectedSeq: 3 } });
  });
});

describe('ChainVerifier', () => {
  it('verifies an intact chain up to the acknowledged head', () => {
    const chain = journal(5);
    const verifier = new ChainVerifier(sha256Hex);
    chain.forEach((entry) => verifier.push(entry));
    expect(verifier.finish({ seq: 5, hash: chain[4]!.hash })).toEqual({ count: 5, verified: true, firstBadSeq: null, reason: null });
  });

  it('points at the first entry whose content no longer matches its hash', () => {
    const chain = journal(5);
    const verifier = new ChainVerifier(sha256Hex);
    chain.forEach((entry, i) => verifier.push(i === 1 ? { ...entry, tz: '+00:00' } : entry));
    expect(verifier.finish({ seq: 5, hash: chain[4]!.hash })).toMatchObject({ count: 5, verified: false, firstBadSeq: 2 });
  });

  it('points at a missing entry in the middle', () => {
    const chain = journal(5);
    const verifier = new ChainVerifier(sha256Hex);
    chain.filter((entry) => entry.seq !== 3).forEach((entry) => verifier.push(entry));
    expect(verifier.finish({ seq: 5, hash: chain[4]!.hash })).toMatchObject({ count: 4, verified: false, firstBadSeq: 4 });
  });

  it('finds a last entry replaced by a different valid one', () => {
    const chain = journal(3);
    const verifier = new ChainVerifier(sha256Hex);
    [chain[0]!, chain[1]!, rehashed(chain[2]!, { type: 'operator.marker' })].forEach((entry) => verifier.push(entry));
    expect(verifier.finish({ seq: 3, hash: chain[2]!.hash })).toMatchObject({ verified: false, firstBadSeq: 3 });
  });
});
