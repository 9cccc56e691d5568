import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { repoRoot } from './repo-root.js';
import { stageAgent } from './stage-agent.js';

const run = promisify(execFile);

/**
 * Builds `sekimori-agent_<version>_<arch>.deb`, the Linux agent service, with `dpkg-deb` from a
 * built checkout (`npm ci && npm run build`), downloading nothing. `npm run package:deb`.
 *
 *   /usr/lib/sekimori/                  node, dist/agent, dist/shared, node_modules (stage-agent.ts)
 *   /usr/bin/sekimori-agent             the command line (status, verify-journal, rules …)
 *   /lib/systemd/system/sekimori-agent.service   hardened unit (build/linux/)
 *   /lib/udev/rules.d/70-sekimori-usb-default-deny.rules
 *   /etc/sekimori/config.json.example   the install-time config IT fills in as /etc/sekimori/config.json
 *   /usr/share/doc/sekimori-agent/      README.md (deployment, USB default-deny), pam.example
 *   DEBIAN/postinst, prerm, postrm      state dir 0700, config moved in 0600, service enabled/started
 *
 * The desktop app's own .deb comes from electron-builder where the Electron binary exists; it
 * depends on this package, and it alone carries the app's XDG autostart entry
 * (build/linux/sekimori-app.desktop): this package has no app to start, so nothing of
 * /etc/xdg or /usr/share/applications is in DEB_FILES (test/build/deb-package.test.ts checks).
 */

/** Where each file of build/linux goes in the package, and its mode. */
export const DEB_FILES: readonly { readonly source: string; readonly target: string; readonly mode: number }[] = [
  { source: 'build/linux/sekimori-agent.service', target: 'lib/systemd/system/sekimori-agent.service', mode: 0o644 },
  { source: 'build/linux/70-sekimori-usb-default-deny.rules', target: 'lib/udev/rules.d/70-sekimori-usb-default-deny.rules', mode: 0o644 },
  { source: 'build/linux/sekimori-agent', target: 'usr/bin/sekimori-agent', mode: 0o755 },
  { source: 'build/linux/config.json.example', target: 'etc/sekimori/config.json.example', mode: 0o644 },
  { source: 'build/linux/pam.example', target: 'usr/share/doc/sekimori-agent/pam.example', mode: 0o644 },
  { source: 'build/linux/README.md', target: 'usr/share/doc/sekimori-agent/README.md', mode: 0o644 },
];

export const MAINTAINER_SCRIPTS = ['postinst', 'prerm', 'postrm'] as const;

/**
 * What the package needs from the system: the C/C++ runtime of the shipped node binary
 * (GLIBC_2.28, GLIBCXX_3.4.21) and of node-usb's prebuild (libudev), and the programs the agent
 * runs: loginctl (systemd), ss and ip (iproute2), blockdev and lsblk (util-linux), getent (libc-bin).
 */
export const DEB_DEPENDS = ['libc6 (>= 2.28)', 'libstdc++6 (>= 5.2)', 'libgcc-s1', 'libudev1', 'systemd', 'iproute2', 'util-linux', 'libc-bin'] as const;
/** dmsetup: the disk-encryption self-check lists dm-crypt targets with it. */
export const DEB_RECOMMENDS = ['dmsetup'] as const;

/** Debian's name for a Node architecture. */
export function debianArch(arch: string = process.arch): string {
  const known: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: 'i386', arm: 'armhf' };
  const name = known[arch];
  if (!name) throw new Error(`no Debian architecture for ${arch}`);
  return name;
}

export function controlFile(version: string, arch: string, installedSizeKb: number): string {
  return [
    'Package: sekimori-agent',
    `Version: ${version}`,
    `Architecture: ${arch}`,
    'Maintainer: Sekimori project <sekimori@localhost>',
    `Installed-Size: ${installedSizeKb}`,
    `Depends: ${DEB_DEPENDS.join(', ')}`,
    `Recommends: ${DEB_RECOMMENDS.join(', ')}`,
    'Section: admin',
    'Priority: optional',
    'Description: Sekimori (関守) agent: USB device control, lock and audit journal',
    ' The privileged service of Sekimori, endpoint control for the staff PCs of',
    ' Japanese local governments: USB default-deny with USBGuard-style rules,',
    ' multi-factor unlock (PIN + TOTP, also at the OS login via PAM), network',
    ' isolation checks, and a hash-chained audit journal reported to the',
    ' central server. Ships its own Node runtime in /usr/lib/sekimori.',
    '',
  ].join('\n');
}

async function walk(dir: string): Promise<{ file: string; directory: boolean }[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.map((entry) => ({ file: path.join(entry.parentPath, entry.name), directory: entry.isDirectory() }));
}

export interface DebOptions {
  readonly root?: string;
  /** Directory the .deb is written to; default dist/installers. */
  readonly outDir?: string;
  /** dpkg-deb compression; xz (default) for releases, gzip or none where speed matters. */
  readonly compression?: 'xz' | 'gzip' | 'none';
  readonly nodeBinary?: string;
}

/** Builds the package; returns the .deb's path. */
export async function buildDeb(options: DebOptions = {}): Promise<string> {
  const root = options.root ?? repoRoot();
  const outDir = path.resolve(options.outDir ?? path.join(root, 'dist', 'installers'));
  const arch = debianArch();
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'sekimori-deb-'));
  try {
    const tree = path.join(work, 'pkg');
    const staged = await stageAgent({ root, out: path.join(tree, 'usr/lib/sekimori'), ...(options.nodeBinary ? { nodeBinary: options.nodeBinary } : {}) });
    for (const { source, target } of DEB_FILES) {
      await fs.mkdir(path.dirname(path.join(tree, target)), { recursive: true });
      await fs.copyFile(path.join(root, source), path.join(tree, target));
    }
    // Modes are set here, not taken from the checkout: 0755 for directories and executables, 0644 for the rest.
    let bytes = 0;
    const md5sums: string[] = [];
    for (const { file, directory } of await walk(tree)) {
      if (directory) {
        await fs.chmod(file, 0o755);
        continue;
      }
      const relative = path.relative(tree, file);
      const declared = DEB_FILES.find((entry) => entry.target === relative)?.mode;
      const executable = ((await fs.stat(file)).mode & 0o111) !== 0;
      await fs.chmod(file, declared ?? (executable ? 0o755 : 0o644));
      const content = await fs.readFile(file);
      bytes += content.length;
      md5sums.push(`${createHash('md5').update(content).digest('hex')}  ${relative}`);
    }
    await fs.chmod(tree, 0o755);
    const debian = path.join(tree, 'DEBIAN');
    await fs.mkdir(debian, { mode: 0o755 });
    await fs.writeFile(path.join(debian, 'control'), controlFile(staged.version, arch, Math.ceil(bytes / 1024)), { mode: 0o644 });
    await fs.writeFile(path.join(debian, 'conffiles'), '/etc/sekimori/config.json.example\n', { mode: 0o644 });
    await fs.writeFile(path.join(debian, 'md5sums'), md5sums.sort().join('\n') + '\n', { mode: 0o644 });
    for (const script of MAINTAINER_SCRIPTS) {
      await fs.copyFile(path.join(root, 'build/linux', script), path.join(debian, script));
      await fs.chmod(path.join(debian, script), 0o755);
    }
    await fs.mkdir(outDir, { recursive: true });
    const deb = path.join(outDir, `sekimori-agent_${staged.version}_${arch}.deb`);
    const compression = options.compression ?? 'xz';
    await run('dpkg-deb', ['--root-owner-group', `-Z${compression}`, '--build', tree, deb], { maxBuffer: 16 * 1024 * 1024 });
    return deb;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.filename === (await fs.realpath(process.argv[1]).catch(() => ''))) {
  try {
    const { values } = parseArgs({ options: { out: { type: 'string' }, compression: { type: 'string' } }, strict: true });
    const compression = values.compression ?? 'xz';
    if (compression !== 'xz' && compression !== 'gzip' && compression !== 'none') throw new Error('--compression must be xz, gzip or none');
    process.stdout.write(`${await buildDeb({ ...(values.out ? { outDir: values.out } : {}), compression })}\n`);
  } catch (error) {
    process.stderr.write(`package-deb: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
