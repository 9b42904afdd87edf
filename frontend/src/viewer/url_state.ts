/**
 * The whole view in the URL hash, so that a link is a view:
 * `#z=3&y=120&x=44&zoom=0.25&cy=118.5&cx=60&hide=prediction&opacity=manual:0.6,cells:0.3`
 * holds the crosshair (z is the XY slice), the XY view's zoom (screen px per nm, as
 * results/viewer_link.ts writes it) and centre (plane row, col), the layers hidden and
 * the layer opacities. Every key is optional; what a link leaves out keeps its default.
 */
import type { Zyx } from "../api/types";

export interface UrlState {
  focus?: Zyx;
  zoom?: number;
  /** XY view centre, continuous plane [row, col] = [y, x]. */
  center?: [number, number];
  /** Names of the layers hidden. */
  hidden?: string[];
  /** Opacity (0..1) per layer name. */
  opacity?: Record<string, number>;
}

const NAME = /^[A-Za-z0-9_.-]{1,50}$/;

function num(params: URLSearchParams, key: string): number | undefined {
  const raw = params.get(key);
  if (raw === null || raw.trim() === "") return undefined;
  const v = Number(raw);
  return Number.isFinite(v) ? v : undefined;
}

export function parseUrlState(hash: string): UrlState {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const out: UrlState = {};
  const [z, y, x] = [num(params, "z"), num(params, "y"), num(params, "x")];
  if (z !== undefined && y !== undefined && x !== undefined) out.focus = [Math.floor(z), Math.floor(y), Math.floor(x)];
  const zoom = num(params, "zoom");
  if (zoom !== undefined && zoom > 0) out.zoom = zoom;
  const [cy, cx] = [num(params, "cy"), num(params, "cx")];
  if (cy !== undefined && cx !== undefined) out.center = [cy, cx];
  const hide = params.get("hide");
  if (hide !== null) out.hidden = hide.split(",").filter((n) => NAME.test(n));
  const opacity = params.get("opacity");
  if (opacity !== null) {
    const map: Record<string, number> = {};
    for (const part of opacity.split(",")) {
      const [name, value] = part.split(":");
      const v = Number(value);
      if (name !== undefined && NAME.test(name) && value !== undefined && value !== "" && Number.isFinite(v)) {
        map[name] = Math.min(1, Math.max(0, v));
      }
    }
    out.opacity = map;
  }
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
  if (s.center !== undefined) {
    params.set("cy", String(Math.round(s.center[0] * 10) / 10));
    params.set("cx", String(Math.round(s.center[1] * 10) / 10));
  }
  if (s.hidden !== undefined && s.hidden.length > 0) params.set("hide", s.hidden.join(","));
  if (s.opacity !== undefined && Object.keys(s.opacity).length > 0) {
    params.set("opacity", Object.entries(s.opacity).map(([n, v]) => `${n}:${Math.round(v * 100) / 100}`).join(","));
  }
  // Commas and colons read better unescaped, and URLSearchParams accepts them back.
  return "#" + params.toString().replace(/%2C/g, ",").replace(/%3A/g, ":");
}
