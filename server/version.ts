import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The product's package name, used to recognise its package.json. */
const PACKAGE_NAME = 'sekimori';

/**
 * The server's version, from the product's package.json. Found by walking up from this module,
 * because the module runs both from `server/` (tests) and from `dist/server/` (installed): one
 * source of truth instead of a constant to keep in step. Falls back to `0.0.0-unknown` rather than
 * failing to start over a missing file.
 */
export function serverVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 4; depth += 1) {
    const candidate = readPackageVersion(path.join(dir, 'package.json'));
    if (candidate !== null) return candidate;
    dir = path.dirname(dir);
  }
  return '0.0.0-unknown';
}

function readPackageVersion(file: string): string | null {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
    return parsed.name === PACKAGE_NAME && typeof parsed.version === 'string' ? parsed.version : null;
  } catch {
    return null;
  }
}
