/**
 * One user's annotation session on a volume: sends strokes, keeps their optimistic
 * previews until the label tiles catch up, follows layer versions, applies what the
 * server broadcasts (others' strokes, undos, completeness), and keeps the undo history.
 * The transport is injected (the websocket in the app, a fake in tests).
 */
import type { Axis, ClientMessage, Role, ServerMessage, Stroke, VolumeInfo } from "../api/types";
import type { Disposable, Disposer } from "../core/disposable";
import { Signal, Trackable } from "../core/trackable";
import { planeOf } from "../viewer/geometry";
import { rasterizeBrush, rasterizePolygon } from "./brush";
import { instanceColor, parseHexColor, type Rgb } from "./colors";
import { StrokeHistory } from "./history";
import { crossSection, type PlaneMask } from "./mask";

export interface Transport {
  send(message: ClientMessage): void;
}

export interface Preview {
  stroke: Stroke;
  /** Painted voxels in the stroke's own plane; null for flood fill (server-only). */
  mask: PlaneMask | null;
  rgb: Rgb;
  erase: boolean;
  /** Layer version that contains this stroke, once known. */
  ackVersion?: number;
  created: number;
  remote: boolean;
  crossCache: Map<string, PlaneMask | null>;
}

export function completeKey(axis: Axis, index: number): string {
  return `${axis}:${index}`;
}

export class AnnotationSession implements Disposable {
  readonly versions: Trackable<Readonly<Record<string, number>>>;
  readonly role: Trackable<Role>;
  readonly user = new Trackable<string>("");
  readonly complete: Trackable<ReadonlySet<string>>;
  readonly history = new StrokeHistory();
  readonly previews = new Map<string, Preview>();
  readonly previewsChanged = new Signal();
  readonly notices = new Signal<[string, "error" | "info"]>();
  /** Layer of every stroke seen, so an undo message knows which layer changed. */
  private readonly strokeLayer = new Map<string, string>();
  private readonly classColors = new Map<number, Rgb>();
  private readonly jobStates = new Map<number, string>();

  constructor(
    private readonly info: VolumeInfo,
    private readonly transport: Transport,
  ) {
    const v: Record<string, number> = {};
    for (const l of info.layers) v[l.name] = l.version ?? 0;
    this.versions = new Trackable<Readonly<Record<string, number>>>(v);
    this.role = new Trackable<Role>(info.role);
    this.complete = new Trackable<ReadonlySet<string>>(
      new Set(info.complete_slices.map(([a, i]) => completeKey(a, i))),
    );
    for (const c of info.classes) {
      try {
        this.classColors.set(c.value, parseHexColor(c.color));
      } catch {
        this.classColors.set(c.value, [255, 0, 255]);
      }
    }
  }

  layerKind(layer: string): "labels" | "instances" {
    return this.info.layers.find((l) => l.name === layer)?.kind ?? "labels";
  }

  colorFor(layer: string, value: number): Rgb {
    if (this.layerKind(layer) === "instances") return instanceColor(value);
    return this.classColors.get(value) ?? [255, 0, 255];
  }

  /** Send a stroke and show it at once. */
  submit(stroke: Stroke, label: string): void {
    this.strokeLayer.set(stroke.uuid, stroke.layer);
    this.addPreview(stroke, false);
    this.history.add(stroke.uuid, label);
    this.transport.send({ type: "stroke", stroke });
  }

  /**
   * This user's strokes from the server's log of `layer`, so Ctrl+Z after a reload undoes the
   * last own stroke. Only strokes still in effect; returns how many joined the history.
   */
  restoreHistory(layer: string, rows: ReadonlyArray<{ uuid: string; user: string | null; mode: string; axis: string; index: number; active: boolean; version: number; created: string }>): number {
    const own = rows.filter((r) => r.active && r.user !== null && r.user === this.user.value);
    for (const r of own) this.strokeLayer.set(r.uuid, layer);
    return this.history.restore(own.map((r) => ({
      uuid: r.uuid, label: `${r.mode} ${r.axis} ${r.index} (saved)`, version: r.version, time: Date.parse(r.created) || 0,
    })));
  }

  undo(): string | null {
    const uuid = this.history.undo();
    if (uuid === null) return null;
    this.removePreview(uuid);
    this.transport.send({ type: "undo", uuid });
    return uuid;
  }

  redo(): string | null {
    const uuid = this.history.redo();
    if (uuid === null) return null;
    this.transport.send({ type: "redo", uuid });
    return uuid;
  }

  isComplete(axis: Axis, index: number): boolean {
    return this.complete.value.has(completeKey(axis, index));
  }

  setComplete(axis: Axis, index: number, complete: boolean): void {
    this.applyComplete(axis, index, complete);
    this.transport.send({ type: "mark_complete", axis, index, complete });
  }

  /** Previews to draw for a view on plane (axis, index) and one layer, with their mask there. */
  previewsIn(axis: Axis, index: number, layer: string): Array<{ preview: Preview; mask: PlaneMask }> {
    const out: Array<{ preview: Preview; mask: PlaneMask }> = [];
    for (const p of this.previews.values()) {
      if (p.stroke.layer !== layer || p.mask === null) continue;
      if (p.stroke.axis === axis) {
        if (p.stroke.index === index) out.push({ preview: p, mask: p.mask });
        continue;
      }
      const key = `${axis}:${index}`;
      let m = p.crossCache.get(key);
      if (m === undefined) {
        m = crossSection(p.mask, p.stroke.axis, p.stroke.index, axis, index);
        p.crossCache.set(key, m);
      }
      if (m !== null) out.push({ preview: p, mask: m });
    }
    return out;
  }

  /** Forget acknowledged previews older than `maxAgeMs` (tiles have long caught up). */
  prune(now = Date.now(), maxAgeMs = 20000): void {
    let changed = false;
    for (const [uuid, p] of this.previews) {
      if (p.ackVersion !== undefined && now - p.created > maxAgeMs) {
        this.previews.delete(uuid);
        changed = true;
      }
    }
    if (changed) this.previewsChanged.dispatch();
  }

  handle(msg: ServerMessage): void {
    switch (msg.type) {
      case "hello": {
        this.user.value = msg.user;
        this.role.value = msg.role;
        if (typeof msg.version === "number" && Number.isFinite(msg.version)) {
          const v: Record<string, number> = {};
          for (const name of Object.keys(this.versions.value)) {
            v[name] = Math.max(this.versions.value[name] ?? 0, msg.version);
          }
          this.versions.value = v;
        }
        break;
      }
      case "ack": {
        this.history.acknowledge(msg.uuid, msg.version);
        const p = this.previews.get(msg.uuid);
        if (p !== undefined) p.ackVersion = msg.version;
        this.bumpVersion(this.strokeLayer.get(msg.uuid), msg.version);
        break;
      }
      case "stroke": {
        const s = msg.stroke;
        this.strokeLayer.set(s.uuid, s.layer);
        if (this.history.get(s.uuid) === undefined && !this.previews.has(s.uuid)) {
          this.addPreview(s, true);
          const p = this.previews.get(s.uuid);
          if (p !== undefined) p.ackVersion = msg.version;
        }
        this.bumpVersion(s.layer, msg.version);
        break;
      }
      case "undo":
      case "redo": {
        if (msg.type === "undo") this.removePreview(msg.uuid);
        this.bumpVersion(this.strokeLayer.get(msg.uuid), msg.version);
        break;
      }
      case "error": {
        if (msg.uuid !== undefined) {
          this.history.fail(msg.uuid);
          this.removePreview(msg.uuid);
        }
        this.notices.dispatch(`${msg.code}: ${msg.message}`, "error");
        break;
      }
      case "mark_complete":
        this.applyComplete(msg.axis, msg.index, msg.complete);
        break;
      case "job": {
        // Toast state changes only, not every progress tick.
        if (this.jobStates.get(msg.job.id) === msg.job.state) break;
        this.jobStates.set(msg.job.id, msg.job.state);
        this.notices.dispatch(
          `Job ${msg.job.id} (${msg.job.kind}): ${msg.job.state} ${Math.round(msg.job.progress * 100)} %`,
          "info",
        );
        break;
      }
    }
  }

  onPreviewsChanged(fn: () => void): Disposer {
    return this.previewsChanged.add(fn);
  }

  dispose(): void {
    this.previews.clear();
  }

  private applyComplete(axis: Axis, index: number, complete: boolean): void {
    const next = new Set(this.complete.value);
    const key = completeKey(axis, index);
    if (complete) next.add(key);
    else next.delete(key);
    this.complete.value = next;
  }

  private bumpVersion(layer: string | undefined, version: number): void {
    const current = this.versions.value;
    const names = layer !== undefined && layer in current ? [layer] : Object.keys(current);
    const next = { ...current };
    let changed = false;
    for (const n of names) {
      if ((next[n] ?? 0) < version) {
        next[n] = version;
        changed = true;
      }
    }
    if (changed) this.versions.value = next;
  }

  private addPreview(stroke: Stroke, remote: boolean): void {
    const [rows, cols] = planeOf(this.info.shape, stroke.axis);
    let mask: PlaneMask | null = null;
    if (stroke.mode === "paint" || stroke.mode === "erase") {
      mask = rasterizeBrush(stroke.points, stroke.radius, rows, cols);
    } else if (stroke.mode === "polygon") {
      mask = rasterizePolygon(stroke.points, rows, cols);
    }
    this.previews.set(stroke.uuid, {
      stroke,
      mask,
      rgb: this.colorFor(stroke.layer, stroke.value),
      erase: stroke.mode === "erase" || stroke.value === 0,
      created: Date.now(),
      remote,
      crossCache: new Map(),
    });
    this.previewsChanged.dispatch();
  }

  private removePreview(uuid: string): void {
    if (this.previews.delete(uuid)) this.previewsChanged.dispatch();
  }
}
