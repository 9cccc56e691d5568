import type { RegistryWriter } from '../platform/registry.win32.js';
import { REMOVABLE_STORAGE_KEY } from '../usb/usb-enforcer.win32.js';

/** Removable Storage Access class GUID of CD and DVD drives ("CD and DVD: Deny write access"). */
export const CD_DVD_CLASS = '{53f56308-b6bf-11d0-94f2-00a0c91efb8b}';
export const CD_DVD_KEY = `${REMOVABLE_STORAGE_KEY}\\${CD_DVD_CLASS}`;

export type OpticalTarget = 'allow' | 'block' | 'read-only';

export interface OpticalOutcome {
  readonly ok: boolean;
  /** `set …\Deny_Write=1`, `delete …\Deny_Read`: what was written (nothing when already so). */
  readonly actions: readonly string[];
  readonly error: string | null;
}

/**
 * Optical drives on Windows through the documented machine policy (Removable Storage Access,
 * `HKLM\Software\Policies\Microsoft\Windows\RemovableStorageDevices\{53f56308-…}`):
 * - `block`: `Deny_Write` = 1 and `Deny_Read` = 1 (no access to discs at all);
 * - `read-only`: `Deny_Write` = 1, `Deny_Read` removed (discs readable, burning refused);
 * - `allow`: both removed (the policy no longer restricts the drive).
 * Only values that differ are written, so applying the same target again writes nothing. Never
 * throws: a registry failure is `{ ok: false, error }` after trying every value (restrictive first).
 * Windows reads these values at the next policy refresh or when the drive is next opened; burning
 * software already holding the drive keeps its handle. Not verified on a real Windows.
 */
export async function applyOpticalPolicy(registry: RegistryWriter, target: OpticalTarget): Promise<OpticalOutcome> {
  const current = await registry.readValues(CD_DVD_KEY);
  if (!current.ok) return { ok: false, actions: [], error: current.error };
  const value = (name: string): number | null => {
    const found = current.values.find((item) => item.name.toLowerCase() === name.toLowerCase());
    return found?.type === 'REG_DWORD' ? found.data : found ? -1 : null;
  };
  const wanted: Record<'Deny_Write' | 'Deny_Read', 1 | null> = {
    Deny_Write: target === 'allow' ? null : 1,
    Deny_Read: target === 'block' ? 1 : null,
  };
  const actions: string[] = [];
  const errors: string[] = [];
  for (const name of ['Deny_Write', 'Deny_Read'] as const) {
    const want = wanted[name];
    const have = value(name);
    if (want === have) continue;
    const result = want === null ? await registry.deleteValue(CD_DVD_KEY, name) : await registry.setDword(CD_DVD_KEY, name, want);
    if (result.ok) actions.push(want === null ? `delete ${CD_DVD_KEY}\\${name}` : `set ${CD_DVD_KEY}\\${name}=${want}`);
    else errors.push(result.error);
  }
  return { ok: errors.length === 0, actions, error: errors.length > 0 ? errors.join('; ') : null };
}
