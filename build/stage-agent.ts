import fs from 'node:fs/promises';
import path from 'node:path';
import { builtinModules } from 'node:module';
import { repoRoot } from './repo-root.js';

/**
 * Stages the agent service as it is installed on a staff PC, from a built checkout (`npm ci && npm
 * run build`) and without downloading anything:
 *
 *   <out>/node                  this machine's Node runtime (node.exe on Windows): the service
 *                               ships its own, so the Electron binary's RunAsNode fuse stays off
 *   <out>/package.json          {"type": "module"}, so Node loads dist/ as ES modules
 *   <out>/dist/agent, dist/shared   the built JavaScript (no maps, no declarations)
 *   <out>/node_modules/…        exactly the production packages the agent's code imports, and
 *                               what they need, per package-lock.json; native prebuilds for this
 *                               platform only
 *
 * The Linux .deb (`package-deb.ts`) installs this tree as /usr/lib/sekimori; the Windows package
 * takes it as resources/agent (electron-builder.yml). Run it on the target platform: the Node
 * binary and the native prebuild are this machine's.
 *
 * CLI: `node dist/build/stage-agent.js OUT_DIR` (prints OUT_DIR).
 */

interface LockPackage {
  readonly version?: string;
  readonly dev?: boolean;
  readonly optional?: boolean;
  readonly link?: boolean;
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}
interface Lockfile {
  readonly lockfileVersion: number;
  readonly packages: Record<string, LockPackage>;
}

/** The built code the agent service runs. */
export const AGENT_DIST_DIRS = ['dist/agent', 'dist/shared'] as const;

/** Package-root paths never needed at run time (sources of native code, tests), per package. */
const PRUNE: Readonly<Record<string, readonly string[]>> = {
  usb: ['libusb', 'libusb_config', 'libusb.gypi', 'src', 'test', 'binding.gyp'],
  'node-addon-api': ['tools', 'doc'],
};

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

/** The package name of a bare import specifier (`@scope/name/sub` → `@scope/name`), or null for builtins and relative paths. */
export function packageOf(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:') || specifier.startsWith('file:')) return null;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return builtinModules.includes(name) ? null : name;
}

const IMPORT_PATTERNS = [
  /^\s*(?:import|export)\s[^'"]*?\bfrom\s*['"]([^'"]+)['"]/gm,
  /^\s*import\s*['"]([^'"]+)['"]/gm,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
];

/** Every package the JavaScript under `dirs` imports (static, side-effect and literal dynamic imports). */
export async function runtimeImports(root: string, dirs: readonly string[] = AGENT_DIST_DIRS): Promise<string[]> {
  const names = new Set<string>();
  for (const dir of dirs) {
    for (const file of await listFiles(path.join(root, dir))) {
      if (!file.endsWith('.js')) continue;
      const code = await fs.readFile(file, 'utf8');
      for (const pattern of IMPORT_PATTERNS) {
        for (const match of code.matchAll(pattern)) {
          const name = packageOf(match[1]!);
          if (name) names.add(name);
        }
      }
    }
  }
  return [...names].sort();
}

/** Where Node finds package `name` from the package installed at `from` ('' = the project), per the lockfile. */
function resolveInLock(lock: Lockfile, from: string, name: string): string | null {
  let base = from;
  for (;;) {
    const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (base === '') return null;
    const cut = base.lastIndexOf('/node_modules/');
    base = cut === -1 ? '' : base.slice(0, cut);
  }
}

/**
 * The installed packages (lockfile paths such as `node_modules/winston/node_modules/x`) that
 * `names` need at run time: their dependencies, optional dependencies that are installed, and
 * required peers. Throws when a required one is missing or is a dev-only package.
 */
export function dependencyClosure(lock: Lockfile, names: readonly string[]): string[] {
  if (lock.lockfileVersion < 2) throw new Error('package-lock.json must be lockfileVersion 2 or 3 (npm 7+)');
  const found = new Set<string>();
  const visit = (from: string, name: string, optional: boolean): void => {
    const location = resolveInLock(lock, from, name);
    if (location === null) {
      if (optional) return;
      throw new Error(`${name} (needed by ${from || 'the agent'}) is not in package-lock.json`);
    }
    if (found.has(location)) return;
    const entry = lock.packages[location]!;
    if (entry.dev) throw new Error(`${name} is a devDependency but the agent imports it at run time (needed by ${from || 'the agent'})`);
    found.add(location);
    for (const dependency of Object.keys(entry.dependencies ?? {})) visit(location, dependency, false);
    for (const dependency of Object.keys(entry.optionalDependencies ?? {})) visit(location, dependency, true);
    for (const dependency of Object.keys(entry.peerDependencies ?? {})) visit(location, dependency, entry.peerDependenciesMeta?.[dependency]?.optional === true);
  };
  for (const name of names) visit('', name, false);
  return [...found].sort();
}

/** Whether a file of an installed package is left out of the staged tree. */
function pruned(packageName: string, relative: string, platform: NodeJS.Platform, arch: string): boolean {
  const parts = relative.split(path.sep);
  if (parts[0] === 'node_modules') return true; // nested packages are staged on their own
  if ((PRUNE[packageName] ?? []).includes(parts[0]!)) return true;
  if (/\.(d\.ts|d\.mts|d\.cts|map)$/.test(relative)) return true;
  if (parts[0] === 'prebuilds' && parts.length > 1) {
    // prebuilds/<platform>-<arch>[+<arch>…]/…: keep this platform's only.
    const [targetPlatform, archs = ''] = parts[1]!.split('-');
    return targetPlatform !== platform || !archs.split('+').includes(arch);
  }
  return false;
}

export interface StageOptions {
  /** The checkout (with dist/ built and node_modules installed). */
  readonly root?: string;
  readonly out: string;
  readonly platform?: NodeJS.Platform;
  readonly arch?: string;
  /** The Node runtime to ship; default: the one running this script. */
  readonly nodeBinary?: string;
}

export interface StagedAgent {
  readonly out: string;
  readonly version: string;
  readonly imports: readonly string[];
  readonly packages: readonly string[];
}

export async function stageAgent(options: StageOptions): Promise<StagedAgent> {
  const root = options.root ?? repoRoot();
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  const out = path.resolve(options.out);
  for (const required of ['dist/agent/cli.js', 'dist/shared']) {
    await fs.access(path.join(root, required)).catch(() => {
      throw new Error(`${required} is missing: run npm run build first`);
    });
  }
  const manifest = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
  const lock = JSON.parse(await fs.readFile(path.join(root, 'package-lock.json'), 'utf8')) as Lockfile;
  const imports = await runtimeImports(root);
  const packages = dependencyClosure(lock, imports);

  await fs.rm(out, { recursive: true, force: true });
  await fs.mkdir(out, { recursive: true });
  for (const dir of AGENT_DIST_DIRS) {
    for (const file of await listFiles(path.join(root, dir))) {
      if (!file.endsWith('.js')) continue;
      const target = path.join(out, path.relative(root, file));
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.copyFile(file, target);
    }
  }
  for (const location of packages) {
    const source = path.join(root, location);
    const name = location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length);
    for (const file of await listFiles(source)) {
      const relative = path.relative(source, file);
      if (pruned(name, relative, platform, arch)) continue;
      const target = path.join(out, location, relative);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.copyFile(file, target);
    }
  }
  await fs.writeFile(
    path.join(out, 'package.json'),
    JSON.stringify({ name: 'sekimori-agent', version: manifest.version, private: true, type: 'module', description: 'Sekimori agent service (staged by build/stage-agent.ts)' }, null, 2) + '\n',
  );
  const node = path.join(out, platform === 'win32' ? 'node.exe' : 'node');
  await fs.copyFile(await fs.realpath(options.nodeBinary ?? process.execPath), node);
  await fs.chmod(node, 0o755);
  await fs.chmod(path.join(out, 'dist/agent/cli.js'), 0o755);
  return { out, version: manifest.version, imports, packages };
}

if (process.argv[1] && import.meta.filename === (await fs.realpath(process.argv[1]).catch(() => ''))) {
  const out = process.argv[2];
  if (!out || process.argv.length > 3) {
    process.stderr.write('Usage: node dist/build/stage-agent.js OUT_DIR\n');
    process.exitCode = 2;
  } else {
    const staged = await stageAgent({ out });
    process.stdout.write(`${staged.out}\n`);
  }
}
