import type { RegistryReadResult, RegistryResult, RegistryValue, RegistryWriter } from '../../agent/platform/registry.win32.js';

type Operation = 'readValues' | 'setDword' | 'setString' | 'setMultiString' | 'deleteValue' | 'deleteKey';

/**
 * In-memory twin of the machine-policy registry (`RegistryWriter`). Keys and value names compare
 * case-insensitively, as in Windows. `writes` records each change in the enforcer's own notation
 * (`set KEY\Name=value`, `delete KEY\Name`) so tests can assert what was written and that a second
 * pass writes nothing. `failOn` makes an operation fail like reg.exe would.
 */
export class FakeRegistry implements RegistryWriter {
  readonly writes: string[] = [];
  private readonly keys = new Map<string, { path: string; values: Map<string, RegistryValue> }>();
  private readonly failures: { op: Operation; key: RegExp | string; error: string }[] = [];

  /** Every later `op` on a key equal to (string, case-insensitive) or matching (RegExp) `key` fails with `error`. */
  failOn(op: Operation, key: string | RegExp, error = 'ERROR: Access is denied.'): this {
    this.failures.push({ op, key, error });
    return this;
  }

  /** The value now stored, or undefined. */
  get(key: string, name: string): RegistryValue['data'] | undefined {
    return this.keys.get(key.toLowerCase())?.values.get(name.toLowerCase())?.data;
  }

  /** The REG_SZ data under a key, by value name (for numbered policy lists). */
  list(key: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const value of this.keys.get(key.toLowerCase())?.values.values() ?? []) if (typeof value.data === 'string') out[value.name] = value.data;
    return out;
  }

  readValues(key: string): Promise<RegistryReadResult> {
    const failure = this.failure('readValues', key);
    if (failure) return Promise.resolve({ ok: false, error: failure });
    return Promise.resolve({ ok: true, values: [...(this.keys.get(key.toLowerCase())?.values.values() ?? [])] });
  }

  setDword(key: string, name: string, value: number): Promise<RegistryResult> {
    return this.set('setDword', key, { name, type: 'REG_DWORD', data: value }, String(value));
  }

  setString(key: string, name: string, value: string): Promise<RegistryResult> {
    return this.set('setString', key, { name, type: 'REG_SZ', data: value }, JSON.stringify(value));
  }

  setMultiString(key: string, name: string, values: readonly string[]): Promise<RegistryResult> {
    return this.set('setMultiString', key, { name, type: 'REG_MULTI_SZ', data: [...values] }, JSON.stringify(values));
  }

  deleteValue(key: string, name: string): Promise<RegistryResult> {
    const failure = this.failure('deleteValue', key);
    if (failure) return Promise.resolve({ ok: false, error: failure });
    if (this.keys.get(key.toLowerCase())?.values.delete(name.toLowerCase())) this.writes.push(`delete ${key}\\${name}`);
    return Promise.resolve({ ok: true });
  }

  deleteKey(key: string): Promise<RegistryResult> {
    const failure = this.failure('deleteKey', key);
    if (failure) return Promise.resolve({ ok: false, error: failure });
    const prefix = key.toLowerCase();
    for (const path of [...this.keys.keys()]) {
      if (path === prefix || path.startsWith(`${prefix}\\`)) {
        this.keys.delete(path);
        this.writes.push(`delete ${key}`);
      }
    }
    return Promise.resolve({ ok: true });
  }

  private set(op: Operation, key: string, value: RegistryValue, shown: string): Promise<RegistryResult> {
    const failure = this.failure(op, key);
    if (failure) return Promise.resolve({ ok: false, error: failure });
    let entry = this.keys.get(key.toLowerCase());
    if (!entry) {
      entry = { path: key, values: new Map() };
      this.keys.set(key.toLowerCase(), entry);
    }
    entry.values.set(value.name.toLowerCase(), value);
    this.writes.push(`set ${key}\\${value.name}=${shown}`);
    return Promise.resolve({ ok: true });
  }

  private failure(op: Operation, key: string): string | undefined {
    return this.failures.find((rule) => rule.op === op && (typeof rule.key === 'string' ? rule.key.toLowerCase() === key.toLowerCase() : rule.key.test(key)))?.error;
  }
}
