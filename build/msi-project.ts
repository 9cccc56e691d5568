import fs from 'node:fs/promises';

/**
 * electron-builder `msiProjectCreated` hook (electron-builder.yml): edits the WiX project of the
 * wrapped MSI before it is compiled.
 *
 * - The installer properties IT sets on the msiexec command line (`SERVERURL`, `ENROLLTOKEN`,
 *   `TIER`, `POLICYPUBLICKEY`, `CONFIG`) are declared `Secure`, so Windows Installer passes them to
 *   the elevated part of a managed install (GPO, SCCM, Intune run msiexec that way).
 * - `ENROLLTOKEN` is `Hidden` (WiX adds it to `MsiHiddenProperties`), and the custom action that runs the wrapped
 *   NSIS installer gets `HideTarget="yes"`, so the token is not written into MSI logs (its
 *   arguments carry the properties).
 *
 * It fails the build when the project does not look like electron-builder's msiWrapped template
 * any more, rather than shipping an MSI that silently drops the properties.
 *
 * The wrapped MSI installs nothing itself: its one custom action runs the NSIS installer (`/S`), so
 * the service, the configuration and the app's auto-start entry (HKLM `…\CurrentVersion\Run`,
 * value `Sekimori` = `"…\Sekimori.exe" --autostart`) come from build/windows/installer.nsh, and
 * so does their removal: the MSI is not registered as a product, so uninstalling is the NSIS
 * uninstaller's (`Uninstall Sekimori.exe /S`), which deletes the Run value.
 */

/** The MSI properties passed through to the NSIS installer (`/NAME="[NAME]"` in `wrappedInstallerArgs`). */
export const MSI_PROPERTIES = ['CONFIG', 'SERVERURL', 'ENROLLTOKEN', 'TIER', 'POLICYPUBLICKEY'] as const;
/** Properties whose values must not appear in MSI logs. */
export const HIDDEN_MSI_PROPERTIES = ['ENROLLTOKEN'] as const;

const ANCHOR = '<Property Id="DISABLEADVTSHORTCUTS" Value="1"/>';

/** The edited WiX source; throws if `wxs` lacks the anchors of electron-builder's template. */
export function editMsiProject(wxs: string): string {
  if (!wxs.includes(ANCHOR)) throw new Error(`msi-project: ${ANCHOR} not found; electron-builder's MSI template changed`);
  if (!/<CustomAction Id="RunInstaller"[^>]*HideTarget="no"/.test(wxs)) {
    throw new Error('msi-project: the RunInstaller custom action (HideTarget="no") was not found; electron-builder\'s msiWrapped template changed');
  }
  const declarations = MSI_PROPERTIES.map((name) => `<Property Id="${name}" Secure="yes"${(HIDDEN_MSI_PROPERTIES as readonly string[]).includes(name) ? ' Hidden="yes"' : ''}/>`);
  return wxs
    .replace(ANCHOR, `${ANCHOR}\n    ${declarations.join('\n    ')}`)
    .replace(/(<CustomAction Id="RunInstaller"[^>]*)HideTarget="no"/, '$1HideTarget="yes"');
}

export async function msiProjectCreated(projectFile: string): Promise<void> {
  await fs.writeFile(projectFile, editMsiProject(await fs.readFile(projectFile, 'utf8')));
}

export default msiProjectCreated;
