/** Links from a cell of a report into the slice viewer, centred on the cell. */
import type { Zyx } from "../api/types";
import { formatUrlState } from "../viewer/url_state";

/** Screen pixels a cell should span in the XY view when the viewer opens on it. */
const TARGET_PX = 520;

/**
 * Viewer URL centred on a cell: `/volumes/<id>/#z=..&y=..&x=..&zoom=..`, the position
 * format of viewer/url_state.ts. The zoom (screen px per nm) fits a ball of the cell's
 * volume into about 520 px; centroid indices are rounded and clamped into the volume.
 */
export function cellViewerUrl(
  volumeId: number,
  centroid: Zyx,
  cellVoxels: number,
  voxelSizeNm: Zyx,
  shape: Zyx,
): string {
  const focus = centroid.map((v, i) => Math.min(shape[i]! - 1, Math.max(0, Math.round(v)))) as Zyx;
  const volumeNm3 = Math.max(1, cellVoxels) * voxelSizeNm[0] * voxelSizeNm[1] * voxelSizeNm[2];
  const diameterNm = 2 * Math.cbrt((3 * volumeNm3) / (4 * Math.PI));
  const zoom = TARGET_PX / (1.3 * diameterNm);
  return `/volumes/${volumeId}/${formatUrlState({ focus, zoom })}`;
}
