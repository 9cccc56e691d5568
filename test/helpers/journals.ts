import { afterEach } from 'vitest';
import { Journal } from '../../agent/journal/journal.js';

/** Opens journals for a test and closes them after it (no file handle outlives its test). Call at module level. */
export function useJournals(): (file: string) => Promise<{ journal: Journal }> {
  const open: Journal[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((journal) => journal.close()));
  });
  return async (file) => {
    const { journal } = await Journal.open(file);
    open.push(journal);
    return { journal };
  };
}
