import fs from 'node:fs';
import path from 'node:path';
import { applyFuses } from './fuses.js';

/**
 * electron-builder `afterPack` hook (electron-builder.yml): runs on the unpacked app, before
 * signing and before the installers are made. It flips the Electron fuses (`fuses.ts`) and, for
 * Windows, refuses to go on without the agent runtime the installer registers as a service.
 */

/** The part of electron-builder's `AfterPackContext` this hook reads. */
export interface AfterPackContextLike {
  readonly appOutDir: string;
  readonly electronPlatformName: string;
  readonly packager: { readonly appInfo: { readonly productFilename: string }; readonly executableName?: string };
}

/** The Electron executable inside the unpacked app. */
export function electronExecutable(context: AfterPackContextLike): string {
  const { appOutDir, electronPlatformName, packager } = context;
  switch (electronPlatformName) {
    case 'win32':
      // electron-builder names it after productFilename, which `win.executableName` sets.
      return path.join(appOutDir, `${packager.appInfo.productFilename}.exe`);
    case 'darwin':
    case 'mas':
      return path.join(appOutDir, `${packager.appInfo.productFilename}.app`);
    default:
      return path.join(appOutDir, packager.executableName ?? packager.appInfo.productFilename);
  }
}

/** Files the Windows installer script (build/windows/installer.nsh) needs under resources/agent. */
export const WINDOWS_AGENT_FILES = ['node.exe', 'dist/agent/cli.js', 'sekimori-agent-service.exe', 'sekimori-agent-service.xml'] as const;

export async function afterPack(context: AfterPackContextLike): Promise<void> {
  if (context.electronPlatformName === 'win32') {
    const agentDir = path.join(context.appOutDir, 'resources', 'agent');
    const missing = WINDOWS_AGENT_FILES.filter((file) => !fs.existsSync(path.join(agentDir, file)));
    if (missing.length > 0) {
      throw new Error(
        `the Windows package needs the agent runtime in resources/agent, missing: ${missing.join(', ')} ` +
          '(run `node dist/build/stage-agent.js dist/agent-runtime` on Windows and put the service host in build/windows/service-host/: build/windows/README.md)',
      );
    }
  }
  await applyFuses(electronExecutable(context));
}

export default afterPack;
