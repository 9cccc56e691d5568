import { execFileSync } from 'node:child_process';

/**
 * Builds dist/ (incremental, so cheap when nothing changed) so process tests run the current code.
 * SEKIMORI_SKIP_BUILD=1 skips it when a caller has just built (or runs only pure unit tests).
 */
export default function setup(): void {
  if (process.env.SEKIMORI_SKIP_BUILD === '1') return;
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
}
