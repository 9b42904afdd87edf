/** Where comment markers go: which pinned voxels lie on a view's slice; the review id of a page URL. */
import type { Axis, Zyx } from "../api/types";
import { volumeToPlane } from "../viewer/geometry";

export interface Pinned {
  id: number;
  z: number;
  y: number;
  x: number;
  resolved: boolean;
}

export interface PlaneMarker<T extends Pinned> {
  item: T;
  /** Plane coordinates (level-0 voxels) of the voxel centre. */
  row: number;
  col: number;
}

/**
 * Markers of `comments` on the slice `index` of the view perpendicular to `axis`: a comment
 * at (z, y, x) belongs to XY slice z, XZ slice y and YZ slice x. Resolved comments are left
 * out unless `showResolved`.
 */
export function markersOnSlice<T extends Pinned>(
  comments: readonly T[],
  axis: Axis,
  index: number,
  { showResolved = false }: { showResolved?: boolean } = {},
): PlaneMarker<T>[] {
  const out: PlaneMarker<T>[] = [];
  for (const c of comments) {
    if (c.resolved && !showResolved) continue;
    const p = volumeToPlane(axis, [c.z, c.y, c.x] as Zyx);
    if (p.index !== index) continue;
    out.push({ item: c, row: p.row + 0.5, col: p.col + 0.5 });
  }
  return out;
}

/**
 * The number each thread is pinned as, 1..n in the order the threads were started (by id),
 * so two threads never share a number and a number stays put when others are resolved.
 * (Pins showed the message count, so every new thread read "1".)
 */
export function threadNumbers(threads: readonly { id: number }[]): Map<number, number> {
  const ids = threads.map((t) => t.id).sort((a, b) => a - b);
  return new Map(ids.map((id, i) => [id, i + 1]));
}

/** Assignment id of a volume-page URL search string (?review=12), or null. */
export function reviewIdFrom(search: string): number | null {
  const raw = new URLSearchParams(search).get("review");
  if (raw === null || !/^\d+$/.test(raw)) return null;
  return Number(raw);
}
