import type { CommandRunner } from '../../platform/command-runner.js';
import { fail, pass, unknown, type CheckOutcome, type SelfCheck } from '../check.js';

/** One node of `lsblk -J` output (children nested under their parent device). */
interface LsblkNode {
  readonly name: string;
  readonly type: string;
  readonly fstype: string | null;
  readonly mountpoint: string | null;
  readonly children: readonly LsblkNode[];
}

/** Mount points whose file systems hold user data and must be on an encrypted device. */
const DATA_MOUNTS = new Set(['/', '/home', '/var', '/tmp', '/srv', '/opt', '[SWAP]']);

export interface LinuxEncryptionFinding {
  /** Every data mount point found, with the device and whether an ancestor (or itself) is a crypt mapping. */
  readonly mounts: readonly { readonly mountpoint: string; readonly device: string; readonly encrypted: boolean }[];
  readonly rootFound: boolean;
}

/**
 * Reads `lsblk -J -o NAME,TYPE,FSTYPE,MOUNTPOINT` output: for each data mount (`/`, `/home`, swap, …)
 * whether it sits on a `crypt` device (LUKS/dm-crypt opened) or a `crypto_LUKS` container. zram swap
 * is memory, not disk, and is ignored. Throws on output that is not lsblk's JSON.
 */
export function parseLsblk(stdout: string): LinuxEncryptionFinding {
  const json = JSON.parse(stdout) as { blockdevices?: unknown };
  if (!Array.isArray(json.blockdevices)) throw new Error('lsblk output has no blockdevices');
  const mounts: { mountpoint: string; device: string; encrypted: boolean }[] = [];
  const walk = (node: LsblkNode, encryptedAbove: boolean): void => {
    const encrypted = encryptedAbove || node.type === 'crypt' || node.fstype === 'crypto_LUKS';
    if (node.mountpoint !== null && DATA_MOUNTS.has(node.mountpoint) && !node.name.startsWith('zram')) mounts.push({ mountpoint: node.mountpoint, device: node.name, encrypted: node.type === 'crypt' || encryptedAbove });
    for (const child of node.children) walk(child, encrypted);
  };
  for (const device of json.blockdevices) walk(toNode(device), false);
  return { mounts, rootFound: mounts.some((mount) => mount.mountpoint === '/') };
}

function toNode(value: unknown): LsblkNode {
  const record = (value ?? {}) as Record<string, unknown>;
  const text = (key: string): string | null => {
    const value = record[key];
    return typeof value === 'string' ? value : null;
  };
  // lsblk ≥ 2.37 may print `mountpoints: [...]` instead of `mountpoint`.
  const mountpoints = Array.isArray(record.mountpoints) ? record.mountpoints.filter((item): item is string => typeof item === 'string') : [];
  return {
    name: text('name') ?? '?',
    type: text('type') ?? '',
    fstype: text('fstype'),
    mountpoint: text('mountpoint') ?? mountpoints[0] ?? null,
    children: Array.isArray(record.children) ? record.children.map(toNode) : [],
  };
}

/** Names of the open dm-crypt mappings from `dmsetup ls --target crypt` (names only: no table, no key). */
export function parseDmsetupLs(stdout: string): string[] {
  if (/no devices found/i.test(stdout)) return [];
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

export interface BitLockerStatus {
  readonly volume: string;
  /** 0–100, from "Percentage Encrypted" (暗号化された割合). */
  readonly percentEncrypted: number | null;
  /** From "Protection Status" (保護状態): on / off; null when not recognised. */
  readonly protectionOn: boolean | null;
  /** The conversion status text as printed (e.g. `Fully Encrypted`, `完全に暗号化されています`). */
  readonly conversion: string | null;
}

/**
 * Parses `manage-bde -status C:` in English or Japanese. The numbers and on/off words are read, so
 * a fully encrypted, protected volume is recognised in either language; anything not recognised is
 * null (and the check says unknown, never pass).
 */
export function parseManageBde(stdout: string, volume: string): BitLockerStatus {
  let percentEncrypted: number | null = null;
  let protectionOn: boolean | null = null;
  let conversion: string | null = null;
  for (const raw of stdout.split(/\r?\n/)) {
    const match = /^\s*([^:：]+?)\s*[:：]\s*(.*?)\s*$/.exec(raw);
    if (!match) continue;
    const label = match[1] ?? '';
    const value = match[2] ?? '';
    if (/^Percentage Encrypted$/i.test(label) || label === '暗号化された割合') {
      const number = /([0-9]+(?:[.,][0-9]+)?)\s*%/.exec(value);
      if (number) percentEncrypted = Number((number[1] ?? '').replace(',', '.'));
    } else if (/^Protection Status$/i.test(label) || label === '保護状態') {
      if (/Protection On|オン/i.test(value)) protectionOn = true;
      else if (/Protection Off|オフ/i.test(value)) protectionOn = false;
    } else if (/^Conversion Status$/i.test(label) || label === '変換状態') {
      conversion = value.slice(0, 100);
    }
  }
  return { volume, percentEncrypted, protectionOn, conversion };
}

/**
 * `disk-encryption` (seed §6(4): a stolen PC must not give up its data).
 * Linux: every data mount (`/`, `/home`, `/var`, swap …) on a dm-crypt device (`lsblk`), with the open
 * crypt mappings from `dmsetup ls --target crypt` as corroboration. Windows: the system volume fully
 * encrypted and protection on (`manage-bde -status`). Commands run through the `CommandRunner`;
 * a command that fails or output not recognised is `unknown`, never a pass.
 */
export function diskEncryptionCheck(options: { readonly platform: NodeJS.Platform; readonly commands: CommandRunner; readonly systemDrive?: string }): SelfCheck {
  return {
    id: 'disk-encryption',
    async run(): Promise<CheckOutcome> {
      if (options.platform === 'linux') return linuxCheck(options.commands);
      if (options.platform === 'win32') return windowsCheck(options.commands, options.systemDrive ?? 'C:');
      return unknown({ platform: options.platform, detail: 'no disk-encryption reader for this platform' });
    },
  };
}

async function linuxCheck(commands: CommandRunner): Promise<CheckOutcome> {
  const lsblk = await commands.run('lsblk', ['-J', '-o', 'NAME,TYPE,FSTYPE,MOUNTPOINT'], { timeoutMs: 10_000 });
  if (lsblk.code !== 0 || lsblk.error !== undefined) return unknown({ method: 'lsblk', detail: (lsblk.error ?? lsblk.stderr.trim()).slice(0, 200) || `exit ${String(lsblk.code)}` });
  let finding: LinuxEncryptionFinding;
  try {
    finding = parseLsblk(lsblk.stdout);
  } catch (error) {
    return unknown({ method: 'lsblk', detail: `unrecognised lsblk output: ${error instanceof Error ? error.message : String(error)}` });
  }
  const dmsetup = await commands.run('dmsetup', ['ls', '--target', 'crypt'], { timeoutMs: 10_000 });
  const cryptMappings = dmsetup.code === 0 && dmsetup.error === undefined ? parseDmsetupLs(dmsetup.stdout).slice(0, 10) : null;
  const evidence = { method: 'lsblk', mounts: finding.mounts, cryptMappings };
  if (!finding.rootFound) return unknown({ ...evidence, detail: 'the root file system is not on a local block device lsblk shows (container, network root)' });
  const clear = finding.mounts.filter((mount) => !mount.encrypted);
  return clear.length > 0 ? fail({ ...evidence, notEncrypted: clear.map((mount) => mount.mountpoint) }) : pass(evidence);
}

async function windowsCheck(commands: CommandRunner, drive: string): Promise<CheckOutcome> {
  const result = await commands.run('manage-bde.exe', ['-status', drive], { timeoutMs: 30_000 });
  if (result.code !== 0 || result.error !== undefined) return unknown({ method: 'manage-bde', detail: (result.error ?? result.stdout.trim()).slice(0, 200) || `exit ${String(result.code)}` });
  const status = parseManageBde(result.stdout, drive);
  const evidence = { method: 'manage-bde', ...status };
  if (status.percentEncrypted === null || status.protectionOn === null) return unknown({ ...evidence, detail: 'manage-bde output not recognised' });
  return status.percentEncrypted >= 100 && status.protectionOn ? pass(evidence) : fail(evidence);
}
