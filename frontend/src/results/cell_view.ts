/**
 * 3D view of one cell (the paper's Fig 2C-E): the report's GLB for the cell, one named
 * node per class, drawn with three.js in the class colours (the cell translucent), with
 * a toggle per class, an opacity slider for the cell, downloads (GLB, PLY per class), and
 * the cell's key measures. Renders on demand (orbit changes, toggles, resizes).
 */
import type * as THREE from "three";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
import { type Disposable, DisposableSet, listen } from "../core/disposable";
import { h } from "../core/dom";
import { Viewport3D, isMesh, surfaceMaterial } from "../core/viewport3d";
import { type CellTable, type ReportInfo, cell3dUrl, meshUrl, plyUrl, reportsApi } from "./results_api";
import { columnIndex, formatValue, headerLabel } from "./table_model";
import { cellViewerUrl } from "./viewer_link";

const CELL_OPACITY = 0.22;
/** Classes that hold other classes (the nucleus) are drawn see-through so their contents show. */
const CONTAINER_OPACITY = 0.55;

/** Draw order: the cell first, then classes outer to inner, so nested meshes show through. */
function nodeOrder(name: string, classes: readonly string[]): number {
  return name === "cell" ? -1 : classes.indexOf(name);
}

export class CellView implements Disposable {
  private readonly d = new DisposableSet();
  private readonly canvasBox = h("div", { class: "c3d-canvas", id: "c3d-canvas" });
  private readonly side = h("aside", { class: "c3d-side card" });
  private readonly nodes = new Map<string, THREE.Object3D>();
  private readonly viewport: Viewport3D;

  constructor(
    private readonly root: HTMLElement,
    private readonly reportId: number,
    private readonly cellId: number,
  ) {
    root.replaceChildren(h("div", { class: "c3d" }, this.canvasBox, this.side));
    this.viewport = this.d.add(new Viewport3D(this.canvasBox, 0x262b33));
    void this.load();
  }

  private async load(): Promise<void> {
    let report: ReportInfo;
    let table: CellTable;
    try {
      [report, table] = await Promise.all([reportsApi.report(this.reportId), reportsApi.cells(this.reportId)]);
    } catch (err) {
      this.side.replaceChildren(h("p", { class: "error" }, `could not load the report: ${String(err)}`));
      return;
    }
    const classes = Object.keys(report.classes);
    const containers = new Set(Object.values(report.hierarchy));
    const gltf = await new GLTFLoader().loadAsync(meshUrl(this.reportId, this.cellId)).catch((err: unknown) => {
      this.side.replaceChildren(h("p", { class: "error" }, `no meshes for cell ${this.cellId}: ${String(err)}`));
      return null;
    });
    if (gltf === null || this.d.isDisposed) return;
    const meshes: THREE.Mesh[] = [];
    gltf.scene.traverse((o) => {
      if (isMesh(o)) meshes.push(o);
    });
    for (const mesh of meshes) {
      const name = mesh.name || mesh.parent?.name || "";
      const isCell = name === "cell";
      const see = isCell || containers.has(name);
      for (const old of [mesh.material].flat()) old.dispose();
      mesh.material = surfaceMaterial(isCell ? "#b4bcc8" : (report.colors[name] ?? "#999999"),
        isCell ? CELL_OPACITY : see ? CONTAINER_OPACITY : 1);
      mesh.geometry.computeVertexNormals();
      mesh.renderOrder = isCell ? 10 : nodeOrder(name, classes);
      this.nodes.set(name, mesh);
    }
    this.viewport.scene.add(gltf.scene);
    this.viewport.frameCamera(this.nodes.get("cell") ?? gltf.scene);
    this.renderSide(report, table, classes);
    this.viewport.resize();
    this.root.dataset.loaded = "true";
    this.root.dataset.nodes = [...this.nodes.keys()].join(",");
  }

  private renderSide(report: ReportInfo, table: CellTable, classes: string[]): void {
    const iid = columnIndex(table, "cell_id");
    const row = table.rows.find((r) => Number(r[iid]) === this.cellId) ?? null;
    const at = (name: string) => (row === null ? null : (row[columnIndex(table, name)] ?? null));
    const toggles = [...this.nodes.keys()]
      .sort((a, b) => nodeOrder(a, classes) - nodeOrder(b, classes))
      .map((name) => {
        const box = h("input", { type: "checkbox", checked: true, "data-node": name });
        this.d.add(listen(box, "change", () => {
          this.nodes.get(name)!.visible = box.checked;
          this.viewport.requestRender();
        }));
        const color = name === "cell" ? "#b4bcc8" : (report.colors[name] ?? "#999999");
        const volume = at(`${name}_volume_um3`);
        return h(
          "label",
          { class: "c3d-toggle" },
          box,
          h("span", { class: "swatch", style: `background:${color}` }),
          ` ${name}`,
          h("span", { class: "muted" }, volume === null ? "" : ` ${formatValue(volume)} µm³`),
          h("a", { href: plyUrl(report.id, this.cellId, name), class: "ply", title: `download the ${name} mesh as PLY` }, "PLY"),
          h(
            "a",
            {
              href: `${plyUrl(report.id, this.cellId, name)}?resolution=full`,
              class: "ply",
              title: `download the ${name} mesh made from full-resolution voxels, not simplified (large)`,
            },
            "full",
          ),
        );
      });
    const opacity = h("input", { type: "range", min: 0, max: 1, step: 0.02, value: CELL_OPACITY, id: "cell-opacity" });
    this.d.add(listen(opacity, "input", () => {
      const mat = (this.nodes.get("cell") as THREE.Mesh | undefined)?.material as THREE.MeshStandardMaterial | undefined;
      if (mat !== undefined) {
        mat.opacity = Number(opacity.value);
        mat.transparent = mat.opacity < 1;
        mat.depthWrite = !mat.transparent;
        mat.needsUpdate = true;
      }
      this.viewport.requestRender();
    }));
    const reset = h("button", { type: "button" }, "Reset view");
    this.d.add(listen(reset, "click", () => this.viewport.resetView()));
    const cells = report.mesh_cells;
    const k = cells.indexOf(this.cellId);
    const prev = k > 0 ? cells[k - 1] : undefined;
    const next = k >= 0 && k < cells.length - 1 ? cells[k + 1] : undefined;
    const measures = ["cell_volume_um3", "nucleus_volume_um3", "nucleus_solidity", "nucleus_sphericity",
      "nucleolus_fenestrated_pct", "mitochondrion_count", "mitochondrion_elongation"]
      .filter((name) => columnIndex(table, name) >= 0)
      .map((name) => h("tr", {}, h("th", {}, headerLabel(table.columns[columnIndex(table, name)]!)),
        h("td", { class: "num" }, formatValue(at(name)))));
    const viewer = row === null ? null : cellViewerUrl(report.volume.id,
      [Number(at("cell_centroid_z")), Number(at("cell_centroid_y")), Number(at("cell_centroid_x"))],
      Number(at("cell_voxels")), report.volume.voxel_size_nm, report.volume.shape);
    this.side.replaceChildren(
      h("h1", {}, `Cell ${this.cellId}`),
      h("p", { class: "muted" }, `${report.volume.name} · report #${report.id}`),
      h("div", { class: "c3d-nav" },
        prev === undefined ? "" : h("a", { class: "button", href: cell3dUrl(report.id, prev), id: "prev-cell" }, `← cell ${prev}`),
        next === undefined ? "" : h("a", { class: "button", href: cell3dUrl(report.id, next), id: "next-cell" }, `cell ${next} →`)),
      h("h3", {}, "Show"),
      ...toggles,
      h("label", { class: "c3d-opacity" }, "Cell opacity ", opacity),
      h("div", { class: "c3d-actions" },
        reset,
        h("a", { class: "button", href: `${meshUrl(report.id, this.cellId)}?download=1`, id: "download-glb" }, "Download GLB"),
        viewer === null ? "" : h("a", { class: "button", href: viewer }, "Open in viewer")),
      h("table", { class: "c3d-measures" }, h("tbody", {}, ...measures)),
      h("p", { class: "muted hint" }, "Drag to rotate · wheel to zoom · right-drag to pan · units: nm"),
    );
  }

  dispose(): void {
    this.d.dispose();
  }
}
