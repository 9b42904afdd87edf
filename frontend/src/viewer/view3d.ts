/**
 * The 3D pane beside the slices (webKnossos' fourth viewport): the surfaces of a label layer as
 * the server meshes them from a coarse level, the whole class layer or the current cell of a
 * cells layer, drawn again when the layer changes. three.js loads on the first open.
 */
import { toHex, instanceColor } from "../annotation/colors";
import { type Disposable, DisposableSet, listen } from "../core/disposable";
import { h } from "../core/dom";
import { Trackable } from "../core/trackable";
import type { ViewerContext } from "./context";
import type { MeshView } from "./mesh_view";

const RELOAD_MS = 2000;

/** The mesh URL of `layer` (a cell id for a cells layer). */
export function meshUrl(volumeId: number, layer: string, cell: number | null): string {
  return `/api/volumes/${volumeId}/layers/${encodeURIComponent(layer)}/mesh.glb${cell === null ? "" : `?value=${cell}`}`;
}

export class View3d implements Disposable {
  readonly element: HTMLElement;
  readonly open = new Trackable(false);
  private readonly d = new DisposableSet();
  private readonly canvasBox = h("div", { class: "view3d-canvas" });
  private readonly status = h("span", { class: "view3d-status muted" });
  private readonly layerSelect = h("select", { class: "view3d-layer", "aria-label": "layer shown in 3D" });
  private view: MeshView | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private loading = 0;

  constructor(private readonly ctx: ViewerContext) {
    const reload = h("button", { class: "btn small", title: "Mesh the layer again" }, "↻");
    this.element = h("div", { class: "view view-3d", id: "view-3d", hidden: true, style: "--axis-color: #b48cff" },
      this.canvasBox,
      h("div", { class: "view-label view3d-bar" }, "3D ", this.layerSelect, reload, this.status));
    this.fillLayers();
    this.d.add(ctx.layerAdded.add(() => this.fillLayers()));
    this.d.add(listen(this.layerSelect, "change", () => void this.load()));
    this.d.add(listen(reload, "click", () => void this.load()));
    this.d.add(listen(this.element.querySelector(".view3d-bar")!, "pointerdown", (ev) => ev.stopPropagation()));
    this.d.add(this.open.subscribe((on) => {
      this.element.hidden = !on;
      if (on) void this.load();
    }));
    // Painting, a job or an undo changes the layer: draw it again a moment after the last change.
    this.d.add(ctx.session.versions.subscribe((next, prev) => {
      const layer = this.layerSelect.value;
      if (this.open.value && next[layer] !== prev[layer]) this.schedule();
    }));
    this.d.add(ctx.tools.cellId.subscribe(() => {
      if (this.open.value && this.isCells()) this.schedule();
    }));
    this.d.add(() => {
      if (this.timer !== null) clearTimeout(this.timer);
      this.view?.dispose();
    });
  }

  toggle(): void {
    this.open.value = !this.open.value;
  }

  private fillLayers(): void {
    const current = this.layerSelect.value;
    const names = this.ctx.layers.filter((l) => l.kind !== "image").map((l) => l.name);
    this.layerSelect.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
    // Prefer what was chosen, else the prediction, else the manual labels.
    this.layerSelect.value = [current, "prediction", "manual", names[0] ?? ""].find((n) => names.includes(n)) ?? "";
  }

  private isCells(): boolean {
    return this.ctx.layer(this.layerSelect.value)?.kind === "instances";
  }

  private schedule(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.load();
    }, RELOAD_MS);
  }

  private async load(): Promise<void> {
    const layer = this.layerSelect.value;
    if (layer === "") return;
    const cell = this.isCells() ? this.ctx.tools.cellId.value : null;
    const ticket = ++this.loading;
    this.element.dataset.state = "loading";
    this.status.textContent = "meshing…";
    try {
      if (this.view === null) {
        const { MeshView } = await import("./mesh_view");
        this.view = new MeshView(this.canvasBox);
      }
      const res = await fetch(meshUrl(this.ctx.info.id, layer, cell), { credentials: "same-origin" });
      if (!res.ok) {
        const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
        throw new Error(body?.error?.message ?? `${res.status} ${res.statusText}`);
      }
      const data = await res.arrayBuffer();
      if (ticket !== this.loading || this.d.isDisposed) return;
      const colors = new Map(this.ctx.info.classes.map((c) => [c.name, c.color]));
      const names = await this.view.show(data, (name) => colors.get(name) ?? (cell !== null ? toHex(instanceColor(cell)) : "#2bd9c0"));
      this.element.dataset.nodes = names.join(",");
      this.element.dataset.state = "ready";
      this.status.textContent = cell !== null ? `cell ${cell}` : "";
    } catch (err) {
      if (ticket !== this.loading) return;
      this.element.dataset.state = "error";
      this.status.textContent = err instanceof Error ? err.message : String(err);
    }
  }

  dispose(): void {
    this.d.dispose();
  }
}
