/**
 * Plane geometry for the three orthogonal views. Volumes are ZYX; a plane is named by
 * the axis it is perpendicular to:
 *   axis z -> XY plane, rows y, cols x
 *   axis y -> XZ plane, rows z, cols x
 *   axis x -> YZ plane, rows z, cols y
 * Coordinates are level-0 voxels; continuous coordinates put voxel i on [i, i + 1).
 */
import type { Axis, LevelInfo, Zyx } from "../api/types";

export type Dim = 0 | 1 | 2;

export const AXIS_DIM: Record<Axis, Dim> = { z: 0, y: 1, x: 2 };
export const DIM_NAME: readonly ["z", "y", "x"] = ["z", "y", "x"];

const PLANE_DIMS: Record<Axis, [Dim, Dim]> = { z: [1, 2], y: [0, 2], x: [0, 1] };

/** [rowDim, colDim] of the plane perpendicular to `axis`. */
export function planeDims(axis: Axis): [Dim, Dim] {
  return PLANE_DIMS[axis];
}

/** Pick the plane's [rows, cols] out of a ZYX triple (shape, voxel size, downsample). */
export function planeOf(zyx: Zyx, axis: Axis): [number, number] {
  const [r, c] = PLANE_DIMS[axis];
  return [zyx[r], zyx[c]];
}

/** Volume ZYX of the point at (row, col) on plane (axis, index). */
export function planeToVolume(axis: Axis, index: number, row: number, col: number): Zyx {
  const p: Zyx = [0, 0, 0];
  const [r, c] = PLANE_DIMS[axis];
  p[AXIS_DIM[axis]] = index;
  p[r] = row;
  p[c] = col;
  return p;
}

/** Plane (index, row, col) of a volume ZYX point for the plane perpendicular to `axis`. */
export function volumeToPlane(axis: Axis, p: Zyx): { index: number; row: number; col: number } {
  const [r, c] = PLANE_DIMS[axis];
  return { index: p[AXIS_DIM[axis]], row: p[r], col: p[c] };
}

/** Coordinate along `axis` expressed in the voxels of `level` (what tile URLs take). */
export function indexAtLevel(axis: Axis, index0: number, level: LevelInfo): number {
  return Math.floor(index0 / level.downsample[AXIS_DIM[axis]]);
}

/** Number of slices along `axis` at level 0. */
export function sliceCount(shape: Zyx, axis: Axis): number {
  return shape[AXIS_DIM[axis]];
}

export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** Clamp a ZYX point to the voxel grid of `shape` (integer voxel indices). */
export function clampVoxel(p: Zyx, shape: Zyx): Zyx {
  return [
    clamp(Math.floor(p[0]), 0, shape[0] - 1),
    clamp(Math.floor(p[1]), 0, shape[1] - 1),
    clamp(Math.floor(p[2]), 0, shape[2] - 1),
  ];
}
