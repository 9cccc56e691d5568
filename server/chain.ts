import { assertNever } from '../shared/result.js';
import { EMPTY_HEAD, checkLink, entryHash, type JournalEntry, type Sha256Hex } from '../shared/journal.js';
import type { ChainHead, ChainRejection, Store } from './store.js';

/**
 * The server's side of the journal hash chain (DESIGN.md §7): which entries of an uploaded batch
 * are new, which are harmless replays, and which break the chain. Pure: the store runs it inside
 * its transaction and supplies the hashes it already holds.
 */

/** What to do with a batch: store `accepted` (in order), acknowledge `head`, record `rejection`. */
export interface BatchPlan {
  readonly accepted: readonly JournalEntry[];
  readonly head: ChainHead;
  /** The first entry that breaks the chain, or null when the whole batch is fine. */
  readonly rejection: ChainRejection | null;
}

/**
 * Plans a batch against the chain whose head is `head`.
 *
 * For each entry, in order:
 * - seq ≤ current head: a replay. It is skipped when it is exactly the entry already held (same
 *   hash, and its content still hashes to that hash); a different hash is a `fork`, a matching hash
 *   over changed content is `bad-hash`.
 * - seq > current head + 1: a `gap` (entries are missing).
 * - otherwise it must link to the head (`bad-prev`) and match its own hash (`bad-hash`).
 *
 * Planning stops at the first break: entries before it that were valid stay in `accepted`. The
 * agent resumes from the acknowledged head, so keeping them loses nothing and lets it prune them;
 * refusing them would make one bad entry hold every good one hostage.
 *
 * @param storedHash the hash the store holds for a seq ≤ `head.seq` (undefined if none).
 */
export function planBatch(
  head: ChainHead,
  entries: readonly JournalEntry[],
  storedHash: (seq: number) => string | undefined,
  sha256: Sha256Hex,
): BatchPlan {
  const accepted: JournalEntry[] = [];
  let current = head;
  const stop = (rejection: ChainRejection): BatchPlan => ({ accepted, head: current, rejection });

  for (const entry of entries) {
    if (entry.seq <= current.seq) {
      // Entries accepted earlier in this batch are not in the store yet.
      const held = entry.seq > head.seq ? accepted[entry.seq - head.seq - 1]?.hash : storedHash(entry.seq);
      if (held !== entry.hash) {
        return stop({
          kind: 'fork',
          seq: entry.seq,
          message: `seq ${entry.seq} differs from the entry the server already holds`,
          detail: { heldHash: held ?? 'none', receivedHash: entry.hash },
        });
      }
      const computed = entryHash(entry, sha256);
      if (computed !== entry.hash) {
        return stop({
          kind: 'bad-hash',
          seq: entry.seq,
          message: `seq ${entry.seq} does not match its hash (content changed)`,
          detail: { receivedHash: entry.hash, computedHash: computed },
        });
      }
      continue;
    }
    if (entry.seq > current.seq + 1) {
      return stop(gap(current, entry));
    }
    const link = checkLink(current, entry, sha256);
    if (!link.ok) {
      switch (link.reason) {
        case 'bad-seq':
          // Unreachable: seq ≤ head and seq > head + 1 were handled above. Kept total for safety.
          return stop(gap(current, entry));
        case 'bad-prev':
          return stop({
            kind: 'bad-prev',
            seq: entry.seq,
            message: link.message,
            detail: { expectedPrev: current.hash, receivedPrev: entry.prev },
          });
        case 'bad-hash':
          return stop({
            kind: 'bad-hash',
            seq: entry.seq,
            message: link.message,
            detail: { receivedHash: entry.hash, computedHash: entryHash(entry, sha256) },
          });
        default:
          return assertNever(link.reason, 'chain break');
      }
    }
    accepted.push(entry);
    current = { seq: link.seq, hash: link.hash };
  }
  return { accepted, head: current, rejection: null };
}

function gap(current: ChainHead, entry: JournalEntry): ChainRejection {
  return {
    kind: 'gap',
    seq: entry.seq,
    message: `expected seq ${current.seq + 1}, found ${entry.seq} (entries missing)`,
    detail: { expectedSeq: current.seq + 1 },
  };
}

/** The result of re-verifying a stored chain from genesis. */
export interface ChainReport {
  /** Entries stored. */
  readonly count: number;
  /** Every stored entry links to the one before it, matches its hash, and the last one is the acknowledged head. */
  readonly verified: boolean;
  /** Where the chain first breaks, or null. */
  readonly firstBadSeq: number | null;
  /** Why, for people (null when verified). */
  readonly reason: string | null;
}

/**
 * Checks a chain one entry at a time from genesis, so a long chain is verified page by page
 * without holding it in memory.
 */
export class ChainVerifier {
  private head: ChainHead = EMPTY_HEAD;
  private count = 0;
  private firstBreak: { seq: number; reason: string } | null = null;

  constructor(private readonly sha256: Sha256Hex) {}

  push(entry: JournalEntry): void {
    this.count += 1;
    const link = checkLink(this.head, entry, this.sha256);
    if (!link.ok && this.firstBreak === null) this.firstBreak = { seq: link.seq, reason: link.message };
    // Continue from the entry as stored, so the count covers the whole chain.
    this.head = { seq: entry.seq, hash: entry.hash };
  }

  /** The report; `acknowledged` is the head the server promised the agent it holds. */
  finish(acknowledged: ChainHead): ChainReport {
    if (this.firstBreak) {
      return { count: this.count, verified: false, firstBadSeq: this.firstBreak.seq, reason: this.firstBreak.reason };
    }
    if (this.head.seq !== acknowledged.seq || this.head.hash !== acknowledged.hash) {
      // Entries were removed from (or added to) the end behind the server's back, or the head
      // entry was replaced: point at the first seq that differs from what was acknowledged.
      const sameLength = this.head.seq === acknowledged.seq;
      return {
        count: this.count,
        verified: false,
        firstBadSeq: sameLength ? this.head.seq : Math.min(this.head.seq, acknowledged.seq) + 1,
        reason: sameLength
          ? `seq ${this.head.seq} is not the entry that was acknowledged`
          : `stored chain ends at seq ${this.head.seq} but seq ${acknowledged.seq} was acknowledged`,
      };
    }
    return { count: this.count, verified: true, firstBadSeq: null, reason: null };
  }
}

/** Entries read per page when re-verifying a stored chain. */
const VERIFY_PAGE_SIZE = 1000;

/** Re-verifies the device's stored chain from genesis. Null for an unknown device. */
export async function verifyStoredChain(store: Store, deviceId: string, sha256: Sha256Hex): Promise<ChainReport | null> {
  const acknowledged = await store.chainHead(deviceId);
  if (!acknowledged) return null;
  const verifier = new ChainVerifier(sha256);
  let after = 0;
  for (;;) {
    const page = await store.eventsAfter(deviceId, after, VERIFY_PAGE_SIZE);
    for (const entry of page) verifier.push(entry);
    const last = page.at(-1);
    if (!last || page.length < VERIFY_PAGE_SIZE) break;
    after = last.seq;
  }
  return verifier.finish(acknowledged);
}
