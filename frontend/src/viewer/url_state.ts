/** The view position in the URL hash (#z=3&y=120&x=44&zoom=0.25) so links reopen the same place. */
import type { Zyx } from "../api/types";

export interface UrlState {
  focus?: Zyx;
  zoom?: number;
}

export function parseUrlState(hash: string): UrlState {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const out: UrlState = {};
  const z = Number(params.get("z"));
  const y = Number(params.get("y"));
  const x = Number(params.get("x"));
  if ([params.get("z"), params.get("y"), params.get("x")].every((v) => v !== null && v !== "") &&
    [z, y, x].every(Number.isFinite)) {
    out.focus = [Math.floor(z), Math.floor(y), Math.floor(x)];
  }
  const zoom = Number(params.get("zoom"));
  if (params.get("zoom") !== null && Number.isFinite(zoom) && zoom > 0) out.zoom = zoom;
  return out;
}

export function formatUrlState(s: UrlState): string {
  const params = new URLSearchParams();
  if (s.focus !== undefined) {
    params.set("z", String(s.focus[0]));
    params.set("y", String(s.focus[1]));
    params.set("x", String(s.focus[2]));
  }
  if (s.zoom !== undefined) params.set("zoom", s.zoom.toPrecision(4));
  return "#" + params.toString();
}
