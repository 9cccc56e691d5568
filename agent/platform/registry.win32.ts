import type { CommandResult, CommandRunner } from './command-runner.js';

/** Outcome of one registry write: `error` is what reg.exe (or the runner) said. */
export type RegistryResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

/** One value as `reg query` prints it. DWORDs are numbers, strings stay strings, REG_MULTI_SZ is a list. */
export type RegistryValue =
  | { readonly name: string; readonly type: 'REG_DWORD'; readonly data: number }
  | { readonly name: string; readonly type: 'REG_SZ' | 'REG_EXPAND_SZ'; readonly data: string }
  | { readonly name: string; readonly type: 'REG_MULTI_SZ'; readonly data: readonly string[] }
  | { readonly name: string; readonly type: 'other'; readonly data: string };

export type RegistryReadResult =
  | { readonly ok: true; readonly values: readonly RegistryValue[] }
  | { readonly ok: false; readonly error: string };

/**
 * The machine-policy registry as the Windows enforcer needs it. Keys are full paths starting with
 * `HKLM\` (only machine policy is written: user-hive policy would not bind LocalSystem's decisions).
 * Contract: never throws for an OS error (it resolves `{ ok: false, error }`); every write is
 * idempotent (writing the value already there succeeds; deleting a missing value or key succeeds).
 * Fake: `test/fakes/fake-registry.ts`.
 */
export interface RegistryWriter {
  /** The values directly under `key` (not its subkeys). A missing key reads as no values. */
  readValues(key: string): Promise<RegistryReadResult>;
  setDword(key: string, name: string, value: number): Promise<RegistryResult>;
  setString(key: string, name: string, value: string): Promise<RegistryResult>;
  setMultiString(key: string, name: string, values: readonly string[]): Promise<RegistryResult>;
  deleteValue(key: string, name: string): Promise<RegistryResult>;
  deleteKey(key: string): Promise<RegistryResult>;
}

/** reg.exe's message when a key or value does not exist (English and exit code 1). */
const NOT_FOUND = /unable to find the specified registry key or value/i;
/** `reg query` value lines: four spaces, name, four spaces, type, four spaces, data. */
const VALUE_LINE = /^ {4}(.*?) {4}(REG_[A-Z_]+)(?: {4}(.*))?$/;

/**
 * `RegistryWriter` over `reg.exe` through a `CommandRunner`: exact argv arrays, no shell, `/f` so
 * reg.exe never stops to ask. reg.exe writes the 64-bit view from a 64-bit agent (`/reg:64` is
 * passed so a 32-bit Node would still write where Windows reads machine policy).
 */
export class RegExeRegistry implements RegistryWriter {
  constructor(
    private readonly runner: CommandRunner,
    private readonly regExe = 'reg.exe',
  ) {}

  async readValues(key: string): Promise<RegistryReadResult> {
    const result = await this.runner.run(this.regExe, ['query', key, '/reg:64']);
    if (result.code === 0 && result.error === undefined) return { ok: true, values: parseRegQuery(result.stdout) };
    if (result.code === 1 && NOT_FOUND.test(result.stderr + result.stdout)) return { ok: true, values: [] };
    return { ok: false, error: failure('reg query', key, result) };
  }

  setDword(key: string, name: string, value: number): Promise<RegistryResult> {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`not a DWORD: ${value}`);
    return this.write(['add', key, '/v', name, '/t', 'REG_DWORD', '/d', String(value), '/f', '/reg:64'], key);
  }

  setString(key: string, name: string, value: string): Promise<RegistryResult> {
    return this.write(['add', key, '/v', name, '/t', 'REG_SZ', '/d', value, '/f', '/reg:64'], key);
  }

  setMultiString(key: string, name: string, values: readonly string[]): Promise<RegistryResult> {
    // reg.exe joins REG_MULTI_SZ items with the /s separator; NUL cannot travel in argv, so pick one
    // that no item contains (items here are GUIDs and instance ids).
    if (values.some((item) => item.includes('\u0001'))) throw new RangeError('REG_MULTI_SZ item contains the separator');
    return this.write(['add', key, '/v', name, '/t', 'REG_MULTI_SZ', '/s', '\u0001', '/d', values.join('\u0001'), '/f', '/reg:64'], key);
  }

  async deleteValue(key: string, name: string): Promise<RegistryResult> {
    return this.remove(['delete', key, '/v', name, '/f', '/reg:64'], key);
  }

  async deleteKey(key: string): Promise<RegistryResult> {
    return this.remove(['delete', key, '/f', '/reg:64'], key);
  }

  private async write(args: string[], key: string): Promise<RegistryResult> {
    const result = await this.runner.run(this.regExe, args);
    return result.code === 0 && result.error === undefined ? { ok: true } : { ok: false, error: failure(`reg ${args[0]}`, key, result) };
  }

  /** Deleting what is not there is success: the state asked for holds. */
  private async remove(args: string[], key: string): Promise<RegistryResult> {
    const result = await this.runner.run(this.regExe, args);
    if (result.code === 0 && result.error === undefined) return { ok: true };
    if (result.code === 1 && NOT_FOUND.test(result.stderr + result.stdout)) return { ok: true };
    return { ok: false, error: failure('reg delete', key, result) };
  }
}

/** Parses `reg query KEY` output: value lines only (subkey lines start with `HKEY_`). */
export function parseRegQuery(stdout: string): RegistryValue[] {
  const values: RegistryValue[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const match = VALUE_LINE.exec(line);
    if (!match) continue;
    const name = match[1] === '(Default)' ? '' : (match[1] ?? '');
    const type = match[2] ?? '';
    const data = match[3] ?? '';
    switch (type) {
      case 'REG_DWORD':
        values.push({ name, type, data: Number.parseInt(data, 16) });
        break;
      case 'REG_SZ':
      case 'REG_EXPAND_SZ':
        values.push({ name, type, data });
        break;
      case 'REG_MULTI_SZ':
        // reg query prints the items joined with a literal `\0`.
        values.push({ name, type, data: data === '' ? [] : data.split('\\0') });
        break;
      default:
        values.push({ name, type: 'other', data });
    }
  }
  return values;
}

function failure(what: string, key: string, result: CommandResult): string {
  const detail = result.error ?? (result.stderr.trim() || result.stdout.trim() || 'no output');
  return `${what} ${key} failed (exit ${result.code ?? 'none'}): ${detail}`;
}
