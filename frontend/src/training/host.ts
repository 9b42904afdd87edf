/** What the model-loop panels get from the volume page, and centring the views on a voxel. */
import type { VolumeSocket } from "../api/socket";
import type { AnnotationSession } from "../annotation/session";
import type { ViewerContext } from "../viewer/context";
import type { SliceView } from "../viewer/slice_view";

export interface LoopHost {
  ctx: ViewerContext;
  socket: VolumeSocket;
  session: AnnotationSession;
  views: readonly SliceView[];
}

/** Move the crosshair to a voxel (clamped to the volume) and centre every view on it. */
export function centreOn(host: LoopHost, zyx: [number, number, number]): void {
  const shape = host.ctx.info.shape;
  host.ctx.focus.value = zyx.map((v, i) => Math.min(shape[i]! - 1, Math.max(0, Math.round(v)))) as [number, number, number];
  for (const v of host.views) v.centerOnFocus();
}
