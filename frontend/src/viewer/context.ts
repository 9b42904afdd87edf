/** State shared by the three slice views and the panels of one volume page. */
import type { Axis, LayerInfo, VolumeInfo, Zyx } from "../api/types";
import type { AnnotationSession } from "../annotation/session";
import type { ToolState } from "../annotation/tools";
import { Signal, Trackable, tupleEquals } from "../core/trackable";
import { AXIS_DIM, clamp } from "./geometry";
import type { TileCache } from "./tile_cache";

export type LayerDisplayKind = "image" | "labels" | "instances";

export class LayerDisplay {
  readonly visible = new Trackable(true);
  readonly opacity: Trackable<number>;

  constructor(
    readonly name: string,
    readonly kind: LayerDisplayKind,
    opacity: number,
  ) {
    this.opacity = new Trackable(opacity);
  }
}

function displayFor(layer: LayerInfo): LayerDisplay {
  return new LayerDisplay(layer.name, layer.kind, layer.name === "prediction" ? 0.4 : 0.6);
}

/** A short hash (FNV-1a, base 36) of the class colours. */
export function paletteKey(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}

/** Layers of a fresh volume read that `known` does not hold yet, in the server's order. */
export function missingLayers(known: readonly string[], fetched: readonly LayerInfo[]): LayerInfo[] {
  const have = new Set(known);
  return fetched.filter((l) => !have.has(l.name));
}

export interface HoverPoint {
  axis: Axis;
  /** Continuous level-0 ZYX under the cursor. */
  point: Zyx;
}

export class ViewerContext {
  /** The crosshair: integer voxel shown by all three views. */
  readonly focus: Trackable<Zyx>;
  readonly window: Trackable<[number, number]>;
  readonly hover = new Trackable<HoverPoint | null>(null);
  /** View that keyboard slice navigation applies to. */
  readonly activeAxis = new Trackable<Axis>("z");
  /** Space held: left-drag pans whatever the tool. */
  readonly spaceHeld = new Trackable(false);
  /** Zoom (CSS px per nm) shared by the views, so they stay at one scale. */
  readonly redraw = new Signal();
  readonly layers: LayerDisplay[];
  /** A layer a job wrote while the page was open (prediction, cells_auto) joined the views. */
  readonly layerAdded = new Signal<[LayerDisplay]>();
  /** Names the class colours in label tile URLs: a recoloured class is never served from cache. */
  readonly paletteKey: string;

  constructor(
    readonly info: VolumeInfo,
    readonly session: AnnotationSession,
    readonly tools: ToolState,
    readonly cache: TileCache,
  ) {
    const [Z, Y, X] = info.shape;
    this.focus = new Trackable<Zyx>(
      [Math.floor(Z / 2), Math.floor(Y / 2), Math.floor(X / 2)],
      tupleEquals,
    );
    this.window = new Trackable<[number, number]>([info.window[0], info.window[1]], tupleEquals);
    this.layers = [new LayerDisplay("image", "image", 1)];
    for (const l of info.layers) this.layers.push(displayFor(l));
    this.paletteKey = paletteKey(info.classes.map((c) => `${c.value}${c.color}`).join(";"));
  }

  /**
   * Show a layer the server made after this page loaded: it joins the volume's layer list
   * (the session and tools read that list), the version map and the drawn layers, and
   * `layerAdded` tells the views and panels. A layer already known is left alone.
   */
  addLayer(layer: LayerInfo): LayerDisplay | null {
    if (this.layer(layer.name) !== undefined) return null;
    this.info.layers.push(layer);
    const versions = this.session.versions.value;
    this.session.versions.value = { ...versions, [layer.name]: Math.max(versions[layer.name] ?? 0, layer.version ?? 0) };
    const display = displayFor(layer);
    this.layers.push(display);
    this.layerAdded.dispatch(display);
    return display;
  }

  layer(name: string): LayerDisplay | undefined {
    return this.layers.find((l) => l.name === name);
  }

  /** Move the slice of view `axis` by `delta` voxels, clamped to the volume. */
  stepSlice(axis: Axis, delta: number): void {
    this.setSlice(axis, this.focus.value[AXIS_DIM[axis]] + delta);
  }

  setSlice(axis: Axis, index: number): void {
    const d = AXIS_DIM[axis];
    const next: Zyx = [...this.focus.value];
    next[d] = clamp(Math.round(index), 0, this.info.shape[d] - 1);
    this.focus.value = next;
  }

  get canPaint(): boolean {
    return this.session.role.value !== "viewer";
  }
}
