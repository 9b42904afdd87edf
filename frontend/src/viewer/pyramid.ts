/**
 * Level of detail and tile enumeration over the multiscale pyramid. Tiles are
 * `tileSize` pixels of one level; edge tiles are smaller.
 */
import type { Axis, LevelInfo } from "../api/types";
import { planeOf } from "./geometry";
import { planeToScreen, screenToPlane, type ViewState, type Viewport } from "./view_transform";

/**
 * The coarsest level whose voxels still cover at most one device pixel (plus a small
 * tolerance), judged along the plane's column dimension (always downsampled).
 *
 * @param devicePxPerVoxel0 device pixels covered by one level-0 voxel along the columns.
 */
export function selectLevel(
  levels: readonly LevelInfo[],
  axis: Axis,
  devicePxPerVoxel0: number,
  tolerance = 1.15,
): number {
  let best = 0;
  for (const lv of levels) {
    const [, dsCol] = planeOf(lv.downsample, axis);
    if (devicePxPerVoxel0 * dsCol <= tolerance && lv.level > best) best = lv.level;
  }
  return best;
}

export interface TileRef {
  ty: number;
  tx: number;
  /** Tile extent in level-0 plane voxels: rows [r0, r1), cols [c0, c1). */
  r0: number;
  r1: number;
  c0: number;
  c1: number;
}

/** Tiles of `level` on plane `axis` that intersect the viewport, row-major. */
export function visibleTiles(
  view: ViewState,
  vp: Viewport,
  level: LevelInfo,
  axis: Axis,
  tileSize: number,
): TileRef[] {
  const [rows, cols] = planeOf(level.shape, axis);
  const [dsRow, dsCol] = planeOf(level.downsample, axis);
  const [rTop, cLeft] = screenToPlane(view, vp, 0, 0);
  const [rBottom, cRight] = screenToPlane(view, vp, vp.width, vp.height);
  const nty = Math.ceil(rows / tileSize);
  const ntx = Math.ceil(cols / tileSize);
  const ty0 = Math.max(0, Math.floor(rTop / dsRow / tileSize));
  const ty1 = Math.min(nty - 1, Math.floor(rBottom / dsRow / tileSize));
  const tx0 = Math.max(0, Math.floor(cLeft / dsCol / tileSize));
  const tx1 = Math.min(ntx - 1, Math.floor(cRight / dsCol / tileSize));
  const out: TileRef[] = [];
  for (let ty = ty0; ty <= ty1; ty++) {
    for (let tx = tx0; tx <= tx1; tx++) {
      out.push({
        ty,
        tx,
        r0: ty * tileSize * dsRow,
        r1: Math.min(rows, (ty + 1) * tileSize) * dsRow,
        c0: tx * tileSize * dsCol,
        c1: Math.min(cols, (tx + 1) * tileSize) * dsCol,
      });
    }
  }
  return out;
}

/**
 * Destination rectangle of a plane rectangle in device pixels, with edges snapped to
 * whole pixels. Neighbouring tiles share an edge coordinate, so snapping both with the
 * same rounding leaves neither gaps nor overlaps: no seams.
 */
export function snappedRect(
  view: ViewState,
  vp: Viewport,
  dpr: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
): { x: number; y: number; w: number; h: number } {
  const [sx0, sy0] = planeToScreen(view, vp, r0, c0);
  const [sx1, sy1] = planeToScreen(view, vp, r1, c1);
  const x0 = Math.round(sx0 * dpr);
  const y0 = Math.round(sy0 * dpr);
  const x1 = Math.round(sx1 * dpr);
  const y1 = Math.round(sy1 * dpr);
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}
