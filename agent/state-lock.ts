import fs from 'node:fs/promises';

/**
 * One writer per state directory: the running agent, or a CLI command appending while no agent
 * runs. The lock is a file created exclusively (O_EXCL) that holds the owner's pid; a lock whose
 * pid is no longer alive (the owner was SIGKILLed or the machine lost power) is stale and taken over.
 */
export class StateLock {
  private constructor(private readonly file: string) {}

  /** Takes the lock, or returns the pid of the live process holding it. */
  static async acquire(file: string): Promise<{ ok: true; lock: StateLock } | { ok: false; heldBy: number }> {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        const handle = await fs.open(file, 'wx', 0o600);
        await handle.writeFile(`${process.pid}\n`);
        await handle.close();
        return { ok: true, lock: new StateLock(file) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = await readHolder(file);
      if (holder !== null && holder !== process.pid && isAlive(holder)) return { ok: false, heldBy: holder };
      // Stale (dead owner, or an empty file from a crash between create and write): remove and retry.
      await fs.rm(file, { force: true });
    }
    throw new Error(`could not take the state lock ${file}`);
  }

  /** Pid of the live process holding the lock at `file`, or null. */
  static async holder(file: string): Promise<number | null> {
    const pid = await readHolder(file);
    return pid !== null && isAlive(pid) ? pid : null;
  }

  async release(): Promise<void> {
    const holder = await readHolder(this.file);
    if (holder === process.pid) await fs.rm(this.file, { force: true });
  }
}

async function readHolder(file: string): Promise<number | null> {
  try {
    const pid = Number.parseInt(await fs.readFile(file, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else — alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
