/**
 * Binary masks over a rectangle of a plane, used to preview strokes exactly where the
 * server will paint them (before the label tiles come back) and to slice a stroke into
 * the orthogonal views.
 */
import type { Axis } from "../api/types";
import { AXIS_DIM, planeDims, planeToVolume } from "../viewer/geometry";

export interface PlaneMask {
  /** Top-left voxel (level-0 plane row, col) of the mask rectangle. */
  r0: number;
  c0: number;
  rows: number;
  cols: number;
  /** rows * cols, row-major, 1 = painted. */
  data: Uint8Array;
}

/** The smallest row/column ranges holding every [row, col] point (Infinity bounds when none). */
export function pointBounds(points: Iterable<readonly [number, number]>): {
  rMin: number; rMax: number; cMin: number; cMax: number;
} {
  let rMin = Infinity;
  let rMax = -Infinity;
  let cMin = Infinity;
  let cMax = -Infinity;
  for (const [r, c] of points) {
    rMin = Math.min(rMin, r);
    rMax = Math.max(rMax, r);
    cMin = Math.min(cMin, c);
    cMax = Math.max(cMax, c);
  }
  return { rMin, rMax, cMin, cMax };
}

export function emptyMask(r0: number, c0: number, rows: number, cols: number): PlaneMask {
  return { r0, c0, rows, cols, data: new Uint8Array(Math.max(0, rows * cols)) };
}

export function maskCount(m: PlaneMask): number {
  let n = 0;
  for (const v of m.data) n += v;
  return n;
}

export function maskHas(m: PlaneMask, row: number, col: number): boolean {
  const r = row - m.r0;
  const c = col - m.c0;
  if (r < 0 || c < 0 || r >= m.rows || c >= m.cols) return false;
  return m.data[r * m.cols + c] === 1;
}

/**
 * The part of a stroke mask (on plane strokeAxis = strokeIndex) that lies in the
 * orthogonal view plane viewAxis = viewIndex, as a mask in that view's plane
 * coordinates. Returns null when they do not meet (or when the planes are parallel).
 */
export function crossSection(
  mask: PlaneMask,
  strokeAxis: Axis,
  strokeIndex: number,
  viewAxis: Axis,
  viewIndex: number,
): PlaneMask | null {
  if (strokeAxis === viewAxis) return null;
  const [sr] = planeDims(strokeAxis);
  const vDim = AXIS_DIM[viewAxis];
  const [vr, vc] = planeDims(viewAxis);
  const hits: Array<[number, number]> = [];
  const fixedRow = vDim === sr;
  const local = viewIndex - (fixedRow ? mask.r0 : mask.c0);
  if (local < 0 || local >= (fixedRow ? mask.rows : mask.cols)) return null;
  const n = fixedRow ? mask.cols : mask.rows;
  for (let i = 0; i < n; i++) {
    const r = fixedRow ? local : i;
    const c = fixedRow ? i : local;
    if (mask.data[r * mask.cols + c] !== 1) continue;
    const p = planeToVolume(strokeAxis, strokeIndex, mask.r0 + r, mask.c0 + c);
    hits.push([p[vr], p[vc]]);
  }
  if (hits.length === 0) return null;
  const { rMin, rMax, cMin, cMax } = pointBounds(hits);
  const out = emptyMask(rMin, cMin, rMax - rMin + 1, cMax - cMin + 1);
  for (const [r, c] of hits) out.data[(r - rMin) * out.cols + (c - cMin)] = 1;
  return out;
}
