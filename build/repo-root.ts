import fs from 'node:fs';
import path from 'node:path';

/**
 * The checkout's root: the nearest directory above `from` whose package.json is this project's,
 * so a script finds it both as source (`build/…`, under tsx) and built (`dist/build/…`).
 */
export function repoRoot(from: string = import.meta.dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === 'sekimori') return dir;
    if (path.dirname(dir) === dir) throw new Error(`no sekimori checkout above ${from}`);
  }
}
