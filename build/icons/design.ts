import { Canvas, PathBuilder, circle, orient, roundedRect, scalePolygons, stroke, type Point, type Polygon, type Rgba } from './raster.js';

/**
 * The one source of every Sekimori icon: a shield in the state's colour with a white glyph, drawn
 * in a 32-unit design square and scaled to each size. Colour carries the state at a glance; the
 * glyph carries it for colour-blind staff and on monochrome taskbars.
 */

/** The tray states of DESIGN.md §9 and issue 6. */
export const TRAY_STATES = ['protected', 'violation', 'offline', 'unenforced', 'locked'] as const;
export type TrayState = (typeof TRAY_STATES)[number];

/** PNG sizes per state: 16/20/24/32/48 for trays at 100–300 % scaling, 64/256 for notifications and dialogs. */
export const TRAY_PNG_SIZES = [16, 20, 24, 32, 48, 64, 256] as const;
/** Sizes inside each Windows .ico (Windows picks by DPI: 16 at 100 %, 20 at 125 %, 24 at 150 %, 32 at 200 %). */
export const ICO_SIZES = [16, 20, 24, 32, 48, 256] as const;
/** The app icon: .ico for Windows (installer, exe, shortcuts), 512-px PNG for Linux. */
export const APP_PNG_SIZE = 512;

/** Colour and meaning of each state (Japanese first, as the tray tooltip). */
export const TRAY_STATE_STYLE: Readonly<Record<TrayState, { readonly fill: Rgba; readonly edge: Rgba; readonly ja: string; readonly en: string }>> = {
  protected: { fill: [30, 142, 62, 255], edge: [13, 82, 33, 255], ja: '保護されています', en: 'Protected' },
  violation: { fill: [217, 48, 37, 255], edge: [138, 22, 15, 255], ja: 'ポリシー違反があります', en: 'Policy violation' },
  offline: { fill: [95, 99, 104, 255], edge: [52, 55, 58, 255], ja: 'サーバーに接続できません', en: 'Server unreachable' },
  unenforced: { fill: [227, 140, 0, 255], edge: [140, 84, 0, 255], ja: '制御が有効になっていません', en: 'Not enforced' },
  locked: { fill: [26, 115, 232, 255], edge: [14, 66, 140, 255], ja: 'ロックされています', en: 'Locked' },
};

const APP_STYLE = { fill: [57, 73, 171, 255] as Rgba, edge: [26, 35, 104, 255] as Rgba };
const WHITE: Rgba = [255, 255, 255, 255];
const UNIT = 32;

/** The shield outline, convex, in design units; `inset` shrinks it towards its centre. */
function shield(inset: number): Polygon[] {
  const cx = 16;
  const cy = 15.5;
  const s = (x: number, y: number): Point => [cx + (x - cx) * (1 - inset), cy + (y - cy) * (1 - inset)];
  const p = (x: number, y: number): [number, number] => s(x, y) as [number, number];
  const path = new PathBuilder();
  path.moveTo(...p(16, 1));
  path.quadTo(...p(22, 4), ...p(29, 4.5));
  path.lineTo(...p(29, 14));
  path.quadTo(...p(28.5, 25), ...p(16, 31));
  path.quadTo(...p(3.5, 25), ...p(3, 14));
  path.lineTo(...p(3, 4.5));
  path.quadTo(...p(10, 4), ...p(16, 1));
  return path.build().map(orient);
}

/**
 * Glyph stroke width in design units: thicker at small sizes so a stroke stays at least ~1.7 px
 * wide at 16 px (a 1-px stroke blurs into the fill).
 */
function glyphWidth(size: number, units: number): number {
  return Math.max(units, (1.7 * UNIT) / size);
}

/** The white glyph of each state, in design units. */
function glyph(state: TrayState | 'app', size: number): Polygon[] {
  const w = glyphWidth(size, 3.2);
  switch (state) {
    case 'protected':
      return stroke([[10, 16.5], [14.2, 20.5], [22, 11.5]], w);
    case 'violation':
      return [...stroke([[16, 8.5], [16, 17.5]], w), orient(circle(16, 22.8, w * 0.65))];
    case 'offline':
      // A dash: "no connection".
      return stroke([[10.5, 16], [21.5, 16]], w);
    case 'unenforced': {
      // ⊘: a ring with a slash, "not in force".
      // At 16 px a ring closes up: the slash alone. Larger at 20 px, so the hole stays open.
      if (size <= 16) return stroke([[11, 21], [21, 11]], w);
      const ring = glyphWidth(size, 2.4);
      const r = size < 24 ? 8.4 : 6.8;
      const d = r * 0.68;
      return [orient(circle(16, 16, r)), [...orient(circle(16, 16, r - ring))].reverse(), ...stroke([[16 - d, 16 + d], [16 + d, 16 - d]], ring)];
    }
    case 'locked': {
      // A padlock: body and shackle.
      const shackle = glyphWidth(size, 2.4);
      return [orient(roundedRect(10, 15, 12, 9.5, 1.5)), ...stroke([[12.6, 15.5], [12.6, 12.5]], shackle), ...stroke([[19.4, 15.5], [19.4, 12.5]], shackle), ...arc(16, 12.5, 3.4, shackle)];
    }
    case 'app':
      // A gate (関, the barrier): two posts, a lintel and a beam.
      return [
        ...stroke([[11.5, 12], [11.5, 23.5]], w * 0.85),
        ...stroke([[20.5, 12], [20.5, 23.5]], w * 0.85),
        ...stroke([[8.5, 10.5], [23.5, 10.5]], w),
        ...stroke([[10.5, 15], [21.5, 15]], w * 0.7),
      ];
    default: {
      const unknown: never = state;
      throw new Error(`unknown state ${String(unknown)}`);
    }
  }
}

/** The upper half circle of radius r around (cx, cy) as a stroke. */
function arc(cx: number, cy: number, r: number, width: number): Polygon[] {
  const points: Point[] = [];
  for (let i = 0; i <= 16; i += 1) {
    const angle = Math.PI + (Math.PI * i) / 16;
    points.push([cx + r * Math.cos(angle), cy + r * Math.sin(angle)]);
  }
  return stroke(points, width);
}

function draw(size: number, style: { fill: Rgba; edge: Rgba }, state: TrayState | 'app'): Canvas {
  const canvas = new Canvas(size, size);
  const scale = size / UNIT;
  // A darker rim keeps the shield readable on light and dark taskbars alike.
  const rim = Math.max(1.1 / scale, 1.2) / 16;
  canvas.fill(scalePolygons(shield(0), scale), style.edge);
  canvas.fill(scalePolygons(shield(rim), scale), style.fill);
  canvas.fill(scalePolygons(glyph(state, size), scale), WHITE);
  return canvas;
}

/** The tray icon of `state` at `size` px. */
export function drawTrayIcon(state: TrayState, size: number): Canvas {
  return draw(size, TRAY_STATE_STYLE[state], state);
}

/** The application icon at `size` px. */
export function drawAppIcon(size: number): Canvas {
  return draw(size, APP_STYLE, 'app');
}
