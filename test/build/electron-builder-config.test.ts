import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import fuses from '@electron/fuses';
import { Arch, Platform, build as electronBuilderBuild } from 'electron-builder';
import { describe, expect, it } from 'vitest';
import { WINDOWS_AGENT_FILES, afterPack, electronExecutable, type AfterPackContextLike } from '../../build/after-pack.js';
import { FUSES_LEFT_AT_DEFAULT, SEKIMORI_FUSES } from '../../build/fuses.js';
import { MSI_PROPERTIES, editMsiProject } from '../../build/msi-project.js';
import { ROOT } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

/** electron-builder's configuration, as parsed YAML: the tests walk into it freely. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped YAML, read by the tests below
type BuilderConfig = Record<string, any>;

// electron-builder's own modules (CommonJS): its config loader, its validation, its YAML parser and
// the template engine of its MSI target, resolved the way electron-builder resolves them.
const requireFromBuilder = createRequire(createRequire(path.join(ROOT, 'package.json')).resolve('app-builder-lib/package.json'));
const { getConfig, validateConfiguration } = requireFromBuilder('./out/util/config/config.js') as {
  getConfig: (projectDir: string, configPath: string | null, configFromOptions: unknown) => Promise<BuilderConfig>;
  validateConfiguration: (config: unknown, debugLogger: unknown) => Promise<void>;
};
const { DebugLogger } = requireFromBuilder('builder-util/out/DebugLogger.js') as { DebugLogger: new (enabled: boolean) => unknown };
const yaml = requireFromBuilder('js-yaml') as { load: (text: string) => unknown };
const ejs = requireFromBuilder('ejs') as { compile: (template: string) => (data: Record<string, unknown>) => string };
const BUILDER_DIR = path.dirname(requireFromBuilder.resolve('./package.json'));

const { FuseV1Options, getCurrentFuseWire } = fuses;

async function loadYaml(): Promise<BuilderConfig> {
  return yaml.load(await fs.readFile(path.join(ROOT, 'electron-builder.yml'), 'utf8')) as BuilderConfig;
}

async function schemaValidator(): Promise<(config: unknown) => string[]> {
  const schema = JSON.parse(await fs.readFile(path.join(BUILDER_DIR, 'scheme.json'), 'utf8'));
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  return (config) => (validate(config) ? [] : (validate.errors ?? []).map((error) => `${error.instancePath} ${error.message} ${JSON.stringify(error.params)}`));
}

describe('electron-builder.yml', () => {
  it("is valid against electron-builder's own schema (app-builder-lib/scheme.json, ajv)", async () => {
    const errors = (await schemaValidator())(await loadYaml());
    expect(errors).toEqual([]);
  });

  it('passes the validation electron-builder itself runs before packaging', async () => {
    const config = await getConfig(ROOT, null, null);
    await expect(validateConfiguration(config, new DebugLogger(false))).resolves.toBeUndefined();
  });

  it('fails validation on a misspelt option (the check can fail)', async () => {
    const config = await loadYaml();
    config.nsis.perMachin = true;
    expect((await schemaValidator())(config).join('\n')).toMatch(/must NOT have additional properties.*perMachin/);
    await expect(validateConfiguration(config, new DebugLogger(false))).rejects.toThrow(/perMachin/);
  });

  it('keeps the security-relevant settings: asar, per-machine installers, no file associations or protocols, fuses hook', async () => {
    const config = await loadYaml();
    expect(config.appId).toBe('jp.lg.sekimori');
    expect(config.productName).toBe('関守 Sekimori');
    expect(config.asar).toBe(true);
    expect(config.nsis).toMatchObject({ perMachine: true, oneClick: true, include: 'build/windows/installer.nsh', runAfterFinish: false });
    expect(config.msiWrapped).toMatchObject({ perMachine: true, impersonate: false });
    for (const section of [config, config.win, config.linux, config.nsis, config.deb]) {
      expect(section.fileAssociations ?? []).toEqual([]);
      expect(section.protocols ?? []).toEqual([]);
    }
    expect(config.win.target.map((target: { target: string }) => target.target)).toEqual(['nsis', 'msiWrapped']);
    expect(config.linux.target).toEqual(['deb']);
    // The hooks are the compiled build/*.ts.
    expect(config.afterPack).toBe('dist/build/after-pack.js');
    expect(config.msiProjectCreated).toBe('dist/build/msi-project.js');
    await fs.access(path.join(ROOT, 'build/after-pack.ts'));
    await fs.access(path.join(ROOT, 'build/msi-project.ts'));
  });

  it('turns RunAsNode, NODE_OPTIONS and --inspect off and asar-only loading with integrity on', () => {
    expect(SEKIMORI_FUSES).toMatchObject({
      RunAsNode: false,
      EnableNodeOptionsEnvironmentVariable: false,
      EnableNodeCliInspectArguments: false,
      OnlyLoadAppFromAsar: true,
      EnableEmbeddedAsarIntegrityValidation: true,
    });
    // Every fuse this @electron/fuses knows is either set or deliberately left at Electron's default.
    const known = Object.keys(FuseV1Options).filter((key) => Number.isNaN(Number(key)));
    expect([...Object.keys(SEKIMORI_FUSES), ...FUSES_LEFT_AT_DEFAULT].sort()).toEqual(known.sort());
  });

  it('references only files that exist (icons, installer include, deb scripts, tray icons)', async () => {
    const config = await loadYaml();
    // deb.fpm's file mappings (`source=/target`) name files of this checkout too.
    const fpmSources = (config.deb.fpm as string[]).filter((arg) => !arg.startsWith('-')).map((arg) => arg.split('=')[0]!);
    expect(fpmSources).toEqual([AUTOSTART_SOURCE]);
    for (const file of [config.win.icon, config.linux.icon, config.nsis.installerIcon, config.nsis.uninstallerIcon, config.nsis.include, config.deb.afterInstall, config.deb.afterRemove, ...fpmSources]) {
      await expect(fs.access(path.join(ROOT, file)), file).resolves.toBeUndefined();
    }
    const tray = config.extraResources.find((resource: { to: string }) => resource.to === 'icons/tray');
    expect((await fs.readdir(path.join(ROOT, tray.from))).length).toBeGreaterThan(0);
  });
});

/** The XDG autostart entry of the app's .deb: its file here and where the package installs it. */
const AUTOSTART_SOURCE = 'build/linux/sekimori-app.desktop';
const AUTOSTART_TARGET = '/etc/xdg/autostart/sekimori-app.desktop';

/**
 * A desktop entry file (Desktop Entry Specification 1.5) as groups of key → value, refusing what the
 * spec forbids: a key outside a group, a line that is not `key=value`, a key twice in a group.
 */
function parseDesktopEntry(text: string): Map<string, Map<string, string>> {
  const groups = new Map<string, Map<string, string>>();
  let group: Map<string, string> | undefined;
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const header = /^\[([^[\]]+)\]$/.exec(line);
    if (header) {
      if (groups.has(header[1]!)) throw new Error(`line ${index + 1}: group [${header[1]}] twice`);
      group = new Map();
      groups.set(header[1]!, group);
      continue;
    }
    const entry = /^([A-Za-z0-9-]+(?:\[[A-Za-z_@.]+\])?) ?= ?(.*)$/.exec(line);
    if (!entry || !group) throw new Error(`line ${index + 1}: not a key=value line inside a group: ${line}`);
    if (group.has(entry[1]!)) throw new Error(`line ${index + 1}: ${entry[1]} twice`);
    group.set(entry[1]!, entry[2]!);
  }
  return groups;
}

/** An Exec value split into arguments the way the spec says (double quotes; \\ \" \` \$ escaped inside them). */
function execArguments(exec: string): string[] {
  const args: string[] = [];
  let current = '';
  let quoted = false;
  let started = false;
  for (let i = 0; i < exec.length; i += 1) {
    const char = exec[i]!;
    if (quoted) {
      if (char === '\\' && '"`$\\'.includes(exec[i + 1] ?? '')) current += exec[++i];
      else if (char === '"') quoted = false;
      else current += char;
    } else if (char === '"') {
      quoted = true;
      started = true;
    } else if (char === ' ') {
      if (started) args.push(current);
      current = '';
      started = false;
    } else {
      current += char;
      started = true;
    }
  }
  if (quoted) throw new Error(`unterminated quote in Exec=${exec}`);
  if (started) args.push(current);
  return args;
}

/** What electron-builder's own deb target would hand fpm for this configuration. */
interface DebTargetRun {
  /** fpm's arguments: options, then `source=target` mappings. */
  readonly fpmArgs: string[];
  /** The directory the app is installed to (`/opt/<productName>`). */
  readonly installDir: string;
  /** The menu entry electron-builder writes (/usr/share/applications/<executableName>.desktop). */
  readonly menuEntry: string;
  readonly afterInstall: string;
  readonly afterRemove: string;
}

const tempDir = useTempDirs();
const run = promisify(execFile);

/**
 * Runs electron-builder's real deb target (app-builder-lib FpmTarget) on a stand-in unpacked app and
 * stops it just before it starts fpm (its `effectiveOptionComputed` hook), keeping what fpm would
 * get. No Electron binary or fpm is needed. `homepage` is given here because package.json has none
 * and the deb target refuses to run without one (see build/README.md).
 */
async function runDebTarget(): Promise<DebTargetRun> {
  const dir = await tempDir();
  const unpacked = path.join(dir, 'linux-unpacked');
  await fs.mkdir(unpacked);
  await fs.writeFile(path.join(unpacked, 'sekimori'), '');
  let result: DebTargetRun | undefined;
  await electronBuilderBuild({
    projectDir: ROOT,
    targets: Platform.LINUX.createTarget('deb', Arch.x64),
    prepackaged: unpacked,
    config: { directories: { output: path.join(dir, 'out') }, extraMetadata: { homepage: 'https://sekimori.example.lg.jp' } },
    effectiveOptionComputed: async (options: unknown) => {
      const [fpmArgs, menuEntryFile] = options as [string[], string];
      const valueOf = (flag: string): string => fpmArgs[fpmArgs.indexOf(flag) + 1]!;
      const appMapping = fpmArgs.find((arg) => arg.startsWith(`${unpacked}/=`));
      result = {
        fpmArgs: [...fpmArgs],
        installDir: appMapping?.slice(`${unpacked}/=`.length) ?? '',
        menuEntry: await fs.readFile(menuEntryFile, 'utf8'),
        afterInstall: await fs.readFile(valueOf('--after-install'), 'utf8'),
        afterRemove: await fs.readFile(valueOf('--after-remove'), 'utf8'),
      };
      return true; // stop here: no fpm
    },
  });
  if (!result) throw new Error('electron-builder did not reach its fpm step');
  return result;
}

describe("the app's auto-start entry on Linux (build/linux/sekimori-app.desktop, the app .deb)", () => {
  let debRun: DebTargetRun;

  it('is a well-formed desktop entry that starts the app hidden from menus in every session', async () => {
    const groups = parseDesktopEntry(await fs.readFile(path.join(ROOT, AUTOSTART_SOURCE), 'utf8'));
    expect([...groups.keys()]).toEqual(['Desktop Entry']);
    const entry = groups.get('Desktop Entry')!;
    expect(entry.get('Type')).toBe('Application');
    expect(entry.get('Name')).toBe('Sekimori');
    expect(entry.get('Name[ja]')).toBe('関守');
    expect(entry.get('Comment[ja]')).toBeTruthy();
    expect(entry.get('NoDisplay')).toBe('true');
    expect(entry.get('X-GNOME-Autostart-enabled')).toBe('true');
    expect(entry.get('Terminal')).toBe('false');
    // Nothing that would switch it off or limit it to some desktops.
    for (const key of ['Hidden', 'OnlyShowIn', 'NotShowIn', 'X-GNOME-Autostart-Delay']) expect(entry.has(key), key).toBe(false);
    const [binary, ...args] = execArguments(entry.get('Exec')!);
    expect(args).toEqual(['--autostart']);
    expect(entry.get('TryExec')).toBe(binary);
    // An Exec argument with a space must be quoted (unquoted it would be two arguments).
    expect(entry.get('Exec')!.startsWith(`"${binary}" `)).toBe(true);
  });

  it("starts the binary where electron-builder's deb target installs the app (/opt/<productName>/<executableName>)", async () => {
    debRun = await runDebTarget();
    const config = await loadYaml();
    expect(debRun.installDir).toBe(`/opt/${config.productName}`);
    const entry = parseDesktopEntry(await fs.readFile(path.join(ROOT, AUTOSTART_SOURCE), 'utf8')).get('Desktop Entry')!;
    const [binary] = execArguments(entry.get('Exec')!);
    expect(binary).toBe(`${debRun.installDir}/${config.linux.executableName}`);
    // The same binary as electron-builder's own menu entry starts.
    const menu = parseDesktopEntry(debRun.menuEntry).get('Desktop Entry')!;
    expect(execArguments(menu.get('Exec')!)[0]).toBe(binary);
  }, 120_000);

  it('is a file of the app package at /etc/xdg/autostart, not a conffile (so `apt remove` deletes it)', async () => {
    debRun ??= await runDebTarget();
    const { fpmArgs } = debRun;
    expect(fpmArgs).toContain(`${AUTOSTART_SOURCE}=${AUTOSTART_TARGET}`);
    expect(fpmArgs).toContain('--deb-no-default-config-files');
    // fpm reads options first, then the file mappings: no option may come after a mapping.
    const firstMapping = fpmArgs.findIndex((arg) => !arg.startsWith('-') && arg.includes('=/'));
    expect(firstMapping).toBeGreaterThan(fpmArgs.indexOf('--deb-no-default-config-files'));
    expect(fpmArgs.slice(firstMapping).filter((arg) => arg.startsWith('-'))).toEqual([]);
  }, 120_000);

  it("leaves the entry to dpkg in the app package's maintainer scripts (valid bash)", async () => {
    debRun ??= await runDebTarget();
    for (const [name, script] of [['after-install', debRun.afterInstall], ['after-remove', debRun.afterRemove]] as const) {
      const file = path.join(await tempDir(), name);
      await fs.writeFile(file, script);
      await run('bash', ['-n', file]);
      // The postrm also runs on upgrade, after the new files are unpacked: deleting the entry there would lose it.
      const code = script.split('\n').filter((line) => !line.trimStart().startsWith('#'));
      expect(code.filter((line) => line.includes('autostart')), name).toEqual([]);
      expect(script, name).not.toMatch(/\$\{/); // every electron-builder macro was expanded
    }
    expect(debRun.afterInstall).toContain("'/opt/関守 Sekimori/sekimori'");
  }, 120_000);
});

describe('afterPack hook (build/after-pack.ts)', () => {
  /** A stand-in Electron binary: padding, the fuse sentinel, wire version 1, 8 fuses as Electron ships them. */
  async function fakeElectron(file: string): Promise<void> {
    const wire = Buffer.from([1, 8, ...'10110001'].map((value) => (typeof value === 'number' ? value : value.charCodeAt(0))));
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, Buffer.concat([Buffer.alloc(4096, 0x90), Buffer.from('dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX'), wire, Buffer.alloc(4096, 0x90)]));
  }

  const context = (appOutDir: string, platform: string): AfterPackContextLike => ({
    appOutDir,
    electronPlatformName: platform,
    packager: { appInfo: { productFilename: 'Sekimori' }, executableName: 'sekimori' },
  });

  it('flips the fuses in the packed Electron binary', async () => {
    const dir = await tempDir();
    const executable = electronExecutable(context(dir, 'linux'));
    expect(executable).toBe(path.join(dir, 'sekimori'));
    await fakeElectron(executable);
    await afterPack(context(dir, 'linux'));
    const wire = (await getCurrentFuseWire(executable)) as unknown as Record<number, number>;
    const on = 0x31;
    const off = 0x30;
    expect(wire[FuseV1Options.RunAsNode]).toBe(off);
    expect(wire[FuseV1Options.EnableNodeOptionsEnvironmentVariable]).toBe(off);
    expect(wire[FuseV1Options.EnableNodeCliInspectArguments]).toBe(off);
    expect(wire[FuseV1Options.OnlyLoadAppFromAsar]).toBe(on);
    expect(wire[FuseV1Options.EnableEmbeddedAsarIntegrityValidation]).toBe(on);
    expect(wire[FuseV1Options.EnableCookieEncryption]).toBe(on);
    // Left as Electron ships it.
    expect(wire[FuseV1Options.GrantFileProtocolExtraPrivileges]).toBe(on);
  });

  it('fails the build when the binary has no fuse wire', async () => {
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, 'sekimori'), Buffer.alloc(1024));
    await expect(afterPack(context(dir, 'linux'))).rejects.toThrow(/sentinel/);
  });

  it('refuses a Windows package without the agent runtime and its service host', async () => {
    const dir = await tempDir();
    await fakeElectron(path.join(dir, 'Sekimori.exe'));
    await expect(afterPack(context(dir, 'win32'))).rejects.toThrow(/sekimori-agent-service\.exe/);
    for (const file of WINDOWS_AGENT_FILES) {
      await fs.mkdir(path.dirname(path.join(dir, 'resources/agent', file)), { recursive: true });
      await fs.writeFile(path.join(dir, 'resources/agent', file), '');
    }
    await afterPack(context(dir, 'win32'));
    const wire = (await getCurrentFuseWire(path.join(dir, 'Sekimori.exe'))) as unknown as Record<number, number>;
    expect(wire[FuseV1Options.RunAsNode]).toBe(0x30);
  });
});

describe('the wrapped MSI (msiWrapped + build/msi-project.ts)', () => {
  /** electron-builder's msiWrapped template rendered the way its MsiTarget renders it. */
  async function renderWrappedMsi(wrappedInstallerArgs: string): Promise<string> {
    const template = (await fs.readFile(path.join(BUILDER_DIR, 'templates/msiWrapped/template.xml'), 'utf8'))
      .replace(/{{/g, '<%')
      .replace(/}}/g, '%>')
      .replace(/\${([^}]+)}/g, '<%=$1%>');
    return ejs.compile(template)({
      productId: '00000000-0000-0000-0000-000000000000',
      productName: '関守 Sekimori',
      upgradeCode: '00000000-0000-0000-0000-000000000001',
      version: '0.1.0',
      manufacturer: 'Sekimori project',
      compressionLevel: 'high',
      iconPath: null,
      exeSourcePath: 'C:\\build\\Sekimori Setup 0.1.0.exe',
      impersonate: 'no',
      wrappedInstallerArgs,
    });
  }

  const decode = (value: string): string => value.replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

  it('passes every installer property to the NSIS installer as /NAME="[NAME]", silently, as SYSTEM', async () => {
    const config = await loadYaml();
    const wxs = editMsiProject(await renderWrappedMsi(config.msiWrapped.wrappedInstallerArgs));
    const action = /<CustomAction Id="RunInstaller"([^>]*)\/>/.exec(wxs)?.[1] ?? '';
    const command = decode(/ExeCommand="([^"]*)"/.exec(action)?.[1] ?? '');
    expect(command.startsWith('/S ')).toBe(true);
    for (const name of MSI_PROPERTIES) expect(command).toContain(`/${name}="[${name}]"`);
    expect(action).toContain('Impersonate="no"');
    expect(action).toContain('HideTarget="yes"');
    for (const name of MSI_PROPERTIES) expect(wxs).toMatch(new RegExp(`<Property Id="${name}" Secure="yes"`));
    expect(wxs).toContain('<Property Id="ENROLLTOKEN" Secure="yes" Hidden="yes"/>');
  });

  it("fails the build when electron-builder's template no longer has what the hook edits", () => {
    expect(() => editMsiProject('<Wix></Wix>')).toThrow(/template changed/);
  });
});
