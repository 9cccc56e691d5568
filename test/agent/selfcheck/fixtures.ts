import fs from 'node:fs';
import path from 'node:path';

/** A file of `test/fixtures/selfcheck/` as text. */
export function fixture(name: string): string {
  return fs.readFileSync(path.resolve(import.meta.dirname, '../../fixtures/selfcheck', name), 'utf8');
}
