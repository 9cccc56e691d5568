import fs from 'node:fs/promises';
import path from 'node:path';
import type { CommandRunner } from '../../platform/command-runner.js';
import { DAY_MS, errorText, fail, pass, unknown, type CheckOutcome, type SelfCheck } from '../check.js';

/** Default: one monthly patch cycle plus a few days. */
export const DEFAULT_MAX_UPDATE_AGE_DAYS = 35;

/**
 * The end of the last apt run that upgraded packages, from `/var/log/apt/history.log` (blocks of
 * `Start-Date:` … `Upgrade:` … `End-Date: 2026-11-20  09:12:33`, local time). Null when the file
 * (rotated monthly) holds no upgrade.
 */
export function lastAptUpgrade(historyLog: string): Date | null {
  let latest: Date | null = null;
  for (const block of historyLog.split(/\n\s*\n/)) {
    if (!/^Upgrade:/m.test(block)) continue;
    const end = /^End-Date:\s*(\d{4})-(\d{2})-(\d{2})\s+(\d{2}):(\d{2}):(\d{2})/m.exec(block) ?? /^Start-Date:\s*(\d{4})-(\d{2})-(\d{2})\s+(\d{2}):(\d{2}):(\d{2})/m.exec(block);
    if (!end) continue;
    const [, y, mo, d, h, mi, s] = end.map(Number) as [number, number, number, number, number, number, number];
    const date = new Date(y, mo - 1, d, h, mi, s);
    if (!latest || date > latest) latest = date;
  }
  return latest;
}

/** One installed Windows update as `Get-HotFix` reports it. */
export interface HotFix {
  readonly id: string;
  readonly description: string;
  readonly installedOn: Date | null;
}

/** The PowerShell the Windows variant runs (dates in the invariant round-trip format: no locale). */
export const HOTFIX_SCRIPT =
  "Get-HotFix | Select-Object HotFixID,Description,@{n='InstalledOn';e={if ($_.InstalledOn) { $_.InstalledOn.ToString('o') } else { $null }}} | ConvertTo-Json -Compress";

/** Parses `HOTFIX_SCRIPT` output (one object or an array; `InstalledOn` ISO or `/Date(ms)/`). */
export function parseHotFixes(stdout: string): HotFix[] {
  const text = stdout.trim();
  if (text === '') return [];
  const json = JSON.parse(text) as unknown;
  const items = Array.isArray(json) ? json : [json];
  return items.map((item) => {
    const record = (item ?? {}) as Record<string, unknown>;
    return {
      id: typeof record.HotFixID === 'string' ? record.HotFixID : '',
      description: typeof record.Description === 'string' ? record.Description : '',
      installedOn: parseDate(record.InstalledOn),
    };
  });
}

function parseDate(value: unknown): Date | null {
  if (typeof value !== 'string' || value === '') return null;
  const legacy = /^\/Date\((-?\d+)\)\/$/.exec(value);
  const ms = legacy ? Number(legacy[1]) : Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms) : null;
}

/**
 * `os-updates` (seed §6(6) 不正プログラム対策): days since updates were last applied ≤ the policy's
 * `selfcheck.maxUpdateAgeDays` (default 35), by the trusted clock.
 * Debian: the last `Upgrade:` in `var/log/apt/history.log` under `rootDir` (else that file's mtime,
 * the last apt action), with `var/lib/apt/periodic/update-success-stamp` (last successful index
 * refresh) as evidence. Windows: the newest `InstalledOn` of `Get-HotFix`.
 */
export function osUpdatesCheck(options: {
  readonly platform: NodeJS.Platform;
  readonly rootDir: string;
  readonly commands: CommandRunner;
  readonly nowMs: () => number;
  readonly maxAgeDays: () => number;
}): SelfCheck {
  return {
    id: 'os-updates',
    async run(): Promise<CheckOutcome> {
      const maxAgeDays = options.maxAgeDays();
      const judge = (last: Date, evidence: Record<string, unknown>): CheckOutcome => {
        const ageDays = Math.floor((options.nowMs() - last.getTime()) / DAY_MS);
        const full = { ...evidence, lastApplied: last.toISOString(), ageDays, maxAgeDays };
        return ageDays <= maxAgeDays ? pass(full) : fail(full);
      };
      if (options.platform === 'win32') {
        const result = await options.commands.run('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', HOTFIX_SCRIPT], { timeoutMs: 60_000 });
        if (result.code !== 0 || result.error !== undefined) return unknown({ method: 'Get-HotFix', detail: (result.error ?? result.stderr.trim()).slice(0, 200) });
        let fixes: HotFix[];
        try {
          fixes = parseHotFixes(result.stdout);
        } catch (error) {
          return unknown({ method: 'Get-HotFix', detail: `unrecognised output: ${errorText(error)}` });
        }
        const dated = fixes.filter((fix) => fix.installedOn !== null).sort((a, b) => b.installedOn!.getTime() - a.installedOn!.getTime());
        const newest = dated[0];
        if (!newest) return unknown({ method: 'Get-HotFix', installed: fixes.length, detail: 'no update with an installation date' });
        return judge(newest.installedOn!, { method: 'Get-HotFix', installed: fixes.length, newest: newest.id });
      }
      if (options.platform !== 'linux') return unknown({ platform: options.platform, detail: 'no update reader for this platform' });
      const historyFile = path.join(options.rootDir, 'var', 'log', 'apt', 'history.log');
      const stampFile = path.join(options.rootDir, 'var', 'lib', 'apt', 'periodic', 'update-success-stamp');
      const [history, historyStat, stampStat] = await Promise.all([
        fs.readFile(historyFile, 'utf8').catch(() => null),
        fs.stat(historyFile).catch(() => null),
        fs.stat(stampFile).catch(() => null),
      ]);
      const evidence: Record<string, unknown> = { method: 'apt', lastIndexRefresh: stampStat ? stampStat.mtime.toISOString() : null };
      const upgrade = history === null ? null : lastAptUpgrade(history);
      if (upgrade) return judge(upgrade, { ...evidence, source: 'history.log Upgrade' });
      if (historyStat) return judge(historyStat.mtime, { ...evidence, source: 'history.log mtime' });
      if (stampStat) return unknown({ ...evidence, detail: 'apt has refreshed its index but no record of applied updates was found' });
      return unknown({ ...evidence, detail: 'no apt history (not a Debian system, or logs removed)' });
    },
  };
}
