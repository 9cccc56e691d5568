import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/processes.js';

/**
 * The renderer pages as files: text only (no markup from data), the same strict CSP as the lock
 * screen, nothing inline, and no module a page loads reaches zod (`shared/ipc.ts` is type-only there).
 * Reads the sources and dist/renderer (built by the global setup).
 */
const SOURCE = path.join(ROOT, 'renderer');
const BUILT = path.join(ROOT, 'dist');
const PAGES = ['lock', 'status', 'request'] as const;

const cspOf = (html: string): string | null => /<meta http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1] ?? null;

describe('renderer pages', () => {
  it('never parse data as HTML or code', async () => {
    const offenders: string[] = [];
    for (const name of await fs.readdir(SOURCE)) {
      if (!name.endsWith('.ts')) continue;
      const code = (await fs.readFile(path.join(SOURCE, name), 'utf8')).replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      for (const pattern of [/\.innerHTML\b/, /\.outerHTML\b/, /insertAdjacentHTML/, /document\.write/, /\beval\(/, /new Function\(/, /\.srcdoc\b/, /createContextualFragment/, /DOMParser/]) {
        if (pattern.test(code)) offenders.push(`${name}: ${String(pattern)}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('have the lock screen’s strict CSP, one module script, the shared stylesheet then their own, and nothing inline', async () => {
    const lockCsp = cspOf(await fs.readFile(path.join(SOURCE, 'lock.html'), 'utf8'));
    expect(lockCsp).toContain("script-src 'self'");
    expect(lockCsp).toContain("default-src 'none'");
    for (const page of PAGES) {
      const html = await fs.readFile(path.join(SOURCE, `${page}.html`), 'utf8');
      expect(cspOf(html), page).toBe(lockCsp);
      const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.map(([, attributes]) => attributes!.trim()), page).toEqual([`type="module" src="./${page}.js"`]);
      expect(scripts[0]![2]!.trim(), page).toBe('');
      expect(html, page).toContain(`<link rel="stylesheet" href="./${page}.css" />`);
      // base.css first, so the page's own stylesheet can override it.
      expect([...html.matchAll(/<link\b[^>]*>/g)].map(([link]) => link), page).toEqual(['<link rel="stylesheet" href="./base.css" />', `<link rel="stylesheet" href="./${page}.css" />`]);
      expect(html, page).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i);
      // The build copies the page and its stylesheet next to its script.
      for (const file of [`${page}.html`, 'base.css', `${page}.css`, `${page}.js`]) await expect(fs.access(path.join(BUILT, 'renderer', file)), file).resolves.toBeUndefined();
    }
  });

  it('load only renderer/ and shared/i18n.js: never zod or shared/ipc.js', async () => {
    for (const page of PAGES) {
      const seen = new Set<string>();
      const queue = [path.join(BUILT, 'renderer', `${page}.js`)];
      while (queue.length > 0) {
        const file = queue.pop()!;
        if (seen.has(file)) continue;
        seen.add(file);
        const code = await fs.readFile(file, 'utf8');
        // Static `from '…'`, bare `import '…'` and dynamic `import('…')`.
        for (const [, from, bare, dynamic] of code.matchAll(/^(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]/gm)) {
          const specifier = from ?? bare ?? dynamic!;
          expect(specifier, `${path.relative(BUILT, file)} imports a package`).toMatch(/^\.\.?\//);
          queue.push(path.resolve(path.dirname(file), specifier));
        }
      }
      const loaded = [...seen].map((file) => path.relative(BUILT, file)).sort();
      expect(loaded.filter((file) => !file.startsWith('renderer/') && file !== path.join('shared', 'i18n.js')), page).toEqual([]);
    }
  });
});
