import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MSI_PROPERTIES } from '../../build/msi-project.js';
import { ROOT } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

// build/windows/installer.nsh cannot run here (no Windows). It is compiled with Debian's makensis
// in a harness standing in for electron-builder's script, and read statically.

const run = promisify(execFile);
const tempDir = useTempDirs();
const INCLUDE = path.join(ROOT, 'build/windows/installer.nsh');
const hasMakensis = ((): boolean => {
  try {
    execFileSync('makensis', ['-VERSION'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** The script's lines without comments. */
async function codeLines(): Promise<string[]> {
  const text = await fs.readFile(INCLUDE, 'utf8');
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith(';') && !line.startsWith('#'));
}

/** The command line of every program the script starts. */
async function execLines(): Promise<string[]> {
  return (await codeLines()).filter((line) => /^(nsExec::|Exec\b|ExecWait\b|ExecShell\b)/.test(line));
}

/**
 * What of an NSIS single-quoted command string lies outside double quotes (Windows command-line
 * rules: `\"` is a literal quote inside a quoted argument).
 */
const outsideQuotes = (line: string): string =>
  line
    .replace(/^[^']*'/, '')
    .replace(/'[^']*$/, '')
    .replace(/\\"/g, '')
    .replace(/"[^"]*"/g, '""');

describe('Windows installer include (build/windows/installer.nsh)', () => {
  it('defines the macros electron-builder inserts: customInit, customInstall, customUnInit, customUnInstall', async () => {
    const text = await fs.readFile(INCLUDE, 'utf8');
    for (const name of ['customInit', 'customInstall', 'customUnInit', 'customUnInstall']) expect(text).toMatch(new RegExp(`^!macro ${name}$`, 'm'));
  });

  it('reads /CONFIG= and every MSI property as an installer switch', async () => {
    const text = await fs.readFile(INCLUDE, 'utf8');
    for (const name of MSI_PROPERTIES) expect(text).toContain(`\${GetOptions} $0 "/${name}="`);
  });

  it('never puts the /CONFIG path or a property value on a command line, and never runs a shell', async () => {
    const lines = await execLines();
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) {
      expect(line, line).not.toMatch(/\$sekimori(Config|ServerUrl|Token|Tier|Key)\b/);
      expect(line, line).not.toMatch(/cmd\.exe|powershell/i);
      // Every program is started by its full path ($SYSDIR), quoted.
      expect(line, line).toMatch(/^nsExec::ExecToLog '"\$SYSDIR\\(sc|net|icacls)\.exe" /);
      // Every variable on the command line sits inside double quotes.
      expect(outsideQuotes(line), line).not.toMatch(/\$[A-Za-z]/);
    }
    // The config reaches the state directory only through NSIS's own file functions.
    const code = await codeLines();
    expect(code.filter((line) => line.includes('$sekimoriConfig') && /^(CopyFiles|Rename|Delete)/.test(line))).toEqual([
      'CopyFiles /SILENT /FILESONLY "$sekimoriConfig" "$sekimoriData\\Sekimori\\agent\\config.json.new"',
    ]);
  });

  it('refuses wildcards and quotes in the /CONFIG path and checks every property against a character set', async () => {
    const text = await fs.readFile(INCLUDE, 'utf8');
    expect(text).toContain(`!define SEKIMORI_PATH_FORBIDDEN '*?"<>|'`);
    expect(text).toMatch(/Push \$sekimoriConfig\s+Push `\$\{SEKIMORI_PATH_FORBIDDEN\}`\s+Push "none"\s+Call SekimoriCheckChars/);
    for (const [variable, set] of [['ServerUrl', 'URL'], ['Token', 'TOKEN'], ['Key', 'KEY']]) {
      expect(text).toMatch(new RegExp(`Push \\$sekimori${variable}\\s+Push "\\$\\{SEKIMORI_${set}_CHARS\\}"\\s+Push "only"\\s+Call SekimoriCheckChars`));
    }
    // None of the JSON-significant characters may pass into the config it writes.
    const sets = [...text.matchAll(/!define SEKIMORI_(URL|TOKEN|KEY)_CHARS "([^"]*)"/g)].map((match) => match[2]!);
    expect(sets).toHaveLength(3);
    for (const set of sets) expect(set).not.toMatch(/["\\]/);
    expect(text).toMatch(/\$sekimoriTier S!= "mynumber"[\s\S]*S!= "lgwan"[\s\S]*S!= "internet"/);
  });

  it('makes %ProgramData%\\Sekimori owned by Administrators and accessible to SYSTEM and Administrators only (by SID)', async () => {
    const lines = await execLines();
    expect(lines).toContain(`nsExec::ExecToLog '"$SYSDIR\\icacls.exe" "$sekimoriData\\Sekimori" /setowner \${SEKIMORI_SID_ADMINS} /T /C /Q'`);
    expect(lines).toContain(`nsExec::ExecToLog '"$SYSDIR\\icacls.exe" "$sekimoriData\\Sekimori" /inheritance:r /grant:r \${SEKIMORI_SID_SYSTEM}:(OI)(CI)F \${SEKIMORI_SID_ADMINS}:(OI)(CI)F /Q'`);
    const text = await fs.readFile(INCLUDE, 'utf8');
    expect(text).toContain('!define SEKIMORI_SID_SYSTEM "*S-1-5-18"');
    expect(text).toContain('!define SEKIMORI_SID_ADMINS "*S-1-5-32-544"');
  });

  it('registers the agent as an automatic LocalSystem service with a quoted path and restart on failure', async () => {
    const lines = await execLines();
    const create = lines.find((line) => line.includes('sc.exe" create'));
    expect(create).toContain('binPath= "\\"$INSTDIR\\resources\\agent\\sekimori-agent-service.exe\\""');
    expect(create).toContain('start= auto');
    expect(create).toContain('obj= LocalSystem');
    expect(lines.find((line) => line.includes('sc.exe" config'))).toContain('binPath= "\\"$INSTDIR\\resources\\agent\\sekimori-agent-service.exe\\""');
    expect(lines).toContain(`nsExec::ExecToLog '"$SYSDIR\\sc.exe" failure \${SEKIMORI_SERVICE} reset= 86400 actions= restart/5000/restart/5000/restart/5000'`);
    expect(lines).toContain(`nsExec::ExecToLog '"$SYSDIR\\sc.exe" failureflag \${SEKIMORI_SERVICE} 1'`);
    // The service host's configuration runs the agent's own node.exe.
    const xml = await fs.readFile(path.join(ROOT, 'build/windows/service-host/sekimori-agent-service.xml'), 'utf8');
    expect(xml).toContain('<id>sekimori-agent</id>');
    expect(xml).toContain('<executable>%BASE%\\node.exe</executable>');
    expect(xml).toContain('<arguments>"%BASE%\\dist\\agent\\cli.js" run</arguments>');
  });

  it('refuses a non-administrator uninstall, and removes the service and the auto-start entry (not on upgrade)', async () => {
    const text = await fs.readFile(INCLUDE, 'utf8');
    const unInit = /!macro customUnInit\n([\s\S]*?)!macroend/.exec(text)?.[1] ?? '';
    expect(unInit).toMatch(/\$\{IfNot\} \$\{UAC_IsAdmin\}\s+SetErrorLevel 740[\s\S]*Quit/);
    const unInstall = /!macro customUnInstall\n([\s\S]*?)!macroend/.exec(text)?.[1] ?? '';
    expect(unInstall).toContain('${IfNot} ${isUpdated}');
    expect(unInstall).toContain(`nsExec::ExecToLog '"$SYSDIR\\sc.exe" delete \${SEKIMORI_SERVICE}'`);
    expect(unInstall).toContain('DeleteRegValue HKLM "${SEKIMORI_RUN_KEY}" "${SEKIMORI_RUN_VALUE}"');
  });

  it('starts the app at every logon from the per-machine Run key, quoted, with --autostart, and removes it on uninstall', async () => {
    const text = await fs.readFile(INCLUDE, 'utf8');
    expect(text).toContain('!define SEKIMORI_RUN_KEY "Software\\Microsoft\\Windows\\CurrentVersion\\Run"');
    expect(text).toContain('!define SEKIMORI_RUN_VALUE "Sekimori"');
    expect(text).toContain('!define SEKIMORI_AUTOSTART_ARG "--autostart"');
    const install = /!macro customInstall\n([\s\S]*?)!macroend/.exec(text)?.[1] ?? '';
    const writes = install.split('\n').map((line) => line.trim()).filter((line) => line.startsWith('WriteReg'));
    // HKLM only (HKCU would be the installing administrator's own session, and removable by users).
    expect(writes).toEqual([`WriteRegStr HKLM "\${SEKIMORI_RUN_KEY}" "\${SEKIMORI_RUN_VALUE}" '"$INSTDIR\\\${APP_EXECUTABLE_FILENAME}" \${SEKIMORI_AUTOSTART_ARG}'`]);
    // Every Run key write or delete in the script is HKLM's.
    expect((await codeLines()).filter((line) => /^(WriteReg|DeleteReg)/.test(line) && !line.includes(' HKLM '))).toEqual([]);
    const unInstall = /!macro customUnInstall\n([\s\S]*?)!macroend/.exec(text)?.[1] ?? '';
    expect(unInstall).toContain('DeleteRegValue HKLM "${SEKIMORI_RUN_KEY}" "${SEKIMORI_RUN_VALUE}"');
  });

  it.skipIf(!hasMakensis)('compiles with makensis, warnings as errors, in the installer and the uninstaller pass (skipped where Debian nsis is not installed)', async () => {
    const dir = await tempDir();
    // What electron-builder defines before the include: the executable name, ${isUpdated}, ${UAC_IsAdmin}.
    await fs.writeFile(
      path.join(dir, 'common.nsh'),
      [
        'Unicode true',
        // Uncompressed, so the compiled string table can be read below.
        'SetCompress off',
        'RequestExecutionLevel admin',
        '!define APP_EXECUTABLE_FILENAME "Sekimori.exe"',
        '!include LogicLib.nsh',
        '!macro _isUpdated _a _b _t _f',
        '  StrCmp "" "updated" `${_t}` `${_f}`',
        '!macroend',
        '!define isUpdated `"" isUpdated ""`',
        '!macro _UAC_IsAdmin _a _b _t _f',
        '  UserInfo::GetAccountType',
        '  Exch $0',
        '  StrCmp $0 "Admin" 0 +3',
        '  Pop $0',
        '  Goto `${_t}`',
        '  Pop $0',
        '  Goto `${_f}`',
        '!macroend',
        '!define UAC_IsAdmin `"" UAC_IsAdmin ""`',
        `!include "${INCLUDE}"`,
        '',
      ].join('\n'),
    );
    await fs.writeFile(
      path.join(dir, 'installer.nsi'),
      ['Name "harness"', 'OutFile "installer.exe"', '!include "common.nsh"', 'Function .onInit', '  !insertmacro customInit', 'FunctionEnd', 'Section "install"', '  !insertmacro customInstall', 'SectionEnd', ''].join('\n'),
    );
    await fs.writeFile(
      path.join(dir, 'uninstaller.nsi'),
      [
        'Name "harness"',
        'OutFile "uninstaller-writer.exe"',
        '!define BUILD_UNINSTALLER',
        '!include "common.nsh"',
        'Section "install"',
        '  WriteUninstaller "$EXEDIR\\uninstall.exe"',
        'SectionEnd',
        'Function un.onInit',
        '  !insertmacro customUnInit',
        'FunctionEnd',
        'Section "Uninstall"',
        '  !insertmacro customUnInstall',
        'SectionEnd',
        '',
      ].join('\n'),
    );
    for (const script of ['installer.nsi', 'uninstaller.nsi']) {
      const result = await run('makensis', ['-V2', '-WX', '-INPUTCHARSET', 'UTF8', script], { cwd: dir }).catch((error: { stdout: string; stderr: string }) => {
        throw new Error(`makensis ${script} failed:\n${error.stdout}\n${error.stderr}`);
      });
      expect(result.stderr, script).toBe('');
    }
    // What the compiled installer writes (NSIS Unicode strings are UTF-16LE; $INSTDIR is a code of its own).
    const utf16 = (text: string): Buffer => Buffer.from(text, 'utf16le');
    const installer = await fs.readFile(path.join(dir, 'installer.exe'));
    expect(installer.includes(utf16('Software\\Microsoft\\Windows\\CurrentVersion\\Run'))).toBe(true);
    expect(installer.includes(utf16('\\Sekimori.exe" --autostart'))).toBe(true);
    const uninstaller = await fs.readFile(path.join(dir, 'uninstaller-writer.exe'));
    expect(uninstaller.includes(utf16('Software\\Microsoft\\Windows\\CurrentVersion\\Run'))).toBe(true);
  });
});
