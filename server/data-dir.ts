import fs from 'node:fs';
import path from 'node:path';
import { randomBase64Url } from './crypto.js';

/**
 * The server's data directory: `sekimori.db` (with its WAL files) and `admin-token`. It holds every
 * device's credential hash and the audit journal, so it is private to the service account.
 */

/** The admin API's bearer token, inside the data directory. */
export const ADMIN_TOKEN_FILE = 'admin-token';

/** Expected problems with the data directory (exists as a file, no permission, malformed admin token). */
export class DataDirError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataDirError';
  }
}

/**
 * Creates `dir` (and missing parents) with mode 0700 when it does not exist. An existing directory
 * is left as the operator made it: it may be a mount point whose mode is theirs to choose.
 */
export function prepareDataDir(dir: string): void {
  try {
    const created = fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // mkdir's mode is filtered by the umask; say it again so 0700 holds whatever the umask.
    if (created !== undefined) fs.chmodSync(dir, 0o700);
    if (!fs.statSync(dir).isDirectory()) throw new DataDirError(`data directory ${dir} is not a directory`);
  } catch (error) {
    if (error instanceof DataDirError) throw error;
    throw new DataDirError(`cannot use data directory ${dir}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Reads the admin token from `DIR/admin-token`, creating it (32 random bytes, base64url, mode 0600)
 * at first start. A file readable by others is tightened back to 0600.
 */
export function loadOrCreateAdminToken(dir: string): { token: string; file: string } {
  const file = path.join(dir, ADMIN_TOKEN_FILE);
  try {
    const token = randomBase64Url(32);
    // 'wx' = O_CREAT|O_EXCL: never follows a planted symlink, never overwrites an existing token.
    fs.writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return { token, file };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new DataDirError(`cannot create admin token ${file}: ${(error as Error).message}`, { cause: error });
    }
  }
  try {
    if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
    const token = fs.readFileSync(file, 'utf8').trim();
    if (!/^[\x21-\x7e]{32,512}$/.test(token)) {
      throw new DataDirError(`admin token ${file} is malformed (expected one line of at least 32 printable characters)`);
    }
    return { token, file };
  } catch (error) {
    if (error instanceof DataDirError) throw error;
    throw new DataDirError(`cannot read admin token ${file}: ${(error as Error).message}`, { cause: error });
  }
}
