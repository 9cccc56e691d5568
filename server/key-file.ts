import fs from 'node:fs';
import path from 'node:path';
import { randomHex } from './crypto.js';
import { DataDirError } from './data-dir.js';

/**
 * Creates `DIR/NAME` holding `contents` (mode 0600) unless it exists. Creation is atomic and
 * exclusive: the contents are written to a private temporary file and hard-linked into place, which
 * fails if the file already exists (like O_EXCL: never follows a planted symlink, never overwrites a
 * key), so a concurrent reader (the CLI while the server starts) never sees a half-written file and
 * two processes starting at once end up with one key. `describe` names the file in errors.
 * Throws DataDirError when the file cannot be created.
 */
export function createKeyFileIfAbsent(dir: string, name: string, contents: () => string | Buffer, describe: string): void {
  const file = path.join(dir, name);
  if (fs.existsSync(file)) return;
  const temporary = path.join(dir, `.${name}.${randomHex(8)}.tmp`);
  try {
    const fd = fs.openSync(temporary, 'wx', 0o600);
    try {
      fs.writeFileSync(fd, contents());
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.linkSync(temporary, file);
  } catch (error) {
    // EEXIST: another process (server or CLI) created the key first; use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new DataDirError(`cannot create ${describe} ${file}: ${(error as Error).message}`, { cause: error });
    }
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

/** Reads a key file, tightening a looser mode back to 0600 first. Throws DataDirError. */
export function readKeyFile(dir: string, name: string, describe: string): Buffer {
  const file = path.join(dir, name);
  try {
    if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
    return fs.readFileSync(file);
  } catch (error) {
    throw new DataDirError(`cannot read ${describe} ${file}: ${(error as Error).message}`, { cause: error });
  }
}
