import fs from 'node:fs/promises';
import path from 'node:path';
import { PNG } from 'pngjs';
import { repoRoot } from '../repo-root.js';
import { APP_PNG_SIZE, ICO_SIZES, TRAY_PNG_SIZES, TRAY_STATES, drawAppIcon, drawTrayIcon } from './design.js';
import { encodeIco, encodePng, readIcoDirectory } from './ico.js';

/**
 * Renders every icon from `design.ts` into `build/icons/` (committed: they are build inputs for
 * electron-builder and the tray, and rendering needs no browser):
 *
 *   tray/<state>-<size>.png   each tray state at 16, 20, 24, 32, 48, 64, 256 px
 *   tray/<state>.ico          each tray state with 16, 20, 24, 32, 48, 256 px entries (Windows)
 *   app/icon.png, app/icon.ico  the application icon (Linux 512 px, Windows installer and exe)
 *
 * `node dist/build/icons/render.js` writes them; `--check` exits 1 when a committed icon's pixels
 * differ from what the design renders now (the test does the same).
 */

/** Every icon file, relative to `build/icons/`, with its bytes and (for comparison) its pixels per entry. */
export interface RenderedIcon {
  readonly file: string;
  readonly bytes: Buffer;
}

export function renderAll(): RenderedIcon[] {
  const out: RenderedIcon[] = [];
  for (const state of TRAY_STATES) {
    for (const size of TRAY_PNG_SIZES) out.push({ file: `tray/${state}-${size}.png`, bytes: encodePng(size, drawTrayIcon(state, size).toRgba()) });
    out.push({ file: `tray/${state}.ico`, bytes: encodeIco(ICO_SIZES.map((size) => ({ size, rgba: drawTrayIcon(state, size).toRgba() }))) });
  }
  out.push({ file: 'app/icon.png', bytes: encodePng(APP_PNG_SIZE, drawAppIcon(APP_PNG_SIZE).toRgba()) });
  out.push({ file: 'app/icon.ico', bytes: encodeIco(ICO_SIZES.map((size) => ({ size, rgba: drawAppIcon(size).toRgba() }))) });
  return out;
}

/** The decoded pixels of a .png or every entry of an .ico (compression-independent: zlib versions differ). */
export function pixelsOf(file: string, bytes: Buffer): Buffer[] {
  if (file.endsWith('.png')) return [PNG.sync.read(bytes).data];
  return readIcoDirectory(bytes).map((entry) => (entry.png ? PNG.sync.read(entry.bytes).data : entry.bytes));
}

/**
 * Whether two decoded images match, allowing ±2 per channel: Math.sin/cos may round differently in
 * another Node version, which must not flag the committed icons as stale.
 */
function samePixels(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (Math.abs(a[i]! - b[i]!) > 2) return false;
  return true;
}

/** Files under `dir` whose pixels differ from the design's (or are missing). */
export async function staleIcons(dir: string): Promise<string[]> {
  const stale: string[] = [];
  for (const icon of renderAll()) {
    const committed = await fs.readFile(path.join(dir, icon.file)).catch(() => null);
    const want = pixelsOf(icon.file, icon.bytes);
    const have = committed ? pixelsOf(icon.file, committed) : [];
    if (have.length !== want.length || want.some((pixels, index) => !samePixels(pixels, have[index]!))) stale.push(icon.file);
  }
  return stale;
}

async function main(argv: string[]): Promise<number> {
  const dir = path.join(repoRoot(), 'build', 'icons');
  if (argv.includes('--check')) {
    const stale = await staleIcons(dir);
    for (const file of stale) process.stderr.write(`stale: build/icons/${file} (run npm run icons)\n`);
    return stale.length === 0 ? 0 : 1;
  }
  for (const icon of renderAll()) {
    await fs.mkdir(path.dirname(path.join(dir, icon.file)), { recursive: true });
    await fs.writeFile(path.join(dir, icon.file), icon.bytes);
  }
  process.stdout.write(`icons written to ${dir}\n`);
  return 0;
}

if (process.argv[1] && import.meta.filename === (await fs.realpath(process.argv[1]).catch(() => ''))) {
  process.exitCode = await main(process.argv.slice(2));
}
