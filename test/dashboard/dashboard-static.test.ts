import fs from 'node:fs/promises';
import path from 'node:path';
import { ESLint } from 'eslint';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_CSRF_HEADER, AdminPaths } from '../../shared/api.js';
import { CONTENT_SECURITY_POLICY } from '../../server/app.js';
import { CSRF_HEADER, paths } from '../../server/dashboard/api-client.js';
import { DASHBOARD_SHARED_MODULES } from '../../server/routes/dashboard.js';
import { layerConfig } from '../../eslint.config.js';
import { ROOT } from '../helpers/processes.js';
import { bootServer, type TestServer } from '../server/helpers.js';

const SOURCE = path.join(ROOT, 'server/dashboard');
const BUILT = path.join(ROOT, 'dist/server/dashboard');

describe('the dashboard’s source renders data as text only', () => {
  it('never parses data as HTML or code (no innerHTML, outerHTML, insertAdjacentHTML, document.write, eval, Function)', async () => {
    const offenders: string[] = [];
    for (const name of await fs.readdir(SOURCE)) {
      if (!name.endsWith('.ts')) continue;
      const text = await fs.readFile(path.join(SOURCE, name), 'utf8');
      // Comments may name the forbidden APIs (dom.ts says why); code may not.
      const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      for (const pattern of [/\.innerHTML\b/, /\.outerHTML\b/, /insertAdjacentHTML/, /document\.write/, /\beval\(/, /new Function\(/, /\.srcdoc\b/]) {
        if (pattern.test(code)) offenders.push(`${name}: ${String(pattern)}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('has no inline script, no inline style and no event-handler attribute in its page', async () => {
    const html = await fs.readFile(path.join(SOURCE, 'index.html'), 'utf8');
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBe(1);
    for (const [, attributes, body] of scripts) {
      expect(attributes).toMatch(/\bsrc="\.\/app\.js"/);
      expect(body!.trim()).toBe('');
    }
    expect(html).not.toMatch(/<style\b/);
    expect(html).not.toMatch(/\sstyle=/);
    expect(html).not.toMatch(/\son[a-z]+=/i);
  });

  it('uses the shared names for the CSRF header and the paths', () => {
    expect(CSRF_HEADER).toBe(ADMIN_CSRF_HEADER);
    expect(paths).toEqual(AdminPaths);
  });
});

describe('the dashboard’s layer (eslint zones)', () => {
  async function lintAs(file: string, code: string): Promise<string[]> {
    const eslint = new ESLint({ cwd: ROOT, overrideConfigFile: true, overrideConfig: layerConfig as ESLint.Options['overrideConfig'] });
    const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
    return result!.messages.map((message) => `${message.ruleId}: ${message.message}`);
  }

  it('refuses Node built-ins in dashboard pages', async () => {
    expect((await lintAs('server/dashboard/forbidden.ts', "import fs from 'node:fs';\nexport const x = fs;\n")).join('\n')).toMatch(/no-restricted-imports: .*no Node built-ins/);
  });

  it('refuses a value import of a package (a page cannot resolve it)', async () => {
    expect((await lintAs('server/dashboard/forbidden.ts', "import { z } from 'zod';\nexport const x = z;\n")).join('\n')).toMatch(/no-restricted-imports: .*no packages/);
  });

  it('refuses importing the server around it', async () => {
    const messages = await lintAs('server/dashboard/forbidden.ts', "import { createServer } from '../app.js';\nexport const x = createServer;\n");
    expect(messages.join('\n')).toMatch(/import\/no-restricted-paths: .*server\/dashboard\/ is browser code/);
  });

  it('allows shared/ and its own modules', async () => {
    const messages = await lintAs('server/dashboard/allowed.ts', "import { t } from '../../shared/i18n.js';\nimport { h } from './dom.js';\nexport const x = [t, h];\n");
    expect(messages).toEqual([]);
  });
});

describe('the dashboard as the server serves it (built files)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await bootServer({ dashboardDir: BUILT });
  });
  afterAll(async () => {
    await server.cleanup();
  });

  it('serves the page with a strict CSP and the security headers', async () => {
    const page = await server.app.inject({ method: 'GET', url: '/dashboard/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'", "frame-ancestors 'none'"]) {
      expect(CONTENT_SECURITY_POLICY.split('; ')).toContain(directive);
    }
    expect(page.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' });
    // The API's answers carry them too.
    expect((await server.app.inject({ method: 'GET', url: '/api/v1/health' })).headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
  });

  it('redirects / to the dashboard', async () => {
    const root = await server.app.inject({ method: 'GET', url: '/' });
    expect(root.statusCode).toBe(302);
    expect(root.headers.location).toBe('/dashboard/');
  });

  it('serves every module the pages import, and nothing else from disk', async () => {
    const scripts = (await fs.readdir(BUILT)).filter((name) => name.endsWith('.js'));
    expect(scripts).toContain('app.js');
    for (const script of scripts) {
      const text = await fs.readFile(path.join(BUILT, script), 'utf8');
      for (const [, specifier] of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
        expect(specifier, `${script} imports ${specifier}`).toMatch(/^\.\.?\//);
        const url = new URL(specifier!, `http://localhost/dashboard/${script}`).pathname;
        const answer = await server.app.inject({ method: 'GET', url });
        expect(answer.statusCode, `${script} → ${url}`).toBe(200);
        expect(answer.headers['content-type']).toBe('text/javascript; charset=utf-8');
      }
    }
    for (const shared of DASHBOARD_SHARED_MODULES) {
      const text = (await server.app.inject({ method: 'GET', url: `/shared/${shared}` })).body;
      expect(text).not.toMatch(/from\s+['"](?!\.)/);
    }
    for (const url of ['/dashboard/nothing.js', '/dashboard/app.ts', '/dashboard/app.d.ts', '/dashboard/tsconfig.tsbuildinfo', '/dashboard/..%2Fcli.js', '/shared/api.js', '/shared/%2E%2E%2Fserver%2Fcli.js']) {
      expect((await server.app.inject({ method: 'GET', url })).statusCode, url).toBe(404);
    }
  });
});
