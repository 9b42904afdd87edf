/**
 * Brush and polygon rasterisation on a plane, level-0 voxels. Points are voxel indices
 * [row, col] (a voxel's centre is its integer index). A brush stroke paints every voxel
 * whose centre lies within `radius` of the polyline, so radius 0.5 paints single voxels
 * along the path; a polygon paints voxels whose centres are inside or on its boundary.
 */
import { emptyMask, type PlaneMask, pointBounds } from "./mask";

export type Point = [number, number];

function distSqToSegment(pr: number, pc: number, a: Point, b: Point): number {
  const dr = b[0] - a[0];
  const dc = b[1] - a[1];
  const len2 = dr * dr + dc * dc;
  let t = len2 === 0 ? 0 : ((pr - a[0]) * dr + (pc - a[1]) * dc) / len2;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  const er = a[0] + t * dr - pr;
  const ec = a[1] + t * dc - pc;
  return er * er + ec * ec;
}

/**
 * Rasterise a round-capped polyline of `radius` voxels, clipped to a plane of
 * `rows` x `cols` voxels. Returns an empty mask when nothing falls inside the plane.
 */
export function rasterizeBrush(points: readonly Point[], radius: number, rows: number, cols: number): PlaneMask {
  if (points.length === 0) return emptyMask(0, 0, 0, 0);
  if (!(radius >= 0)) throw new RangeError(`radius must be >= 0, got ${radius}`);
  const { rMin, rMax, cMin, cMax } = pointBounds(points);
  const r0 = Math.max(0, Math.floor(rMin - radius));
  const r1 = Math.min(rows - 1, Math.ceil(rMax + radius));
  const c0 = Math.max(0, Math.floor(cMin - radius));
  const c1 = Math.min(cols - 1, Math.ceil(cMax + radius));
  if (r1 < r0 || c1 < c0) return emptyMask(0, 0, 0, 0);
  const mask = emptyMask(r0, c0, r1 - r0 + 1, c1 - c0 + 1);
  const rad2 = radius * radius + 1e-9;
  const segments: Array<[Point, Point]> =
    points.length === 1 ? [[points[0]!, points[0]!]] : [];
  for (let i = 1; i < points.length; i++) segments.push([points[i - 1]!, points[i]!]);
  for (const [a, b] of segments) {
    // Only scan the bounding box of this segment.
    const sr0 = Math.max(r0, Math.floor(Math.min(a[0], b[0]) - radius));
    const sr1 = Math.min(r1, Math.ceil(Math.max(a[0], b[0]) + radius));
    const sc0 = Math.max(c0, Math.floor(Math.min(a[1], b[1]) - radius));
    const sc1 = Math.min(c1, Math.ceil(Math.max(a[1], b[1]) + radius));
    for (let r = sr0; r <= sr1; r++) {
      const base = (r - r0) * mask.cols - c0;
      for (let c = sc0; c <= sc1; c++) {
        if (mask.data[base + c] === 1) continue;
        if (distSqToSegment(r, c, a, b) <= rad2) mask.data[base + c] = 1;
      }
    }
  }
  return mask;
}

/** Rasterise a closed polygon (even-odd rule plus its boundary) clipped to the plane. */
export function rasterizePolygon(vertices: readonly Point[], rows: number, cols: number): PlaneMask {
  if (vertices.length < 3) return rasterizeBrush(vertices, 0.5, rows, cols);
  const { rMin, rMax, cMin, cMax } = pointBounds(vertices);
  const r0 = Math.max(0, Math.ceil(rMin));
  const r1 = Math.min(rows - 1, Math.floor(rMax));
  const c0 = Math.max(0, Math.ceil(cMin));
  const c1 = Math.min(cols - 1, Math.floor(cMax));
  if (r1 < r0 || c1 < c0) return emptyMask(0, 0, 0, 0);
  const mask = emptyMask(r0, c0, r1 - r0 + 1, c1 - c0 + 1);
  const n = vertices.length;
  for (let r = r0; r <= r1; r++) {
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = vertices[i]!;
      const b = vertices[(i + 1) % n]!;
      // Half-open rule on rows so a vertex shared by two edges counts once.
      if ((a[0] <= r && b[0] > r) || (b[0] <= r && a[0] > r)) {
        xs.push(a[1] + ((r - a[0]) / (b[0] - a[0])) * (b[1] - a[1]));
      }
    }
    xs.sort((p, q) => p - q);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const from = Math.max(c0, Math.ceil(xs[k]! - 1e-9));
      const to = Math.min(c1, Math.floor(xs[k + 1]! + 1e-9));
      for (let c = from; c <= to; c++) mask.data[(r - r0) * mask.cols + (c - c0)] = 1;
    }
  }
  // The boundary itself (thin edges and the top/bottom rows the half-open rule skips).
  const closed = [...vertices, vertices[0]!];
  const edge = rasterizeBrush(closed, 0.5, rows, cols);
  for (let r = 0; r < edge.rows; r++) {
    for (let c = 0; c < edge.cols; c++) {
      if (edge.data[r * edge.cols + c] !== 1) continue;
      const mr = edge.r0 + r - r0;
      const mc = edge.c0 + c - c0;
      if (mr >= 0 && mc >= 0 && mr < mask.rows && mc < mask.cols) mask.data[mr * mask.cols + mc] = 1;
    }
  }
  return mask;
}

/**
 * Drop points closer than `minStep` voxels to the last kept one, so a slow drag does
 * not send thousands of points; the final point is always kept.
 */
export function decimate(points: readonly Point[], minStep: number): Point[] {
  const out: Point[] = [];
  for (let i = 0; i < points.length; i++) {
    const p = points[i]!;
    const last = out[out.length - 1];
    const isLast = i === points.length - 1;
    if (last === undefined || Math.hypot(p[0] - last[0], p[1] - last[1]) >= minStep) {
      out.push(p);
    } else if (isLast && (p[0] !== last[0] || p[1] !== last[1])) {
      out.push(p);
    }
  }
  return out;
}
