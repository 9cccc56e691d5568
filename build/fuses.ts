import fuses from '@electron/fuses';

const { FuseV1Options, FuseVersion, flipFuses, getCurrentFuseWire } = fuses;

/**
 * Electron fuses of the packaged app (DESIGN.md §2, §9): flipped in the Electron binary itself at
 * packaging (`after-pack.ts`), before code signing, so no environment variable or flag can turn
 * the app back into a general-purpose Node runtime. The agent ships its own Node runtime, so
 * nothing needs `ELECTRON_RUN_AS_NODE`.
 *
 * electron-builder 25 (the newest whose dependencies support Node 20) has no `electronFuses`
 * option; this is the hook its documentation recommends instead, with `@electron/fuses`.
 */
export const SEKIMORI_FUSES = {
  /** `ELECTRON_RUN_AS_NODE` would make the signed app binary run any script as plain Node. */
  RunAsNode: false,
  /** `NODE_OPTIONS` (e.g. `--require evil.js`) would inject code into the main process. */
  EnableNodeOptionsEnvironmentVariable: false,
  /** `--inspect` / `--inspect-brk` would open a debugger on the main process to anyone local. */
  EnableNodeCliInspectArguments: false,
  /** The app is loaded only from `app.asar`, never from a loose `app/` folder planted next to it. */
  OnlyLoadAppFromAsar: true,
  /** `app.asar` is checked against the hash electron-builder embeds (macOS and Windows; Linux has no such check yet). */
  EnableEmbeddedAsarIntegrityValidation: true,
  /** Cookies at rest encrypted with the OS key store. */
  EnableCookieEncryption: true,
} as const;

/**
 * Deliberately left at Electron's default: `GrantFileProtocolExtraPrivileges` (the pages are
 * loaded with `loadFile` from `file://`; turning it off needs a custom protocol in main/ first)
 * and `LoadBrowserProcessSpecificV8Snapshot` (no custom snapshot).
 */
export const FUSES_LEFT_AT_DEFAULT = ['GrantFileProtocolExtraPrivileges', 'LoadBrowserProcessSpecificV8Snapshot'] as const;

/** The @electron/fuses config for `SEKIMORI_FUSES`. */
export function fuseConfig(): Parameters<typeof flipFuses>[1] {
  const config: Record<string, unknown> = { version: FuseVersion.V1, resetAdHocDarwinSignature: process.platform === 'darwin' };
  for (const [name, value] of Object.entries(SEKIMORI_FUSES)) config[FuseV1Options[name as keyof typeof FuseV1Options]] = value;
  return config as Parameters<typeof flipFuses>[1];
}

/** Fuse states as written in the binary ('0' off, '1' on). */
const ENABLED = 0x31;
const DISABLED = 0x30;

/**
 * Flips the fuses of the Electron executable at `electronPath` and reads them back; throws when
 * the binary has no fuse wire or a fuse did not take, so a package with open fuses never ships.
 */
export async function applyFuses(electronPath: string): Promise<void> {
  await flipFuses(electronPath, fuseConfig());
  const wire = (await getCurrentFuseWire(electronPath)) as unknown as Record<number, number>;
  for (const [name, value] of Object.entries(SEKIMORI_FUSES)) {
    const index = FuseV1Options[name as keyof typeof FuseV1Options];
    const state = wire[index];
    if (state !== (value ? ENABLED : DISABLED)) throw new Error(`fuse ${name} is ${String(state)} in ${electronPath}, wanted ${value ? 'on' : 'off'}`);
  }
}
