/**
 * Screen <-> plane transform of one view. Screen units are CSS pixels with the origin
 * at the canvas' top-left; the plane is in level-0 voxels with anisotropic voxel sizes
 * (rowNm, colNm) so the picture is shown in true physical proportions.
 */

export interface ViewState {
  /** Plane point (level-0 voxels, continuous) at the canvas centre. */
  centerRow: number;
  centerCol: number;
  /** Zoom: CSS pixels per nanometre. */
  pxPerNm: number;
}

export interface Viewport {
  width: number;
  height: number;
  rowNm: number;
  colNm: number;
}

export const MIN_PX_PER_VOXEL = 1 / 256;
export const MAX_PX_PER_VOXEL = 64;

export function planeToScreen(v: ViewState, vp: Viewport, row: number, col: number): [number, number] {
  return [
    vp.width / 2 + (col - v.centerCol) * vp.colNm * v.pxPerNm,
    vp.height / 2 + (row - v.centerRow) * vp.rowNm * v.pxPerNm,
  ];
}

/** Inverse of planeToScreen: [row, col] in continuous level-0 voxels. */
export function screenToPlane(v: ViewState, vp: Viewport, sx: number, sy: number): [number, number] {
  return [
    v.centerRow + (sy - vp.height / 2) / (vp.rowNm * v.pxPerNm),
    v.centerCol + (sx - vp.width / 2) / (vp.colNm * v.pxPerNm),
  ];
}

/** Zoom by `factor` keeping the plane point under (sx, sy) fixed on screen. */
export function zoomAround(
  v: ViewState,
  vp: Viewport,
  sx: number,
  sy: number,
  factor: number,
): ViewState {
  const minNm = Math.min(vp.rowNm, vp.colNm);
  const maxNm = Math.max(vp.rowNm, vp.colNm);
  const pxPerNm = Math.min(
    MAX_PX_PER_VOXEL / minNm,
    Math.max(MIN_PX_PER_VOXEL / maxNm, v.pxPerNm * factor),
  );
  const [row, col] = screenToPlane(v, vp, sx, sy);
  return {
    pxPerNm,
    centerRow: row - (sy - vp.height / 2) / (vp.rowNm * pxPerNm),
    centerCol: col - (sx - vp.width / 2) / (vp.colNm * pxPerNm),
  };
}

/** Move the view by a screen displacement (drag to pan). */
export function panBy(v: ViewState, vp: Viewport, dx: number, dy: number): ViewState {
  return {
    ...v,
    centerRow: v.centerRow - dy / (vp.rowNm * v.pxPerNm),
    centerCol: v.centerCol - dx / (vp.colNm * v.pxPerNm),
  };
}

/** View showing the whole plane of `rows` x `cols` voxels with a small margin. */
export function fitPlane(vp: Viewport, rows: number, cols: number, margin = 0.95): ViewState {
  const pxPerNm =
    margin * Math.min(vp.width / (cols * vp.colNm), vp.height / (rows * vp.rowNm));
  return { centerRow: rows / 2, centerCol: cols / 2, pxPerNm: pxPerNm > 0 ? pxPerNm : 1 };
}
