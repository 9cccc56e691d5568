import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDeb } from '../../build/package-deb.js';
import { dependencyClosure, packageOf } from '../../build/stage-agent.js';
import { ROOT } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';
import { hasSystemdAnalyze, parseUnit, verifyUnit } from './systemd-helpers.js';

// Builds the real package from this checkout's dist/ (gzip: the same contents as the release's
// xz, built in a fraction of the time), then inspects it and installs it into scratch roots:
// `dpkg-deb -x` + the maintainer scripts with SEKIMORI_ROOT (their test hook: every path under
// the scratch root, systemctl on its unit files only).

const run = promisify(execFile);
const tempDir = useTempDirs();
const version = (JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let work = '';
let deb = '';
let control = '';

/** `dpkg-deb -c` as path → "mode owner". */
async function contents(): Promise<Map<string, string>> {
  const { stdout } = await run('dpkg-deb', ['-c', deb], { maxBuffer: 64 * 1024 * 1024 });
  const entries = new Map<string, string>();
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [mode, owner, , , , ...rest] = line.split(/\s+/);
    entries.set(rest.join(' ').replace(/^\.\//, '/').replace(/ -> .*$/, ''), `${mode} ${owner}`);
  }
  return entries;
}

/** The package installed into a fresh scratch root (files only), with its maintainer scripts in `<root>/DEBIAN`. */
async function extract(): Promise<string> {
  const root = await tempDir();
  await run('dpkg-deb', ['-x', deb, root]);
  await run('dpkg-deb', ['-e', deb, path.join(root, 'DEBIAN')]);
  return root;
}

async function maintainerScript(root: string, script: 'postinst' | 'prerm' | 'postrm', ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run('/bin/sh', [path.join(root, 'DEBIAN', script), ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SEKIMORI_ROOT: root } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

const modeOf = async (file: string): Promise<string> => ((await fs.stat(file)).mode & 0o7777).toString(8).padStart(4, '0');

const IT_CONFIG = {
  serverUrl: 'https://sekimori.example.lg.jp',
  enrollToken: 'abcdefghijklmnopqrstuvwxyz012345',
  tier: 'lgwan',
  policyPublicKey: 'MCowBQYDK2VwAyEA' + 'A'.repeat(44),
};

describe('the Linux package (npm run package:deb)', () => {
  beforeAll(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'sekimori-deb-test-'));
    deb = await buildDeb({ outDir: work, compression: 'gzip' });
    control = (await run('dpkg-deb', ['-I', deb])).stdout;
  }, 300_000);

  afterAll(async () => {
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('is named and described for this version and architecture, with the dependencies the agent runs', () => {
    expect(path.basename(deb)).toBe(`sekimori-agent_${version}_amd64.deb`);
    expect(control).toMatch(/^ Package: sekimori-agent$/m);
    expect(control).toMatch(new RegExp(`^ Version: ${version.replace(/\./g, '\\.')}$`, 'm'));
    expect(control).toMatch(/^ Architecture: amd64$/m);
    const depends = /^ Depends: (.*)$/m.exec(control)?.[1] ?? '';
    for (const dependency of ['libc6', 'libstdc++6', 'libudev1', 'systemd', 'iproute2', 'util-linux']) expect(depends).toContain(dependency);
    for (const script of ['postinst', 'prerm', 'postrm']) expect(control).toMatch(new RegExp(`\\*\\s+${script}\\s`));
    expect(control).toMatch(/conffiles/);
  });

  it('holds the runtime, the built agent, the unit, the udev rule, the config template and the PAM example, with the right modes', async () => {
    const files = await contents();
    expect(files.get('/usr/lib/sekimori/node')).toBe('-rwxr-xr-x root/root');
    expect(files.get('/usr/lib/sekimori/dist/agent/cli.js')).toBe('-rwxr-xr-x root/root');
    expect(files.get('/usr/lib/sekimori/package.json')).toBe('-rw-r--r-- root/root');
    expect(files.get('/usr/bin/sekimori-agent')).toBe('-rwxr-xr-x root/root');
    expect(files.get('/lib/systemd/system/sekimori-agent.service')).toBe('-rw-r--r-- root/root');
    expect(files.get('/lib/udev/rules.d/70-sekimori-usb-default-deny.rules')).toBe('-rw-r--r-- root/root');
    expect(files.get('/etc/sekimori/config.json.example')).toBe('-rw-r--r-- root/root');
    expect(files.get('/usr/share/doc/sekimori-agent/pam.example')).toBe('-rw-r--r-- root/root');
    expect(files.get('/usr/share/doc/sekimori-agent/README.md')).toBe('-rw-r--r-- root/root');
    for (const [file, mode] of files) expect(mode, file).toMatch(/ root\/root$/);
    const names = [...files.keys()];
    // The agent's code and its production packages, nothing of the server, the app or the build.
    expect(names).toContain('/usr/lib/sekimori/dist/shared/journal.js');
    for (const dependency of ['zod', 'winston', 'usb', 'otpauth', 'qrcode']) expect(names, dependency).toContain(`/usr/lib/sekimori/node_modules/${dependency}/package.json`);
    for (const absent of ['/usr/lib/sekimori/dist/server/', '/usr/lib/sekimori/dist/main/', '/usr/lib/sekimori/node_modules/fastify/', '/usr/lib/sekimori/node_modules/better-sqlite3/', '/usr/lib/sekimori/node_modules/electron/', '/usr/lib/sekimori/node_modules/typescript/']) {
      expect(names.filter((name) => name.startsWith(absent)), absent).toEqual([]);
    }
    expect(names.filter((name) => /\.(map|d\.ts)$/.test(name) && name.includes('/dist/'))).toEqual([]);
    // No desktop integration: the app's auto-start entry belongs to the app's own package (electron-builder), not the agent's.
    expect(names.filter((name) => name.startsWith('/etc/xdg/') || name.startsWith('/usr/share/applications/') || name.endsWith('.desktop'))).toEqual([]);
    // node-usb's prebuilt binding for this platform only.
    const prebuilds = names.filter((name) => name.includes('/usb/prebuilds/') && name.endsWith('.node'));
    expect(prebuilds.length).toBeGreaterThan(0);
    for (const prebuild of prebuilds) expect(prebuild).toContain('/usb/prebuilds/linux-x64/');
  });

  it('ships the PAM line of the README and a config template the agent accepts', async () => {
    const root = await extract();
    const pam = await fs.readFile(path.join(root, 'usr/share/doc/sekimori-agent/pam.example'), 'utf8');
    expect(pam.split('\n').filter((line) => line.startsWith('auth'))).toEqual(['auth required pam_exec.so quiet expose_authtok /usr/lib/sekimori/node /usr/lib/sekimori/dist/agent/cli.js pam-verify']);
    const check = await run(path.join(root, 'usr/lib/sekimori/node'), [
      '--input-type=module',
      '-e',
      'const { AgentConfigSchema, readJsonFile } = await import(process.argv[1]); console.log(JSON.stringify(await readJsonFile(process.argv[2], AgentConfigSchema)));',
      path.join(root, 'usr/lib/sekimori/dist/agent/state.js'),
      path.join(root, 'etc/sekimori/config.json.example'),
    ]);
    expect(JSON.parse(check.stdout)).toMatchObject({ tier: 'lgwan' });
  });

  it('has maintainer scripts that are valid sh, guard systemd for chroots, and only purge removes state', async () => {
    const root = await extract();
    for (const script of ['postinst', 'prerm', 'postrm']) {
      expect(await modeOf(path.join(root, 'DEBIAN', script)), script).toBe('0755');
      await run('/bin/sh', ['-n', path.join(root, 'DEBIAN', script)]);
    }
    const postinst = await fs.readFile(path.join(root, 'DEBIAN/postinst'), 'utf8');
    expect(postinst).toMatch(/\[ -d \/run\/systemd\/system \][\s\S]*systemctl daemon-reload[\s\S]*systemctl restart "\$UNIT"/);
    const prerm = await fs.readFile(path.join(root, 'DEBIAN/prerm'), 'utf8');
    expect(prerm).toMatch(/remove\|deconfigure\)[\s\S]*systemctl stop "\$UNIT"[\s\S]*disable/);
    const postrm = await fs.readFile(path.join(root, 'DEBIAN/postrm'), 'utf8');
    expect(postrm).toMatch(/purge\)\s+#[^\n]*\n\s+rm -rf "\$ROOT\/var\/lib\/sekimori" "\$ROOT\/etc\/sekimori"/);
  });

  it('installs into a scratch root: IT config moved into the 0700 state directory as 0600, token gone from /etc, service enabled', async () => {
    const root = await extract();
    await fs.writeFile(path.join(root, 'etc/sekimori/config.json'), JSON.stringify(IT_CONFIG), { mode: 0o644 });
    const result = await maintainerScript(root, 'postinst', 'configure');
    expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(await modeOf(path.join(root, 'var/lib/sekimori'))).toBe('0700');
    expect(await modeOf(path.join(root, 'var/lib/sekimori/config.json'))).toBe('0600');
    expect(JSON.parse(await fs.readFile(path.join(root, 'var/lib/sekimori/config.json'), 'utf8'))).toEqual(IT_CONFIG);
    await expect(fs.access(path.join(root, 'etc/sekimori/config.json'))).rejects.toThrow(/ENOENT/);
    await fs.access(path.join(root, 'etc/sekimori/config.json.example'));
    expect(await fs.readlink(path.join(root, 'etc/systemd/system/multi-user.target.wants/sekimori-agent.service'))).toBe('/lib/systemd/system/sekimori-agent.service');

    // What the unit starts is there, executable, and runs from the scratch root alone.
    const service = parseUnit(await fs.readFile(path.join(root, 'lib/systemd/system/sekimori-agent.service'), 'utf8')).get('Service')!;
    const [node, cli, ...args] = service.find(([key]) => key === 'ExecStart')![1].split(' ');
    expect(await modeOf(path.join(root, node!))).toBe('0755');
    await fs.access(path.join(root, cli!));
    expect(args).toEqual(['run', '--state', '/var/lib/sekimori']);
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    expect((await run(path.join(root, node!), [path.join(root, cli!), '--version'], { env })).stdout.trim()).toBe(version);
    const status = JSON.parse((await run(path.join(root, node!), [path.join(root, cli!), 'status', '--state', path.join(root, 'var/lib/sekimori'), '--json'], { env })).stdout);
    expect(status).toMatchObject({ running: false, enrolled: false, journalLength: 0 });
  });

  it('imports every package the agent uses from the installed tree alone (native usb binding included)', async () => {
    const root = await extract();
    const lib = path.join(root, 'usr/lib/sekimori');
    for (const name of ['zod', 'winston', 'usb', 'otpauth', 'qrcode']) {
      const { stdout } = await run(path.join(lib, 'node'), ['--input-type=module', '-e', `const m = await import(${JSON.stringify(name)}); console.log(Object.keys(m).length > 0)`], { cwd: lib, env: { PATH: '/usr/bin:/bin' } });
      expect(stdout.trim(), name).toBe('true');
    }
  });

  it.skipIf(!hasSystemdAnalyze)('passes systemd-analyze verify inside the installed scratch root (skipped without apt systemd)', async () => {
    const root = await extract();
    expect(await verifyUnit(root, path.join(root, 'lib/systemd/system/sekimori-agent.service'))).toBe('');
  });

  it('refuses an invalid IT config: the install stops with the reason, the file stays in /etc (0600), the state is untouched', async () => {
    const root = await extract();
    await fs.writeFile(path.join(root, 'etc/sekimori/config.json'), JSON.stringify({ ...IT_CONFIG, tier: 'wrong' }), { mode: 0o644 });
    const result = await maintainerScript(root, 'postinst', 'configure');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/tier/);
    expect(result.stderr).toMatch(/left in place/);
    expect(await modeOf(path.join(root, 'etc/sekimori/config.json'))).toBe('0600');
    await expect(fs.access(path.join(root, 'var/lib/sekimori/config.json'))).rejects.toThrow(/ENOENT/);
  });

  it('on remove: disables the service, gives USB root hubs the kernel default back, keeps the state; on purge: deletes it', async () => {
    const root = await extract();
    await fs.writeFile(path.join(root, 'etc/sekimori/config.json'), JSON.stringify(IT_CONFIG));
    expect((await maintainerScript(root, 'postinst', 'configure')).code).toBe(0);
    await fs.writeFile(path.join(root, 'var/lib/sekimori/journal.jsonl'), '');
    // A fake sysfs with two root hubs the agent had set to default-deny.
    for (const hub of ['usb1', 'usb2']) {
      await fs.mkdir(path.join(root, 'sys/bus/usb/devices', hub), { recursive: true });
      await fs.writeFile(path.join(root, 'sys/bus/usb/devices', hub, 'authorized_default'), '0\n');
    }

    expect((await maintainerScript(root, 'prerm', 'remove')).code).toBe(0);
    await expect(fs.lstat(path.join(root, 'etc/systemd/system/multi-user.target.wants/sekimori-agent.service'))).rejects.toThrow(/ENOENT/);
    for (const hub of ['usb1', 'usb2']) expect(await fs.readFile(path.join(root, 'sys/bus/usb/devices', hub, 'authorized_default'), 'utf8')).toBe('1\n');
    expect((await maintainerScript(root, 'postrm', 'remove')).code).toBe(0);
    await fs.access(path.join(root, 'var/lib/sekimori/journal.jsonl'));

    expect((await maintainerScript(root, 'postrm', 'purge')).code).toBe(0);
    await expect(fs.access(path.join(root, 'var/lib/sekimori'))).rejects.toThrow(/ENOENT/);
    await expect(fs.access(path.join(root, 'etc/sekimori'))).rejects.toThrow(/ENOENT/);
  });

  it('keeps the service running on upgrade (prerm upgrade touches nothing)', async () => {
    const root = await extract();
    expect((await maintainerScript(root, 'postinst', 'configure')).code).toBe(0);
    await fs.mkdir(path.join(root, 'sys/bus/usb/devices/usb1'), { recursive: true });
    await fs.writeFile(path.join(root, 'sys/bus/usb/devices/usb1/authorized_default'), '0\n');
    expect((await maintainerScript(root, 'prerm', 'upgrade', version)).code).toBe(0);
    await fs.lstat(path.join(root, 'etc/systemd/system/multi-user.target.wants/sekimori-agent.service'));
    expect(await fs.readFile(path.join(root, 'sys/bus/usb/devices/usb1/authorized_default'), 'utf8')).toBe('0\n');
  });
});

describe('the agent runtime closure (build/stage-agent.ts)', () => {
  const lock = {
    lockfileVersion: 3,
    packages: {
      '': {},
      'node_modules/a': { dependencies: { b: '1', c: '1' }, optionalDependencies: { missing: '1' } },
      'node_modules/a/node_modules/b': { dependencies: { c: '1' } },
      'node_modules/b': { dev: true },
      'node_modules/c': { peerDependencies: { d: '1', e: '1' }, peerDependenciesMeta: { e: { optional: true } } },
      'node_modules/d': {},
      'node_modules/devonly': { dev: true },
    },
  };

  it('follows Node resolution through nested node_modules, optional and peer dependencies', () => {
    expect(dependencyClosure(lock, ['a'])).toEqual(['node_modules/a', 'node_modules/a/node_modules/b', 'node_modules/c', 'node_modules/d']);
  });

  it('refuses a missing package and a devDependency imported at run time', () => {
    expect(() => dependencyClosure(lock, ['nothere'])).toThrow(/not in package-lock/);
    expect(() => dependencyClosure(lock, ['devonly'])).toThrow(/devDependency/);
  });

  it('names packages from specifiers and ignores builtins and relative paths', () => {
    expect(['zod', 'zod/v4', '@scope/pkg/sub', 'node:fs', 'fs', './x.js', '../shared/y.js'].map(packageOf)).toEqual(['zod', 'zod', '@scope/pkg', null, null, null, null]);
  });
});
