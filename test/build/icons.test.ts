import fs from 'node:fs/promises';
import path from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { APP_PNG_SIZE, ICO_SIZES, TRAY_PNG_SIZES, TRAY_STATES, TRAY_STATE_STYLE, drawTrayIcon } from '../../build/icons/design.js';
import { encodeIco, readIcoDirectory } from '../../build/icons/ico.js';
import { staleIcons } from '../../build/icons/render.js';
import { ROOT } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const ICONS = path.join(ROOT, 'build/icons');
const tempDir = useTempDirs();

describe('tray and app icons (build/icons, rendered from design.ts)', () => {
  it('has a PNG of every tray state at every size, each square, of its size, with transparent corners', async () => {
    for (const state of TRAY_STATES) {
      for (const size of TRAY_PNG_SIZES) {
        const png = PNG.sync.read(await fs.readFile(path.join(ICONS, 'tray', `${state}-${size}.png`)));
        expect([png.width, png.height], `${state}-${size}`).toEqual([size, size]);
        expect(png.data[3], `${state}-${size} top-left alpha`).toBe(0);
      }
    }
  });

  it('has a Windows .ico per tray state whose directory lists 16, 24, 32, 48 and 256 px (and 20)', async () => {
    for (const state of TRAY_STATES) {
      const entries = readIcoDirectory(await fs.readFile(path.join(ICONS, 'tray', `${state}.ico`)));
      expect(entries.map((entry) => entry.size), state).toEqual([...ICO_SIZES]);
      expect(ICO_SIZES).toEqual(expect.arrayContaining([16, 24, 32, 48, 256]));
      for (const entry of entries) {
        expect(entry.bitsPerPixel).toBe(32);
        if (entry.png) {
          expect(entry.size).toBe(256);
          expect(PNG.sync.read(entry.bytes).width).toBe(256);
        } else {
          // BITMAPINFOHEADER: 40 bytes, width, doubled height (image + mask), 32 bpp.
          expect([entry.bytes.readUInt32LE(0), entry.bytes.readInt32LE(4), entry.bytes.readInt32LE(8), entry.bytes.readUInt16LE(14)]).toEqual([40, entry.size, entry.size * 2, 32]);
        }
      }
    }
  });

  it('has the application icon as a 512-px PNG and a .ico up to 256 px', async () => {
    const png = PNG.sync.read(await fs.readFile(path.join(ICONS, 'app/icon.png')));
    expect([png.width, png.height]).toEqual([APP_PNG_SIZE, APP_PNG_SIZE]);
    const ico = readIcoDirectory(await fs.readFile(path.join(ICONS, 'app/icon.ico')));
    expect(ico.map((entry) => entry.size)).toEqual([...ICO_SIZES]);
  });

  it('committed icons are exactly what the design renders now (run npm run icons after changing it)', async () => {
    expect(await staleIcons(ICONS)).toEqual([]);
  });

  it('reports an icon whose pixels no longer match the design as stale', async () => {
    const dir = await tempDir();
    await fs.cp(ICONS, dir, { recursive: true });
    const file = path.join(dir, 'tray/locked-16.png');
    const png = PNG.sync.read(await fs.readFile(file));
    png.data.fill(255, 0, 64);
    await fs.writeFile(file, PNG.sync.write(png));
    await fs.rm(path.join(dir, 'tray/offline.ico'));
    expect(await staleIcons(dir)).toEqual(['tray/offline.ico', 'tray/locked-16.png']);
  });

  it('gives each state its own colour, so the tray tells them apart at 16 px', () => {
    const centreColour = (state: (typeof TRAY_STATES)[number]): string => {
      // A pixel of the shield's fill left of the glyph, at the widest part of the shield.
      const rgba = drawTrayIcon(state, 32).toRgba();
      const offset = (14 * 32 + 6) * 4;
      return rgba.subarray(offset, offset + 3).toString('hex');
    };
    const colours = TRAY_STATES.map(centreColour);
    expect(new Set(colours).size).toBe(TRAY_STATES.length);
    expect(colours).toEqual(TRAY_STATES.map((state) => Buffer.from(TRAY_STATE_STYLE[state].fill.slice(0, 3)).toString('hex')));
  });

  it('refuses an .ico entry larger than 256 px', () => {
    expect(() => encodeIco([{ size: 512, rgba: Buffer.alloc(512 * 512 * 4) }])).toThrow(/at most 256/);
  });
});
