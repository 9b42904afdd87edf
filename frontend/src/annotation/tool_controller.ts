/**
 * Turns pointer gestures on a slice view into strokes: brush/eraser drags, flood-fill
 * clicks, polygon clicks or lasso drags, and the label picker. Coordinates given to it
 * are continuous level-0 plane coordinates; strokes carry integer voxel indices.
 */
import { api } from "../api/http";
import type { Axis, Stroke, StrokeMode } from "../api/types";
import { planeOf, planeToVolume } from "../viewer/geometry";
import type { ViewerContext } from "../viewer/context";
import { decimate, type Point } from "./brush";
import { toHex } from "./colors";

export function newUuid(): string {
  if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A gesture in progress, drawn by the view on top of everything. */
export interface Gesture {
  axis: Axis;
  index: number;
  kind: "brush" | "polygon" | "lasso";
  points: Point[];
  color: string;
  radius: number;
  erase: boolean;
}

/** Colour of `layer`'s label tile under the cursor, or null where it is transparent. */
export type PickSampler = (layer: string) => [number, number, number] | null;

const LABEL: Record<StrokeMode, string> = {
  paint: "brush",
  erase: "eraser",
  fill: "flood fill",
  polygon: "polygon fill",
};

/** How long a brush click waits for a second click before it paints (a double-click only
 *  sets the crosshair). Chromium's double-click interval on Linux is 400 ms by default. */
export const DOUBLE_CLICK_MS = 400;

export class ToolController {
  gesture: Gesture | null = null;
  private dragMoved = false;
  /** A brush or eraser click (no drag) waiting to see whether it is half of a double-click. */
  private pendingClick: { timer: ReturnType<typeof setTimeout>; send: () => void } | null = null;

  constructor(
    private readonly ctx: ViewerContext,
    private readonly onChange: () => void,
  ) {}

  private toVoxel(axis: Axis, row: number, col: number): Point {
    const [rows, cols] = planeOf(this.ctx.info.shape, axis);
    return [
      Math.min(rows - 1, Math.max(0, Math.floor(row))),
      Math.min(cols - 1, Math.max(0, Math.floor(col))),
    ];
  }

  private color(): string {
    const t = this.ctx.tools;
    const rgb = this.ctx.session.colorFor(t.activeLayer, t.paintValue);
    return toHex(rgb);
  }

  /** Pointer pressed with a tool. Returns true when the controller takes the drag. */
  down(axis: Axis, index: number, row: number, col: number, sample?: PickSampler): boolean {
    this.flushPendingClick();
    const tool = this.ctx.tools.tool.value;
    if (tool === "picker") {
      void this.pick(axis, index, row, col, sample);
      return false;
    }
    if (!this.ctx.canPaint) return false;
    const p = this.toVoxel(axis, row, col);
    if (tool === "fill") {
      this.send(axis, index, [p], "fill");
      return false;
    }
    if (tool === "polygon") {
      if (this.gesture !== null && this.gesture.kind === "polygon") {
        // Clicking near the first vertex closes the polygon.
        const first = this.gesture.points[0]!;
        const pxPerVoxel = 1;
        if (this.gesture.points.length >= 3 && Math.hypot(first[0] - p[0], first[1] - p[1]) <= 2 * pxPerVoxel) {
          this.finishPolygon();
          return false;
        }
        if (this.gesture.axis === axis && this.gesture.index === index) {
          this.gesture.points.push(p);
          this.onChange();
          return true;
        }
      }
      this.gesture = { axis, index, kind: "lasso", points: [p], color: this.color(), radius: 0, erase: false };
      this.dragMoved = false;
      this.onChange();
      return true;
    }
    if (tool === "brush" || tool === "eraser") {
      this.gesture = {
        axis,
        index,
        kind: "brush",
        points: [p],
        color: this.color(),
        radius: this.ctx.tools.radius.value,
        erase: tool === "eraser",
      };
      this.onChange();
      return true;
    }
    return false;
  }

  move(axis: Axis, row: number, col: number): void {
    const g = this.gesture;
    if (g === null || g.axis !== axis) return;
    const p = this.toVoxel(axis, row, col);
    const last = g.points[g.points.length - 1]!;
    if (last[0] === p[0] && last[1] === p[1]) return;
    if (g.kind === "brush" || g.kind === "lasso") {
      g.points.push(p);
      this.dragMoved = true;
      this.onChange();
    }
  }

  up(): void {
    const g = this.gesture;
    if (g === null) return;
    if (g.kind === "brush") {
      this.gesture = null;
      const pts = decimate(g.points, Math.max(1, g.radius / 2));
      const send = () => this.send(g.axis, g.index, pts, g.erase ? "erase" : "paint", g.radius);
      if (g.points.length === 1) {
        // A click, not a drag: it may be the first half of a double-click.
        const timer = setTimeout(() => this.flushPendingClick(), DOUBLE_CLICK_MS);
        this.pendingClick = { timer, send };
      } else {
        send();
      }
    } else if (g.kind === "lasso") {
      if (this.dragMoved && g.points.length >= 3) {
        this.gesture = null;
        this.send(g.axis, g.index, decimate(g.points, 1), "polygon");
      } else {
        // A click without a drag starts a click-by-click polygon.
        g.kind = "polygon";
        g.points = g.points.slice(0, 1);
      }
    }
    this.onChange();
  }

  /** The second press of a double-click: drop the first click's dot. True if there was one. */
  cancelPendingClick(): boolean {
    const p = this.pendingClick;
    if (p === null) return false;
    clearTimeout(p.timer);
    this.pendingClick = null;
    return true;
  }

  /** Paint the waiting click now (its double-click window ended, or another gesture began). */
  flushPendingClick(): void {
    const p = this.pendingClick;
    if (p === null) return;
    clearTimeout(p.timer);
    this.pendingClick = null;
    p.send();
  }

  /** Close the click-by-click polygon (double-click, Enter, or a click on the first vertex). */
  finishPolygon(): void {
    const g = this.gesture;
    if (g === null || g.kind !== "polygon") return;
    this.gesture = null;
    if (g.points.length >= 3) this.send(g.axis, g.index, g.points, "polygon");
    this.onChange();
  }

  cancel(): void {
    if (this.gesture === null) return;
    this.gesture = null;
    this.onChange();
  }

  private send(axis: Axis, index: number, points: Point[], mode: StrokeMode, radius = 0): void {
    const t = this.ctx.tools;
    const stroke: Stroke = {
      uuid: newUuid(),
      layer: t.activeLayer,
      axis,
      index,
      points,
      radius: mode === "paint" || mode === "erase" ? radius : 0,
      value: mode === "erase" ? 0 : t.paintValue,
      mode,
    };
    const what = t.instanceMode.value ? `cell ${stroke.value}` : this.className(stroke.value);
    this.ctx.session.submit(stroke, `${LABEL[mode]} · ${mode === "erase" ? t.activeLayer : what} · ${axis} ${index}`);
  }

  private className(value: number): string {
    return this.ctx.info.classes.find((c) => c.value === value && c.kind === "semantic")?.name ?? `value ${value}`;
  }

  /** Label picker: ask the server for the value under the cursor; fall back to colour matching. */
  private async pick(axis: Axis, index: number, row: number, col: number, sample?: PickSampler): Promise<void> {
    const [z, y, x] = planeToVolume(axis, index, Math.floor(row), Math.floor(col));
    const t = this.ctx.tools;
    const layer = t.activeLayer;
    try {
      const { value } = await api.labelValue(this.ctx.info.id, layer, z, y, x);
      if (value === 0) return;
      if (t.instanceMode.value) t.cellId.value = value;
      else t.classValue.value = value;
      return;
    } catch {
      /* no value endpoint: match the tile colour against the class colours below */
    }
    const rgb = sample?.(layer) ?? null;
    const hit = rgb === null ? undefined : this.ctx.info.classes.find((c) => c.kind === "semantic" && c.color.toLowerCase() === toHex(rgb));
    if (hit !== undefined && !t.instanceMode.value) t.classValue.value = hit.value;
    else this.ctx.session.notices.dispatch("Picker: no label under the cursor", "info");
  }
}
