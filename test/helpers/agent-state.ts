import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach } from 'vitest';
import type { JournalEntry } from '../../shared/journal.js';
import { FakeSysfs, type FakeBusOptions } from '../fakes/fake-sysfs.js';

/** Every entry of the agent's journal in `stateDir`, parsed. */
export async function readJournal(stateDir: string): Promise<JournalEntry[]> {
  return (await fs.readFile(path.join(stateDir, 'journal.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as JournalEntry);
}

/**
 * A kernel-shaped sysfs tree whose fake kernel reacts to writes in the background (as the agent,
 * a separate process, writes them), stopped and removed after the test. Call at module level.
 */
export function useFakeKernel(): (buses?: FakeBusOptions[]) => Promise<FakeSysfs> {
  const live: { sysfs: FakeSysfs; kernel: { stop(): Promise<void> } }[] = [];
  afterEach(async () => {
    for (const { sysfs, kernel } of live.splice(0)) {
      await kernel.stop();
      await sysfs.dispose();
    }
  });
  return async (buses = [{ bus: 1 }]) => {
    const sysfs = await FakeSysfs.create(buses);
    live.push({ sysfs, kernel: sysfs.runKernel(5) });
    return sysfs;
  };
}

/**
 * The device's `authorized` value. A file-backed fake can be read between the writer's truncate and
 * its write (real sysfs attributes cannot), so an empty read is retried briefly.
 */
export async function authorizedOf(sysfs: FakeSysfs, device: string): Promise<string> {
  for (let attempt = 0; ; attempt += 1) {
    const value = (await sysfs.attribute(device, 'authorized')).trim();
    if (value !== '' || attempt >= 50) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
