/** What the review panels get from the volume page, and the few viewer moves they make. */
import type { Zyx } from "../api/types";
import type { ViewerContext } from "../viewer/context";
import type { LayersPanel } from "../viewer/layers_panel";
import type { SliceView } from "../viewer/slice_view";

export interface ReviewHost {
  ctx: ViewerContext;
  views: readonly SliceView[];
  layers: LayersPanel;
}

/** Move the crosshair to a voxel (clamped to the volume) and centre every view on it. */
export function jumpTo(host: ReviewHost, zyx: Zyx): void {
  const shape = host.ctx.info.shape;
  host.ctx.focus.value = zyx.map((v, i) => Math.min(shape[i]! - 1, Math.max(0, Math.round(v)))) as Zyx;
  for (const v of host.views) v.centerOnFocus();
}

/** The voxel a pinned comment goes to: under the pointer when it is inside the volume, else the crosshair. */
export function cursorVoxel(host: ReviewHost): Zyx {
  const shape = host.ctx.info.shape;
  const hv = host.ctx.hover.value;
  if (hv !== null) {
    const v = hv.point.map(Math.floor) as Zyx;
    if (v.every((c, i) => c >= 0 && c < shape[i]!)) return v;
  }
  return [...host.ctx.focus.value];
}

export function notify(host: ReviewHost, text: string, kind: "info" | "error" = "info"): void {
  host.ctx.session.notices.dispatch(text, kind);
}

export function formatTime(iso: string, { seconds = false }: { seconds?: boolean } = {}): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", ...(seconds ? { second: "2-digit" } : {}),
  });
}
