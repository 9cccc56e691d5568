import type { Policy } from '../../../shared/policy.js';
import type { CommandRunner } from '../../platform/command-runner.js';
import { errorText, fail, pass, unknown, type CheckOutcome, type SelfCheck } from '../check.js';

/** One installed package (Debian) or program (Windows "Programs and Features"). */
export interface InstalledSoftware {
  readonly name: string;
  readonly version: string;
}

/** `dpkg-query` format: status, name, version (dpkg-query expands `\t` and `\n` itself). */
export const DPKG_FORMAT = '${db:Status-Abbrev}\\t${Package}\\t${Version}\\n';

/** Parses `dpkg-query -W -f=DPKG_FORMAT` output: only installed packages (status `ii`). */
export function parseDpkgQuery(stdout: string): InstalledSoftware[] {
  const installed: InstalledSoftware[] = [];
  for (const line of stdout.split('\n')) {
    const [status = '', name = '', version = ''] = line.split('\t');
    if (status.trim() !== 'ii' || name === '') continue;
    installed.push({ name, version });
  }
  return installed;
}

/** Windows: the uninstall entries of both registry views (what "Programs and Features" lists). */
export const WINDOWS_SOFTWARE_SCRIPT =
  "Get-ItemProperty -Path 'HKLM:\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*','HKLM:\\Software\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*' -ErrorAction SilentlyContinue | Where-Object { $_.DisplayName } | Select-Object DisplayName,DisplayVersion | ConvertTo-Json -Compress";

/** Parses `WINDOWS_SOFTWARE_SCRIPT` output (one object or an array). */
export function parseWindowsSoftware(stdout: string): InstalledSoftware[] {
  const text = stdout.trim();
  if (text === '') return [];
  const json = JSON.parse(text) as unknown;
  return (Array.isArray(json) ? json : [json])
    .map((item) => item as Record<string, unknown> | null)
    .filter((record): record is Record<string, unknown> => record !== null && typeof record.DisplayName === 'string')
    .map((record) => ({ name: record.DisplayName as string, version: typeof record.DisplayVersion === 'string' ? record.DisplayVersion : '' }));
}

/** A glob (`*` = any run) as a case-insensitive, whole-name matcher. */
export function globMatcher(pattern: string): (name: string) => boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  const regex = new RegExp(`^${source}$`, 'i');
  return (name) => regex.test(name);
}

/** Installed software judged against the lists: denied (matches `denyList`), unapproved (no `allowList` match). */
export function judgeSoftware(installed: readonly InstalledSoftware[], lists: Policy['software']): { denied: InstalledSoftware[]; unapproved: InstalledSoftware[] } {
  const deny = (lists?.denyList ?? []).map(globMatcher);
  const allow = lists?.allowList === undefined ? null : lists.allowList.map(globMatcher);
  const denied: InstalledSoftware[] = [];
  const unapproved: InstalledSoftware[] = [];
  for (const item of installed) {
    if (deny.some((matches) => matches(item.name))) denied.push(item);
    else if (allow !== null && !allow.some((matches) => matches(item.name))) unapproved.push(item);
  }
  return { denied, unapproved };
}

/**
 * `software-inventory` (無許可ソフトウェアの使用, seed §3(2)): the installed software against the
 * policy's `software.allowList` (globs; every package must match one) and `denyList` (none may match).
 * Debian: `dpkg-query`; Windows: the registry's uninstall entries via PowerShell. Without any list
 * in the policy the check is `unknown` (nothing to judge against), with the inventory's size.
 */
export function softwareInventoryCheck(options: { readonly platform: NodeJS.Platform; readonly commands: CommandRunner; readonly lists: () => Policy['software'] }): SelfCheck {
  return {
    id: 'software-inventory',
    async run(): Promise<CheckOutcome> {
      let method: string;
      let installed: InstalledSoftware[];
      if (options.platform === 'linux') {
        method = 'dpkg-query';
        const result = await options.commands.run('dpkg-query', ['-W', `-f=${DPKG_FORMAT}`], { timeoutMs: 30_000 });
        if (result.code !== 0 || result.error !== undefined) return unknown({ method, detail: (result.error ?? result.stderr.trim()).slice(0, 200) || `exit ${String(result.code)}` });
        installed = parseDpkgQuery(result.stdout);
      } else if (options.platform === 'win32') {
        method = 'uninstall-registry';
        const result = await options.commands.run('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', WINDOWS_SOFTWARE_SCRIPT], { timeoutMs: 60_000 });
        if (result.code !== 0 || result.error !== undefined) return unknown({ method, detail: (result.error ?? result.stderr.trim()).slice(0, 200) });
        try {
          installed = parseWindowsSoftware(result.stdout);
        } catch (error) {
          return unknown({ method, detail: `unrecognised output: ${errorText(error)}` });
        }
      } else {
        return unknown({ platform: options.platform, detail: 'no software inventory for this platform' });
      }
      const lists = options.lists();
      const evidence: Record<string, unknown> = { method, installed: installed.length, allowList: lists?.allowList?.length ?? null, denyList: lists?.denyList?.length ?? null };
      if (lists?.allowList === undefined && lists?.denyList === undefined) return unknown({ ...evidence, detail: 'the policy has no software allow-list or deny-list for this tier' });
      const { denied, unapproved } = judgeSoftware(installed, lists);
      const show = (items: InstalledSoftware[]): string[] => items.slice(0, 20).map((item) => `${item.name} ${item.version}`.trim().slice(0, 80));
      Object.assign(evidence, { deniedCount: denied.length, denied: show(denied), unapprovedCount: unapproved.length, unapproved: show(unapproved) });
      return denied.length > 0 || unapproved.length > 0 ? fail(evidence) : pass(evidence);
    },
  };
}
