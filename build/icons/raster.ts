/**
 * A tiny anti-aliased rasterizer for the icons' simple shapes (polygons, circles, round-capped
 * strokes), so the icons render here without a browser or a download. Pure and deterministic:
 * the same design gives the same pixels on every machine.
 *
 * Shapes are closed polygons filled with the non-zero rule, so overlapping pieces of one shape
 * (the two strokes of a check mark) unite instead of cancelling. Coverage is exact horizontally
 * (each span's overlap with a pixel) and sampled at `SUBSAMPLES` rows per pixel vertically.
 */

export type Point = readonly [number, number];
export type Polygon = readonly Point[];
/** Straight-alpha colour, each channel 0–255. */
export type Rgba = readonly [number, number, number, number];

const SUBSAMPLES = 16;

/** Builds polygons from path commands; curves are flattened into short segments. */
export class PathBuilder {
  private readonly polygons: Point[][] = [];
  private current: Point[] = [];

  moveTo(x: number, y: number): this {
    this.close();
    this.current = [[x, y]];
    return this;
  }

  lineTo(x: number, y: number): this {
    this.current.push([x, y]);
    return this;
  }

  /** Quadratic Bézier from the current point through control (cx, cy) to (x, y). */
  quadTo(cx: number, cy: number, x: number, y: number, segments = 24): this {
    const start = this.current.at(-1);
    if (!start) throw new Error('quadTo without a current point');
    const [x0, y0] = start;
    for (let i = 1; i <= segments; i += 1) {
      const t = i / segments;
      const a = (1 - t) * (1 - t);
      const b = 2 * (1 - t) * t;
      const c = t * t;
      this.current.push([a * x0 + b * cx + c * x, a * y0 + b * cy + c * y]);
    }
    return this;
  }

  close(): this {
    if (this.current.length >= 3) this.polygons.push(this.current);
    this.current = [];
    return this;
  }

  build(): Polygon[] {
    this.close();
    return this.polygons;
  }
}

/** A circle as a counter-clockwise polygon (in screen coordinates, y down). */
export function circle(cx: number, cy: number, r: number, segments = 96): Polygon {
  const points: Point[] = [];
  for (let i = 0; i < segments; i += 1) {
    const angle = (-2 * Math.PI * i) / segments;
    points.push([cx + r * Math.cos(angle), cy + r * Math.sin(angle)]);
  }
  return points;
}

/** A stroke from a to b of width `width` with round caps, as one polygon. */
export function capsule(a: Point, b: Point, width: number, capSegments = 24): Polygon {
  const [ax, ay] = a;
  const [bx, by] = b;
  const length = Math.hypot(bx - ax, by - ay);
  if (length === 0) return circle(ax, ay, width / 2, capSegments * 2);
  const r = width / 2;
  const angle = Math.atan2(by - ay, bx - ax);
  const points: Point[] = [];
  // Half circle around b from +90° to -90° (relative to the direction), then around a.
  for (let i = 0; i <= capSegments; i += 1) {
    const t = angle + Math.PI / 2 - (Math.PI * i) / capSegments;
    points.push([bx + r * Math.cos(t), by + r * Math.sin(t)]);
  }
  for (let i = 0; i <= capSegments; i += 1) {
    const t = angle - Math.PI / 2 - (Math.PI * i) / capSegments;
    points.push([ax + r * Math.cos(t), ay + r * Math.sin(t)]);
  }
  return points;
}

/** A polyline stroke (round joins and caps): one capsule per segment, united by the non-zero rule. */
export function stroke(points: readonly Point[], width: number): Polygon[] {
  const pieces: Polygon[] = [];
  for (let i = 1; i < points.length; i += 1) pieces.push(orient(capsule(points[i - 1]!, points[i]!, width)));
  return pieces;
}

/** An axis-aligned rectangle with rounded corners. */
export function roundedRect(x: number, y: number, width: number, height: number, radius: number): Polygon {
  const r = Math.min(radius, width / 2, height / 2);
  const path = new PathBuilder()
    .moveTo(x + r, y)
    .lineTo(x + width - r, y)
    .quadTo(x + width, y, x + width, y + r, 8)
    .lineTo(x + width, y + height - r)
    .quadTo(x + width, y + height, x + width - r, y + height, 8)
    .lineTo(x + r, y + height)
    .quadTo(x, y + height, x, y + height - r, 8)
    .lineTo(x, y + r)
    .quadTo(x, y, x + r, y, 8)
    .build();
  return path[0]!;
}

/** Signed area (positive: clockwise on screen, y down). */
function signedArea(polygon: Polygon): number {
  let area = 0;
  for (let i = 0; i < polygon.length; i += 1) {
    const [x0, y0] = polygon[i]!;
    const [x1, y1] = polygon[(i + 1) % polygon.length]!;
    area += x0 * y1 - x1 * y0;
  }
  return area / 2;
}

/** The same polygon, always wound the same way, so unions under the non-zero rule never cancel. */
export function orient(polygon: Polygon): Polygon {
  return signedArea(polygon) < 0 ? [...polygon].reverse() : polygon;
}

/** Maps every point of `polygons` by `scale` (design units → pixels). */
export function scalePolygons(polygons: readonly Polygon[], scale: number): Polygon[] {
  return polygons.map((polygon) => polygon.map(([x, y]) => [x * scale, y * scale] as const));
}

/** An RGBA raster, straight alpha, row-major, top row first. */
export class Canvas {
  /** Premultiplied, 0–1 floats while drawing. */
  private readonly premultiplied: Float64Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.premultiplied = new Float64Array(width * height * 4);
  }

  /** Fills the union of `polygons` (non-zero rule, pixel coordinates) with `color`, source-over. */
  fill(polygons: readonly Polygon[], color: Rgba): void {
    const coverage = this.coverage(polygons);
    const alpha = color[3] / 255;
    const source = [(color[0] / 255) * alpha, (color[1] / 255) * alpha, (color[2] / 255) * alpha, alpha];
    for (let i = 0; i < coverage.length; i += 1) {
      const c = coverage[i]!;
      if (c <= 0) continue;
      const k = Math.min(1, c);
      const base = i * 4;
      const inverse = 1 - source[3]! * k;
      for (let channel = 0; channel < 4; channel += 1) {
        this.premultiplied[base + channel] = source[channel]! * k + this.premultiplied[base + channel]! * inverse;
      }
    }
  }

  /** Straight-alpha 8-bit RGBA bytes. */
  toRgba(): Buffer {
    const out = Buffer.alloc(this.width * this.height * 4);
    for (let i = 0; i < this.width * this.height; i += 1) {
      const alpha = this.premultiplied[i * 4 + 3]!;
      out[i * 4 + 3] = Math.round(alpha * 255);
      for (let channel = 0; channel < 3; channel += 1) {
        const value = alpha > 0 ? this.premultiplied[i * 4 + channel]! / alpha : 0;
        out[i * 4 + channel] = Math.round(Math.min(1, Math.max(0, value)) * 255);
      }
    }
    return out;
  }

  /** Per-pixel coverage (0–1) of the union of `polygons`. */
  private coverage(polygons: readonly Polygon[]): Float64Array {
    const coverage = new Float64Array(this.width * this.height);
    type Edge = { x0: number; y0: number; x1: number; y1: number; winding: number };
    const edges: Edge[] = [];
    for (const polygon of polygons) {
      for (let i = 0; i < polygon.length; i += 1) {
        const [ax, ay] = polygon[i]!;
        const [bx, by] = polygon[(i + 1) % polygon.length]!;
        if (ay === by) continue;
        edges.push(ay < by ? { x0: ax, y0: ay, x1: bx, y1: by, winding: 1 } : { x0: bx, y0: by, x1: ax, y1: ay, winding: -1 });
      }
    }
    const weight = 1 / SUBSAMPLES;
    for (let row = 0; row < this.height; row += 1) {
      for (let sample = 0; sample < SUBSAMPLES; sample += 1) {
        const y = row + (sample + 0.5) / SUBSAMPLES;
        const crossings: { x: number; winding: number }[] = [];
        for (const edge of edges) {
          if (y < edge.y0 || y >= edge.y1) continue;
          const t = (y - edge.y0) / (edge.y1 - edge.y0);
          crossings.push({ x: edge.x0 + t * (edge.x1 - edge.x0), winding: edge.winding });
        }
        crossings.sort((a, b) => a.x - b.x);
        let winding = 0;
        for (let i = 0; i < crossings.length; i += 1) {
          const before = winding;
          winding += crossings[i]!.winding;
          if (before === 0 && winding !== 0) {
            // A span starts here; find where the winding returns to zero.
            let j = i + 1;
            let w = winding;
            while (j < crossings.length) {
              w += crossings[j]!.winding;
              if (w === 0) break;
              j += 1;
            }
            const end = j < crossings.length ? crossings[j]!.x : this.width;
            this.addSpan(coverage, row, crossings[i]!.x, end, weight);
            winding = 0;
            i = j;
          }
        }
      }
    }
    return coverage;
  }

  private addSpan(coverage: Float64Array, row: number, x0: number, x1: number, weight: number): void {
    const start = Math.max(0, x0);
    const end = Math.min(this.width, x1);
    if (end <= start) return;
    const first = Math.floor(start);
    const last = Math.min(this.width - 1, Math.ceil(end) - 1);
    for (let x = first; x <= last; x += 1) {
      const overlap = Math.min(end, x + 1) - Math.max(start, x);
      if (overlap > 0) coverage[row * this.width + x] = coverage[row * this.width + x]! + overlap * weight;
    }
  }
}
