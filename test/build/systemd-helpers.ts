import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

/** Helpers for the systemd unit tests (systemd-unit.test.ts, deb-package.test.ts). */

const run = promisify(execFile);

export const hasSystemdAnalyze = ((): boolean => {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** The unit as section → [key, value, explained][] (explained: a comment in the same paragraph above it). */
export function parseUnit(text: string): Map<string, [string, string, boolean][]> {
  const sections = new Map<string, [string, string, boolean][]>();
  let section = '';
  let commented = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') {
      commented = false;
    } else if (line.startsWith('#') || line.startsWith(';')) {
      commented = true;
    } else if (/^\[.+\]$/.test(line)) {
      section = line.slice(1, -1);
      sections.set(section, []);
      commented = false;
    } else {
      const at = line.indexOf('=');
      sections.get(section)!.push([line.slice(0, at), line.slice(at + 1), commented]);
    }
  }
  return sections;
}

/**
 * Runs `systemd-analyze verify` on `unitFile` inside a scratch root that holds the host's own unit
 * files (targets the unit refers to), plus `extraFiles`. Returns what it printed: systemd reports
 * problems on stderr and still exits 0 for most of them, so any output is a finding.
 */
export async function verifyUnit(scratch: string, unitFile: string): Promise<string> {
  const units = path.join(scratch, 'lib/systemd/system');
  await fs.mkdir(units, { recursive: true });
  await fs.cp('/lib/systemd/system', units, { recursive: true, verbatimSymlinks: true, force: false, errorOnExist: false });
  const target = path.join(units, 'sekimori-agent.service');
  if (path.resolve(unitFile) !== target) await fs.copyFile(unitFile, target);
  const result = await run('systemd-analyze', ['verify', '--man=no', `--root=${scratch}`, '/lib/systemd/system/sekimori-agent.service'], {
    env: { ...process.env, SYSTEMD_LOG_TARGET: 'console', SYSTEMD_LOG_COLOR: '0' },
  }).catch((error: { stdout: string; stderr: string; code: number }) => ({ stdout: error.stdout, stderr: `${error.stderr}(exit ${error.code})` }));
  return `${result.stdout}${result.stderr}`.trim();
}

