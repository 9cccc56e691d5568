import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { layerConfig } from '../../eslint.config.js';
import { ROOT } from '../helpers/processes.js';

const run = promisify(execFile);

/** Lints `code` as if it lived at `file` (relative to the repo root), with the layer rules only. */
async function lintAs(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: ROOT, overrideConfigFile: true, overrideConfig: layerConfig as ESLint.Options['overrideConfig'] });
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return result!.messages.map((message) => `${message.ruleId}: ${message.message}`);
}

describe('layer boundaries (DESIGN.md §3)', () => {
  it('refuses electron in agent/', async () => {
    const messages = await lintAs('agent/forbidden.ts', "import { app } from 'electron';\nexport const x = app;\n");
    expect(messages.join('\n')).toMatch(/no-restricted-imports: .*electron is only for main/);
  });

  it('refuses node:fs in shared/', async () => {
    const messages = await lintAs('shared/forbidden.ts', "import fs from 'node:fs';\nexport const x = fs;\n");
    expect(messages.join('\n')).toMatch(/no-restricted-imports: .*no Node built-ins/);
  });

  it('refuses a sideways import from main/ into agent/', async () => {
    const messages = await lintAs('main/forbidden.ts', "import { startAgent } from '../agent/main.js';\nexport const x = startAgent;\n");
    expect(messages.join('\n')).toMatch(/import\/no-restricted-paths: .*main\/ may not import from agent\//);
  });

  it('refuses server/ importing agent/', async () => {
    const messages = await lintAs('server/forbidden.ts', "import { Journal } from '../agent/journal/journal.js';\nexport const x = Journal;\n");
    expect(messages.join('\n')).toMatch(/import\/no-restricted-paths: .*server\/ may not import from agent\//);
  });

  it('allows agent/ to import shared/ and node built-ins', async () => {
    const messages = await lintAs('agent/allowed.ts', "import fs from 'node:fs';\nimport { GENESIS_HASH } from '../shared/journal.js';\nexport const x = [fs, GENESIS_HASH];\n");
    expect(messages).toEqual([]);
  });

  it('fails the type-check of shared/ when it imports node:fs (types: [])', async () => {
    const fixture = path.join(ROOT, 'test/fixtures/layers/shared/tsconfig.json');
    const result = await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', fixture, '--noEmit']).then(
      () => ({ code: 0, stdout: '' }),
      (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
    );
    expect(result.code).not.toBe(0);
    expect(result.stdout).toMatch(/Cannot find module 'node:fs'|TS2307|TS2591/);
  });
});
