/**
 * One slice view (XY, XZ or YZ): a canvas that draws the image pyramid tiles, the label
 * layers with the optimistic stroke previews, the linked crosshair, the brush cursor and
 * any gesture in progress; and turns wheel/pointer input into zoom, pan, slice changes
 * and tool gestures.
 */
import { imageTileUrl, labelTileUrl, type TileAddress } from "../api/http";
import type { Axis, LevelInfo, Zyx } from "../api/types";
import type { Rgb } from "../annotation/colors";
import type { PlaneMask } from "../annotation/mask";
import { DOUBLE_CLICK_MS, ToolController } from "../annotation/tool_controller";
import { type Disposable, DisposableSet, listen } from "../core/disposable";
import { h } from "../core/dom";
import { Signal, Trackable } from "../core/trackable";
import type { LayerDisplay, ViewerContext } from "./context";
import { AXIS_DIM, DIM_NAME, indexAtLevel, planeDims, planeOf, planeToVolume, sliceCount } from "./geometry";
import { selectLevel, snappedRect, type TileRef, visibleTiles } from "./pyramid";
import { scaleBar } from "./scale_bar";
import type { TileImage } from "./tile_cache";
import {
  fitPlane,
  panBy,
  planeToScreen,
  screenToPlane,
  type ViewState,
  type Viewport,
  zoomAround,
} from "./view_transform";

const PLANE_NAME: Record<Axis, string> = { z: "XY", y: "XZ", x: "YZ" };
/** Colour of the plane perpendicular to each axis, used for its border and its crosshair line. */
export const AXIS_COLOR: Record<Axis, string> = { z: "#4ea1ff", y: "#5fd38d", x: "#ff6b6b" };

/**
 * Extra tiles drawn over the label layers (e.g. the review diff): `key` names the tile set
 * in the cache, `url` gives a tile's address.
 */
export interface TileOverlay {
  key: string;
  /** A plain function (it is passed on unbound), not a method. */
  url: (a: TileAddress) => string;
  opacity: number;
}

function maskCanvas(mask: PlaneMask, rgb: Rgb): HTMLCanvasElement {
  const c = document.createElement("canvas");
  c.width = Math.max(1, mask.cols);
  c.height = Math.max(1, mask.rows);
  const g = c.getContext("2d")!;
  const img = g.createImageData(c.width, c.height);
  for (let i = 0; i < mask.data.length; i++) {
    if (mask.data[i] !== 1) continue;
    img.data[4 * i] = rgb[0];
    img.data[4 * i + 1] = rgb[1];
    img.data[4 * i + 2] = rgb[2];
    img.data[4 * i + 3] = 255;
  }
  g.putImageData(img, 0, 0);
  return c;
}

export class SliceView implements Disposable {
  readonly element: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  readonly view = new Trackable<ViewState>({ centerRow: 0, centerCol: 0, pxPerNm: 1 });
  /** Level drawn in the last frame (for the status bar). */
  readonly level = new Trackable(0);
  /** Tile sets drawn above the label layers, below the crosshair. */
  readonly overlays = new Trackable<readonly TileOverlay[]>([]);
  /** Fires after every frame, so DOM overlays (comment markers) can follow the view. */
  readonly rendered = new Signal();
  private readonly g: CanvasRenderingContext2D;
  private readonly layerCanvas = document.createElement("canvas");
  private readonly lg: CanvasRenderingContext2D;
  private readonly label: HTMLDivElement;
  private readonly scale: HTMLDivElement;
  private readonly scaleText: HTMLSpanElement;
  private readonly disposers = new DisposableSet();
  private readonly maskCanvases = new WeakMap<PlaneMask, HTMLCanvasElement>();
  private width = 0;
  private height = 0;
  private dpr = 1;
  private frameRequested = false;
  private fitted = false;
  /** A view to open at instead of the fit (a link's zoom and centre), applied at the first layout. */
  private pendingView: ((fitted: ViewState) => ViewState) | null = null;
  private drag: { kind: "pan" | "tool"; x: number; y: number; moved: boolean; button: number } | null = null;
  private mouse: [number, number] | null = null;
  /** Where and when the last tool click (press and release without a drag) ended. */
  private lastClick: { x: number; y: number; t: number } | null = null;

  constructor(
    readonly axis: Axis,
    private readonly ctx: ViewerContext,
    private readonly tools: ToolController,
  ) {
    this.canvas = h("canvas", { "data-axis": axis, tabindex: 0 });
    this.label = h("div", { class: "view-label" });
    this.scaleText = h("span");
    this.scale = h("div", { class: "scale-bar" }, h("div", { class: "scale-bar-line" }), this.scaleText);
    this.element = h(
      "div",
      {
        class: `view view-${PLANE_NAME[axis].toLowerCase()}`,
        id: `viewer-${PLANE_NAME[axis].toLowerCase()}`,
        style: `--axis-color: ${AXIS_COLOR[axis]}`,
      },
      this.canvas,
      this.label,
      this.scale,
    );
    this.g = this.canvas.getContext("2d")!;
    this.lg = this.layerCanvas.getContext("2d")!;

    const redraw = () => this.requestRender();
    const d = this.disposers;
    d.add(ctx.focus.subscribe(redraw));
    d.add(ctx.window.subscribe(redraw));
    d.add(ctx.hover.subscribe(redraw));
    d.add(ctx.redraw.add(redraw));
    d.add(ctx.cache.loaded.add(redraw));
    d.add(ctx.session.versions.subscribe(redraw));
    d.add(ctx.session.onPreviewsChanged(redraw));
    d.add(ctx.session.complete.subscribe(redraw));
    d.add(ctx.tools.radius.subscribe(redraw));
    d.add(ctx.tools.tool.subscribe(redraw));
    d.add(this.view.subscribe(redraw));
    d.add(this.overlays.subscribe(redraw));
    const follow = (l: LayerDisplay) => {
      d.add(l.visible.subscribe(redraw));
      d.add(l.opacity.subscribe(redraw));
    };
    ctx.layers.forEach(follow);
    d.add(ctx.layerAdded.add((l) => {
      follow(l);
      redraw();
    }));
    const ro = new ResizeObserver(() => this.resize());
    ro.observe(this.element);
    d.add(() => ro.disconnect());
    this.bindInput();
  }

  dispose(): void {
    this.disposers.dispose();
  }

  get viewport(): Viewport {
    const [rowNm, colNm] = planeOf(this.ctx.info.voxel_size_nm, this.axis);
    return { width: this.width, height: this.height, rowNm, colNm };
  }

  get sliceIndex(): number {
    return this.ctx.focus.value[AXIS_DIM[this.axis]];
  }

  fit(): void {
    if (this.width === 0) return;
    const [rows, cols] = planeOf(this.ctx.info.shape, this.axis);
    this.view.value = fitPlane(this.viewport, rows, cols);
  }

  /**
   * Show the view `make` returns from the fitted one. Before the first layout it waits for
   * it: setting the view earlier was overwritten by the first fit (a link's zoom was lost).
   */
  openAt(make: (fitted: ViewState) => ViewState): void {
    if (this.fitted) this.view.value = make(this.view.value);
    else this.pendingView = make;
  }

  /** Center the view on the focus point, keeping the zoom. */
  centerOnFocus(): void {
    const [r, c] = planeDims(this.axis);
    const f = this.ctx.focus.value;
    this.view.value = { ...this.view.value, centerRow: f[r] + 0.5, centerCol: f[c] + 0.5 };
  }

  requestRender(): void {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      if (!this.disposers.isDisposed) this.render();
    });
  }

  private resize(): void {
    const rect = this.element.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.width = Math.max(1, Math.floor(rect.width));
    this.height = Math.max(1, Math.floor(rect.height));
    this.canvas.width = Math.round(this.width * this.dpr);
    this.canvas.height = Math.round(this.height * this.dpr);
    this.canvas.style.width = `${this.width}px`;
    this.canvas.style.height = `${this.height}px`;
    this.layerCanvas.width = this.canvas.width;
    this.layerCanvas.height = this.canvas.height;
    if (!this.fitted && rect.width > 0) {
      this.fitted = true;
      this.fit();
      const make = this.pendingView;
      this.pendingView = null;
      if (make !== null) this.view.value = make(this.view.value);
    }
    this.render();
  }

  // ---------------------------------------------------------------- rendering

  private currentLevel(): LevelInfo {
    const { colNm } = this.viewport;
    const devicePxPerVoxel = colNm * this.view.value.pxPerNm * this.dpr;
    const n = selectLevel(this.ctx.info.levels, this.axis, devicePxPerVoxel);
    return this.ctx.info.levels.find((l) => l.level === n) ?? this.ctx.info.levels[0]!;
  }

  private address(level: LevelInfo, t: TileRef): TileAddress {
    return { axis: this.axis, index: indexAtLevel(this.axis, this.sliceIndex, level), level: level.level, ty: t.ty, tx: t.tx };
  }

  private tileKey(layer: string, a: TileAddress): string {
    return `${layer}|${a.axis}|${a.index}|${a.level}|${a.ty}|${a.tx}`;
  }

  private tileUrl(layer: LayerDisplay, a: TileAddress): string {
    const id = this.ctx.info.id;
    if (layer.kind === "image") return imageTileUrl(id, a, this.ctx.window.value);
    const version = this.ctx.session.versions.value[layer.name] ?? 0;
    return labelTileUrl(id, layer.name, a, layer.kind === "labels" ? `${version}.${this.ctx.paletteKey}` : version);
  }

  /** Draw one tile set into `g`; returns whether every tile was the requested version. */
  private drawTiles(g: CanvasRenderingContext2D, name: string, url: (a: TileAddress) => string, level: LevelInfo): boolean {
    const vp = this.viewport;
    const view = this.view.value;
    const T = this.ctx.info.tile_size;
    let allFresh = true;
    for (const t of visibleTiles(view, vp, level, this.axis, T)) {
      const a = this.address(level, t);
      const hit = this.ctx.cache.request(this.tileKey(name, a), url(a));
      if (!hit.fresh) allFresh = false;
      if (hit.image !== null) {
        const r = snappedRect(view, vp, this.dpr, t.r0, t.r1, t.c0, t.c1);
        g.drawImage(hit.image, r.x, r.y, r.w, r.h);
      } else if (!hit.fresh) {
        this.drawFallback(g, name, level, t);
      }
    }
    return allFresh;
  }

  /** While a tile loads, draw the matching part of an already loaded coarser tile. */
  private drawFallback(g: CanvasRenderingContext2D, name: string, level: LevelInfo, t: TileRef): void {
    const T = this.ctx.info.tile_size;
    for (const coarse of this.ctx.info.levels) {
      if (coarse.level <= level.level || coarse.level > level.level + 4) continue;
      const [dsR, dsC] = planeOf(coarse.downsample, this.axis);
      const ty = Math.floor(t.r0 / (T * dsR));
      const tx = Math.floor(t.c0 / (T * dsC));
      const a: TileAddress = {
        axis: this.axis,
        index: indexAtLevel(this.axis, this.sliceIndex, coarse),
        level: coarse.level,
        ty,
        tx,
      };
      const img: TileImage | null = this.ctx.cache.peek(this.tileKey(name, a));
      if (img === null) continue;
      const ar0 = ty * T * dsR;
      const ac0 = tx * T * dsC;
      const sx = (t.c0 - ac0) / dsC;
      const sy = (t.r0 - ar0) / dsR;
      const sw = Math.min(img.width - sx, (t.c1 - t.c0) / dsC);
      const sh = Math.min(img.height - sy, (t.r1 - t.r0) / dsR);
      if (sw <= 0 || sh <= 0) return;
      const r = snappedRect(this.view.value, this.viewport, this.dpr, t.r0, t.r0 + sh * dsR, t.c0, t.c0 + sw * dsC);
      g.drawImage(img, sx, sy, sw, sh, r.x, r.y, r.w, r.h);
      return;
    }
  }

  private drawMask(g: CanvasRenderingContext2D, mask: PlaneMask, rgb: Rgb): void {
    let c = this.maskCanvases.get(mask);
    if (c === undefined) {
      c = maskCanvas(mask, rgb);
      this.maskCanvases.set(mask, c);
    }
    const r = snappedRect(this.view.value, this.viewport, this.dpr, mask.r0, mask.r0 + mask.rows, mask.c0, mask.c0 + mask.cols);
    g.drawImage(c, r.x, r.y, r.w, r.h);
  }

  render(): void {
    if (this.width === 0) return;
    const g = this.g;
    const vp = this.viewport;
    const view = this.view.value;
    this.ctx.cache.beginFrame();
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.globalAlpha = 1;
    g.globalCompositeOperation = "source-over";
    g.fillStyle = "#0b0d10";
    g.fillRect(0, 0, this.canvas.width, this.canvas.height);

    const level = this.currentLevel();
    this.level.value = level.level;
    const [dsRow, dsCol] = planeOf(level.downsample, this.axis);
    const devicePxPerLevelVoxel = vp.colNm * view.pxPerNm * this.dpr * Math.min(dsRow, dsCol);

    // Plane outline, so empty areas read as "outside the volume".
    const [rows, cols] = planeOf(this.ctx.info.shape, this.axis);
    const outline = snappedRect(view, vp, this.dpr, 0, rows, 0, cols);
    g.fillStyle = "#15181d";
    g.fillRect(outline.x, outline.y, outline.w, outline.h);

    for (const layer of this.ctx.layers) {
      if (!layer.visible.value || layer.opacity.value <= 0) continue;
      if (layer.kind === "image") {
        g.imageSmoothingEnabled = devicePxPerLevelVoxel < 1.5;
        g.imageSmoothingQuality = "high";
        g.globalAlpha = layer.opacity.value;
        this.drawTiles(g, layer.name, (a) => this.tileUrl(layer, a), level);
        g.globalAlpha = 1;
        continue;
      }
      // Label layers go through an offscreen canvas so erase previews can cut holes in
      // the tiles, and the layer opacity applies to tiles and previews together.
      const lg = this.lg;
      lg.setTransform(1, 0, 0, 1, 0, 0);
      lg.globalCompositeOperation = "source-over";
      lg.clearRect(0, 0, this.layerCanvas.width, this.layerCanvas.height);
      lg.imageSmoothingEnabled = false;
      const fresh = this.drawTiles(lg, layer.name, (a) => this.tileUrl(layer, a), level);
      const version = this.ctx.session.versions.value[layer.name] ?? 0;
      for (const { preview, mask } of this.ctx.session.previewsIn(this.axis, this.sliceIndex, layer.name)) {
        if (fresh && preview.ackVersion !== undefined && version >= preview.ackVersion) continue;
        lg.globalCompositeOperation = preview.erase ? "destination-out" : "source-over";
        this.drawMask(lg, mask, preview.rgb);
      }
      lg.globalCompositeOperation = "source-over";
      g.imageSmoothingEnabled = false;
      g.globalAlpha = layer.opacity.value;
      g.drawImage(this.layerCanvas, 0, 0);
      g.globalAlpha = 1;
    }

    g.imageSmoothingEnabled = false;
    for (const o of this.overlays.value) {
      if (o.opacity <= 0) continue;
      g.globalAlpha = o.opacity;
      this.drawTiles(g, o.key, o.url, level);
      g.globalAlpha = 1;
    }

    this.drawCrosshair(g);
    this.drawGestureAndCursor(g);
    this.updateOverlays(level);
    this.rendered.dispatch();
  }

  private drawCrosshair(g: CanvasRenderingContext2D): void {
    const [rd, cd] = planeDims(this.axis);
    const f = this.ctx.focus.value;
    const [sx, sy] = planeToScreen(this.view.value, this.viewport, f[rd] + 0.5, f[cd] + 0.5);
    const d = this.dpr;
    g.save();
    g.lineWidth = Math.max(1, d);
    g.globalAlpha = 0.7;
    g.setLineDash([6 * d, 4 * d]);
    g.strokeStyle = AXIS_COLOR[DIM_NAME[rd]];
    g.beginPath();
    g.moveTo(0, Math.round(sy * d) + 0.5);
    g.lineTo(this.canvas.width, Math.round(sy * d) + 0.5);
    g.stroke();
    g.strokeStyle = AXIS_COLOR[DIM_NAME[cd]];
    g.beginPath();
    g.moveTo(Math.round(sx * d) + 0.5, 0);
    g.lineTo(Math.round(sx * d) + 0.5, this.canvas.height);
    g.stroke();
    g.restore();
  }

  private drawGestureAndCursor(g: CanvasRenderingContext2D): void {
    const d = this.dpr;
    const vp = this.viewport;
    const view = this.view.value;
    const toScreen = (r: number, c: number): [number, number] => {
      const [x, y] = planeToScreen(view, vp, r + 0.5, c + 0.5);
      return [x * d, y * d];
    };
    const gest = this.tools.gesture;
    if (gest !== null && gest.axis === this.axis && gest.index === this.sliceIndex && gest.points.length > 0) {
      g.save();
      g.lineCap = "round";
      g.lineJoin = "round";
      if (gest.kind === "brush") {
        g.globalAlpha = 0.75;
        g.strokeStyle = gest.erase ? "rgba(255,255,255,0.9)" : gest.color;
        g.fillStyle = g.strokeStyle;
        g.lineWidth = Math.max(1, 2 * gest.radius * vp.colNm * view.pxPerNm * d);
        if (gest.erase) g.setLineDash([4 * d, 4 * d]);
        g.beginPath();
        const [x0, y0] = toScreen(...gest.points[0]!);
        g.moveTo(x0, y0);
        for (const p of gest.points) g.lineTo(...toScreen(...p));
        if (gest.points.length === 1) g.lineTo(x0 + 0.01, y0);
        g.stroke();
      } else {
        g.strokeStyle = gest.color;
        g.fillStyle = gest.color;
        g.lineWidth = 1.5 * d;
        g.beginPath();
        const [x0, y0] = toScreen(...gest.points[0]!);
        g.moveTo(x0, y0);
        for (const p of gest.points) g.lineTo(...toScreen(...p));
        if (gest.kind === "polygon" && this.mouse !== null) g.lineTo(this.mouse[0] * d, this.mouse[1] * d);
        g.closePath();
        g.globalAlpha = 0.25;
        g.fill();
        g.globalAlpha = 1;
        g.stroke();
        for (const p of gest.points) {
          const [x, y] = toScreen(...p);
          g.fillRect(x - 2 * d, y - 2 * d, 4 * d, 4 * d);
        }
      }
      g.restore();
    }
    const tool = this.ctx.tools.tool.value;
    if (this.mouse !== null && (tool === "brush" || tool === "eraser") && this.ctx.canPaint && this.drag?.kind !== "pan") {
      const [mx, my] = this.mouse;
      const [row, col] = screenToPlane(view, vp, mx, my);
      const [cx, cy] = toScreen(Math.floor(row), Math.floor(col));
      const rx = Math.max(2, this.ctx.tools.radius.value * vp.colNm * view.pxPerNm * d);
      const ry = Math.max(2, this.ctx.tools.radius.value * vp.rowNm * view.pxPerNm * d);
      g.save();
      g.strokeStyle = "rgba(255,255,255,0.85)";
      g.lineWidth = d;
      g.beginPath();
      g.ellipse(cx, cy, rx, ry, 0, 0, Math.PI * 2);
      g.stroke();
      g.strokeStyle = "rgba(0,0,0,0.6)";
      g.beginPath();
      g.ellipse(cx, cy, rx + d, ry + d, 0, 0, Math.PI * 2);
      g.stroke();
      g.restore();
    }
  }

  private updateOverlays(level: LevelInfo): void {
    const n = sliceCount(this.ctx.info.shape, this.axis);
    const complete = this.ctx.session.isComplete(this.axis, this.sliceIndex) ? " · complete" : "";
    this.label.textContent = `${PLANE_NAME[this.axis]} · ${this.axis} ${this.sliceIndex} / ${n} · L${level.level}${complete}`;
    const vp = this.viewport;
    const bar = scaleBar(this.view.value.pxPerNm, Math.min(140, vp.width / 3));
    (this.scale.firstChild as HTMLElement).style.width = `${bar.px}px`;
    this.scaleText.textContent = bar.label;
  }

  // ---------------------------------------------------------------- input

  private planeAt(ev: MouseEvent): [number, number] {
    const rect = this.canvas.getBoundingClientRect();
    return screenToPlane(this.view.value, this.viewport, ev.clientX - rect.left, ev.clientY - rect.top);
  }

  private screenAt(ev: MouseEvent): [number, number] {
    const rect = this.canvas.getBoundingClientRect();
    return [ev.clientX - rect.left, ev.clientY - rect.top];
  }

  /** Colour of a label tile under the last pointer position (for the picker fallback). */
  private sampleLabel(layer: string, row: number, col: number): [number, number, number] | null {
    const T = this.ctx.info.tile_size;
    const [r, c] = [Math.floor(row), Math.floor(col)];
    const a: TileAddress = { axis: this.axis, index: this.sliceIndex, level: 0, ty: Math.floor(r / T), tx: Math.floor(c / T) };
    const img = this.ctx.cache.peek(this.tileKey(layer, a));
    if (img === null) return null;
    const probe = document.createElement("canvas");
    probe.width = 1;
    probe.height = 1;
    const pg = probe.getContext("2d")!;
    pg.drawImage(img, -(c - a.tx * T), -(r - a.ty * T));
    const px = pg.getImageData(0, 0, 1, 1).data;
    if (px[3] === 0) return null;
    return [px[0]!, px[1]!, px[2]!];
  }

  private bindInput(): void {
    const d = this.disposers;
    const c = this.canvas;
    d.add(
      listen(c, "wheel", (ev: WheelEvent) => {
        ev.preventDefault();
        const delta = ev.deltaY !== 0 ? ev.deltaY : ev.deltaX;
        if (ev.ctrlKey || ev.altKey || ev.shiftKey || ev.metaKey) {
          this.ctx.stepSlice(this.axis, delta > 0 ? 1 : -1);
          return;
        }
        const [sx, sy] = this.screenAt(ev);
        const factor = Math.exp(-delta * (ev.deltaMode === 1 ? 0.05 : 0.0015));
        this.view.value = zoomAround(this.view.value, this.viewport, sx, sy, factor);
      }, { passive: false }),
    );
    d.add(listen(c, "contextmenu", (ev: Event) => ev.preventDefault()));
    d.add(
      listen(c, "pointerdown", (ev: PointerEvent) => {
        c.focus({ preventScroll: true });
        this.ctx.activeAxis.value = this.axis;
        const tool = this.ctx.tools.tool.value;
        const panning = ev.button === 1 || (ev.button === 0 && (this.ctx.spaceHeld.value || tool === "pan"));
        if (panning) {
          ev.preventDefault();
          c.setPointerCapture(ev.pointerId);
          this.drag = { kind: "pan", x: ev.clientX, y: ev.clientY, moved: false, button: ev.button };
          this.element.classList.add("panning");
          return;
        }
        if (ev.button !== 0) return;
        // The second press of a double-click sets the crosshair (dblclick below) and paints
        // nothing: the first click's brush dot, still waiting, is dropped too. (A pointerdown's
        // `detail` is 0 in Chromium, so the click count is kept here.)
        const last = this.lastClick;
        this.lastClick = null;
        if (last !== null && ev.timeStamp - last.t < DOUBLE_CLICK_MS && Math.hypot(ev.clientX - last.x, ev.clientY - last.y) < 6
          && this.tools.cancelPendingClick()) return;
        const [row, col] = this.planeAt(ev);
        const took = this.tools.down(this.axis, this.sliceIndex, row, col, (layer) => this.sampleLabel(layer, row, col));
        if (took) {
          c.setPointerCapture(ev.pointerId);
          this.drag = { kind: "tool", x: ev.clientX, y: ev.clientY, moved: false, button: 0 };
        }
      }),
    );
    d.add(
      listen(c, "pointermove", (ev: PointerEvent) => {
        this.mouse = this.screenAt(ev);
        const [row, col] = this.planeAt(ev);
        const p: Zyx = planeToVolume(this.axis, this.sliceIndex + 0.5, row, col);
        this.ctx.hover.value = { axis: this.axis, point: p };
        const drag = this.drag;
        if (drag === null) {
          this.requestRender();
          return;
        }
        const dx = ev.clientX - drag.x;
        const dy = ev.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
        if (drag.kind === "pan") {
          drag.x = ev.clientX;
          drag.y = ev.clientY;
          this.view.value = panBy(this.view.value, this.viewport, dx, dy);
        } else {
          const events = typeof ev.getCoalescedEvents === "function" ? ev.getCoalescedEvents() : [];
          for (const e of events.length > 0 ? events : [ev]) {
            const [r, cc] = this.planeAt(e);
            this.tools.move(this.axis, r, cc);
          }
        }
      }),
    );
    const end = (ev: PointerEvent) => {
      const drag = this.drag;
      if (drag === null) return;
      this.drag = null;
      this.element.classList.remove("panning");
      if (c.hasPointerCapture(ev.pointerId)) c.releasePointerCapture(ev.pointerId);
      if (drag.kind === "tool") {
        this.tools.up();
        this.lastClick = drag.moved ? null : { x: ev.clientX, y: ev.clientY, t: ev.timeStamp };
      }
      else if (!drag.moved && drag.button === 0) this.setFocusAt(ev);
      this.requestRender();
    };
    d.add(listen(c, "pointerup", end));
    d.add(listen(c, "pointercancel", () => {
      this.drag = null;
      this.tools.cancel();
    }));
    d.add(
      listen(c, "pointerleave", () => {
        this.mouse = null;
        this.ctx.hover.value = null;
      }),
    );
    d.add(
      listen(c, "dblclick", (ev: MouseEvent) => {
        if (this.tools.gesture?.kind === "polygon") {
          this.tools.finishPolygon();
          return;
        }
        this.setFocusAt(ev);
      }),
    );
  }

  /** Move the linked crosshair to the voxel under the pointer (slice of this view unchanged). */
  private setFocusAt(ev: MouseEvent): void {
    const [row, col] = this.planeAt(ev);
    const p = planeToVolume(this.axis, this.sliceIndex, Math.floor(row), Math.floor(col));
    const s = this.ctx.info.shape;
    if (p.some((v, i) => v < 0 || v >= s[i]!)) return;
    this.ctx.focus.value = p;
  }
}
