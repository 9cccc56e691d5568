import type { JournalEntry } from '../../shared/journal.js';
import type { AppendOutcome, Store } from '../store.js';

/** Called with the entries of a batch that were newly stored (never replays), in seq order. */
export type EventsStoredListener = (deviceId: string, entries: readonly JournalEntry[]) => void;

/**
 * The entries of an uploaded batch that `appendEvents` newly stored. The store stores a contiguous
 * run of new entries ending at the new head (`planBatch`: replays are at or below the old head, a
 * break stops the run), so they are the entries with seq in (head − accepted, head]. The first
 * entry of each seq is taken (a batch naming one seq twice has the second refused or replayed).
 */
export function storedEntries(entries: readonly JournalEntry[], outcome: AppendOutcome): JournalEntry[] {
  if (outcome.status === 'unknown-device' || outcome.accepted <= 0) return [];
  const last = outcome.head.seq;
  const first = last - outcome.accepted + 1;
  const bySeq = new Map<number, JournalEntry>();
  for (const entry of entries) {
    if (entry.seq >= first && entry.seq <= last && !bySeq.has(entry.seq)) bySeq.set(entry.seq, entry);
  }
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/**
 * `store` with its `appendEvents` tapped: after a batch commits, `listener` gets the entries it
 * newly stored (accepted batches, and the valid prefix of a batch refused for a chain break).
 * Everything else passes through unchanged, so no route changes: the composition root wraps the
 * store once (`withEventTap(SqliteStore.open(…), listener)`).
 *
 * The listener runs synchronously after the commit and must be quick and non-throwing (the
 * forwarder only enqueues); a throw is caught and reported to `onListenerError` so it can never
 * fail an upload whose events are already stored.
 */
export function withEventTap(store: Store, listener: EventsStoredListener, onListenerError: (error: unknown) => void = () => {}): Store {
  const appendEvents: Store['appendEvents'] = async (deviceId, entries, receivedAt) => {
    const outcome = await store.appendEvents(deviceId, entries, receivedAt);
    try {
      const stored = storedEntries(entries, outcome);
      if (stored.length > 0) listener(deviceId, stored);
    } catch (error) {
      onListenerError(error);
    }
    return outcome;
  };
  return new Proxy(store, {
    get(target, property) {
      if (property === 'appendEvents') return appendEvents;
      const value: unknown = Reflect.get(target, property, target);
      // Methods keep their own `this` (SqliteStore's statements and private state).
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Several listeners as one (forwarder and metrics), each isolated from the others' throws. */
export function fanOut(listeners: readonly EventsStoredListener[], onListenerError: (error: unknown) => void = () => {}): EventsStoredListener {
  return (deviceId, entries) => {
    for (const listener of listeners) {
      try {
        listener(deviceId, entries);
      } catch (error) {
        onListenerError(error);
      }
    }
  };
}
