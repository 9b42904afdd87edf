/**
 * Results page of one volume: pick a report, see organelle volumes per cell (stacked, in
 * the class colours), nucleus solidity and nucleolar fenestration distributions, a
 * sortable and filterable cell table whose rows open the viewer on the cell, downloads,
 * and (annotators) a form that runs a new report with live progress.
 */
import { ProjectJobs, reportEventAction } from "../api/project_events";
import type { Job } from "../api/types";
import { type Disposable, DisposableSet, listen } from "../core/disposable";
import { h } from "../core/dom";
import { Trackable } from "../core/trackable";
import { PlotView } from "./plot_view";
import { distribution, organelleBars, type VolumeMode } from "./plots";
import {
  type CellTable,
  type ReportInfo,
  type VolumeReports,
  cell3dUrl,
  layerDownloadUrl,
  reportsApi,
} from "./results_api";
import {
  type SortState,
  columnIndex,
  columnValues,
  defaultColumns,
  filterRows,
  formatValue,
  headerLabel,
  nextSort,
  parseFilter,
  sortRows,
} from "./table_model";
import { cellViewerUrl } from "./viewer_link";

const POLL_MS = 1000;

export class VolumeResultsPage implements Disposable {
  private readonly d = new DisposableSet();
  private readonly report = new Trackable<ReportInfo | null>(null);
  private readonly mode = new Trackable<VolumeMode>("um3");
  private readonly sort = new Trackable<SortState | null>({ column: "cell_id", dir: "asc" });
  private readonly allColumns = new Trackable(false);
  private listing: VolumeReports | null = null;
  private table: CellTable | null = null;
  private selectedCell: number | null = null;
  private polling: number | null = null;
  /** The report job this page follows (its own or one seen on the project socket). */
  private watching: number | null = null;
  private runPanelD = new DisposableSet();

  private readonly select = h("select", { id: "report-select", "aria-label": "Report" });
  private readonly meta = h("span", { class: "muted", id: "report-meta" });
  private readonly downloads = h("div", { class: "res-downloads", id: "downloads" });
  private readonly runPanel = h("section", { class: "card res-run", id: "run-panel" });
  private readonly body = h("div", { class: "res-body" });
  private readonly barsPlot = h("div", { class: "res-plot", id: "plot-volumes" });
  private readonly solidityPlot = h("div", { class: "res-plot", id: "plot-solidity" });
  private readonly fenestrationPlot = h("div", { class: "res-plot", id: "plot-fenestration" });
  private readonly filter = h("input", {
    id: "cell-filter",
    type: "search",
    placeholder: "filter, e.g. nucleus_solidity > 0.9 and cell_touches_border = false",
  });
  private readonly filterNote = h("span", { class: "muted", id: "cell-count" });
  private readonly thead = h("thead");
  private readonly tbody = h("tbody");
  private readonly bars: PlotView;
  private readonly solidity: PlotView;
  private readonly fenestration: PlotView;

  constructor(
    private readonly root: HTMLElement,
    private readonly volumeId: number,
    private readonly canRun: boolean,
  ) {
    const pick = (id: number) => this.selectCell(id, true);
    this.bars = this.d.add(new PlotView(this.barsPlot, pick));
    this.solidity = this.d.add(new PlotView(this.solidityPlot, pick));
    this.fenestration = this.d.add(new PlotView(this.fenestrationPlot, pick));

    const modeToggle = h(
      "div",
      { class: "seg", role: "group", "aria-label": "Volume unit" },
      h("button", { type: "button", "data-mode": "um3", class: "on" }, "µm³"),
      h("button", { type: "button", "data-mode": "pct" }, "% of cell"),
    );
    const allColumns = h("input", { type: "checkbox", id: "all-columns" });
    this.body.append(
      h("div", { class: "res-plot-card card wide" }, modeToggle, this.barsPlot),
      h("div", { class: "res-plot-card card" }, this.solidityPlot),
      h("div", { class: "res-plot-card card" }, this.fenestrationPlot),
      h(
        "section",
        { class: "card res-table-card wide" },
        h(
          "div",
          { class: "res-table-tools" },
          h("h2", {}, "Cells"),
          this.filter,
          h("label", { class: "check" }, allColumns, " all columns"),
          this.filterNote,
        ),
        h(
          "div",
          { class: "res-table-scroll" },
          h("table", { class: "res-table", id: "cell-table" }, this.thead, this.tbody),
        ),
        h("p", { class: "muted hint" }, "Click a row to open the viewer centred on that cell; 3D shows its meshes."),
      ),
    );
    root.replaceChildren(
      h(
        "section",
        { class: "card res-toolbar" },
        h("label", { class: "inline" }, "Report ", this.select),
        this.meta,
        this.downloads,
      ),
      this.runPanel,
      this.body,
    );

    this.d.add(listen(this.select, "change", () => {
      const found = this.listing?.reports.find((r) => r.id === Number(this.select.value)) ?? null;
      this.report.value = found;
    }));
    this.d.add(listen(modeToggle, "click", (ev: Event) => {
      const btn = (ev.target as HTMLElement).closest<HTMLButtonElement>("button[data-mode]");
      if (btn === null) return;
      this.mode.value = btn.dataset.mode as VolumeMode;
      for (const b of modeToggle.querySelectorAll("button")) b.classList.toggle("on", b === btn);
    }));
    this.d.add(listen(allColumns, "change", () => (this.allColumns.value = allColumns.checked)));
    this.d.add(listen(this.filter, "input", () => this.renderTable()));
    this.d.add(listen(this.thead, "click", (ev: Event) => {
      const th = (ev.target as HTMLElement).closest<HTMLElement>("th[data-column]");
      if (th !== null) this.sort.value = nextSort(this.sort.value, th.dataset.column!);
    }));
    this.d.add(listen(this.tbody, "click", (ev: Event) => {
      const target = ev.target as HTMLElement;
      if (target.closest("a") !== null) return;
      const row = target.closest<HTMLTableRowElement>("tr[data-href]");
      if (row !== null) window.location.assign(row.dataset.href!);
    }));
    this.d.add(this.report.subscribe(() => void this.loadReport()));
    this.d.add(this.mode.subscribe(() => void this.drawBars()));
    this.d.add(this.sort.subscribe(() => this.renderTable()));
    this.d.add(this.allColumns.subscribe(() => this.renderTable()));
    this.d.add(() => {
      if (this.polling !== null) window.clearTimeout(this.polling);
    });
    void this.refresh();
    // A report run from another tab, by a colleague or after a voxel-size correction shows
    // its progress here and appears when done, through the project socket.
    const projectId = Number(root.dataset.projectId);
    if (Number.isInteger(projectId)) {
      this.d.add(new ProjectJobs(projectId, (job) => {
        const action = reportEventAction(job, this.volumeId, this.watching !== null);
        if (action === "watch") this.watchJob(job);
        else if (action === "refresh") void this.refresh(typeof job.result?.report === "number" ? job.result.report : undefined);
      }));
    }
  }

  /** Reload the list of reports; select `preferId` (or keep the current, or the newest). */
  async refresh(preferId?: number): Promise<void> {
    try {
      this.listing = await reportsApi.forVolume(this.volumeId);
    } catch (err) {
      this.meta.textContent = `could not load reports: ${String(err)}`;
      this.meta.classList.add("error");
      return;
    }
    const reports = this.listing.reports;
    this.select.replaceChildren(
      ...reports.map((r) =>
        h(
          "option",
          { value: r.id },
          `#${r.id} · ${new Date(r.created).toLocaleString()} · ${r.labels_layer} / ${r.cells_layer} · ${r.n_cells} cells`,
        ),
      ),
    );
    this.select.disabled = reports.length === 0;
    this.renderRunPanel();
    const want = preferId ?? this.report.value?.id;
    const next = reports.find((r) => r.id === want) ?? reports[0] ?? null;
    if (next !== null) this.select.value = String(next.id);
    this.report.value = next;  // a fresh object, so the report reloads even when its id is the same
    if (next === null) this.renderEmpty();
    const active = this.listing.active_jobs[0];
    if (active !== undefined && this.polling === null) this.watchJob(active);
  }

  private renderEmpty(): void {
    this.meta.textContent = "";
    this.downloads.replaceChildren();
    this.body.hidden = true;
    const note = this.canRun
      ? "No report yet for this volume. Pick the layers above and run one."
      : "No report yet for this volume. An annotator can run one.";
    this.root.querySelector("#no-report")?.remove();
    this.root.insertBefore(h("p", { class: "card empty", id: "no-report" }, note), this.body);
  }

  private renderRunPanel(): void {
    const listing = this.listing;
    this.runPanelD.dispose();
    this.runPanelD = new DisposableSet();
    if (!this.canRun || listing === null) {
      this.runPanel.hidden = true;
      return;
    }
    const options = (names: string[], chosen: string | null) =>
      names.map((n) => h("option", { value: n, selected: n === chosen }, n));
    const labels = h("select", { id: "run-labels", name: "labels_layer" },
      ...options(listing.layers.labels_layers, listing.layers.labels_layer));
    const cells = h("select", { id: "run-cells", name: "cells_layer" },
      ...options(listing.layers.cells_layers, listing.layers.cells_layer));
    const closing = h("input", { id: "run-closing", type: "number", min: 0, max: 10000, step: 1, value: 0 });
    const button = h("button", { class: "primary", id: "run-report", type: "button" }, "Run report");
    const ready = listing.layers.labels_layers.length > 0 && listing.layers.cells_layers.length > 0;
    button.disabled = !ready;
    const bar = h("progress", { id: "run-progress", max: 1, value: 0, hidden: true });
    const status = h("span", { class: "muted", id: "run-status" },
      ready ? "" : "This volume needs a class layer and a cell layer first.");
    this.runPanel.replaceChildren(
      h("h2", {}, "Run a report"),
      h(
        "div",
        { class: "res-run-row" },
        h("label", {}, "Classes from ", labels),
        h("label", {}, "Cells from ", cells),
        h("label", { title: "radius of the closing that defines the nucleolar envelope; 0 = only enclosed cavities" },
          "Fenestration closing (nm) ", closing),
        button,
      ),
      h("div", { class: "res-run-row" }, bar, status),
    );
    this.runPanel.hidden = false;
    this.runPanelD.add(listen(button, "click", () => {
      button.disabled = true;
      status.textContent = "queueing…";
      status.classList.remove("error");
      reportsApi
        .run(this.volumeId, {
          labels_layer: labels.value,
          cells_layer: cells.value,
          fenestration_closing_nm: Number(closing.value) || 0,
        })
        .then((job) => this.watchJob(job))
        .catch((err: unknown) => {
          status.textContent = String(err instanceof Error ? err.message : err);
          status.classList.add("error");
          button.disabled = false;
        });
    }));
  }

  /** Poll a report job until it ends, showing its progress; then load the new report. */
  private watchJob(job: Job): void {
    const bar = this.runPanel.querySelector<HTMLProgressElement>("#run-progress");
    const status = this.runPanel.querySelector<HTMLElement>("#run-status");
    const button = this.runPanel.querySelector<HTMLButtonElement>("#run-report");
    const show = (j: Job) => {
      if (bar !== null) {
        bar.hidden = false;
        bar.value = j.progress;
      }
      if (status !== null) status.textContent = `job #${j.id} ${j.state}: ${j.message} (${Math.round(j.progress * 100)} %)`;
      if (button !== null) button.disabled = true;
    };
    show(job);
    this.watching = job.id;
    const tick = async () => {
      this.polling = null;
      let current: Job & { result?: { report?: number } };
      try {
        current = await reportsApi.job(job.id);
      } catch {
        this.polling = window.setTimeout(() => void tick(), POLL_MS * 3);
        return;
      }
      if (this.d.isDisposed) return;
      show(current);
      if (current.state === "queued" || current.state === "running") {
        this.polling = window.setTimeout(() => void tick(), POLL_MS);
        return;
      }
      if (button !== null) button.disabled = false;
      this.watching = null;
      if (current.state === "succeeded") {
        if (bar !== null) bar.hidden = true;
        this.root.querySelector("#no-report")?.remove();
        await this.refresh(current.result?.report);
      } else if (status !== null) {
        status.classList.add("error");
      }
    };
    this.polling = window.setTimeout(() => void tick(), POLL_MS);
  }

  private async loadReport(): Promise<void> {
    const report = this.report.value;
    if (report === null) return;
    this.body.hidden = false;
    this.root.querySelector("#no-report")?.remove();
    this.renderMeta(report);
    try {
      this.table = await reportsApi.cells(report.id);
    } catch (err) {
      this.meta.textContent = `could not load the cell table: ${String(err)}`;
      this.meta.classList.add("error");
      return;
    }
    if (this.report.value?.id !== report.id) return;
    this.renderTable();
    await Promise.all([this.drawBars(), this.drawDistributions()]);
    this.root.dataset.reportId = String(report.id);
    this.root.dataset.drawn = "true";
  }

  private renderMeta(r: ReportInfo): void {
    this.meta.classList.remove("error");
    this.meta.replaceChildren(
      `${r.n_cells} cells · classes from “${r.labels_layer}”, cells from “${r.cells_layer}”` +
        ` · voxel ${r.volume.voxel_size_nm.join(" × ")} nm · closing ${r.fenestration_closing_nm} nm`,
      r.stale ? h("span", { class: "stale", id: "stale" }, " · layers changed since this report") : "",
    );
    const link = (href: string | undefined, text: string, id: string) =>
      href === undefined ? null : h("a", { class: "button", href, id, download: "" }, text);
    this.downloads.replaceChildren(
      h("span", { class: "muted" }, "Table "),
      link(r.downloads.csv, "CSV", "download-csv") ?? "",
      link(r.downloads.xlsx, "XLSX", "download-xlsx") ?? "",
      link(r.downloads.parquet, "Parquet", "download-parquet") ?? "",
      link(r.downloads.meshes, "Meshes (GLB zip)", "download-meshes") ?? "",
      h("span", { class: "muted sep" }, `Classes “${r.labels_layer}” `),
      link(layerDownloadUrl(r.volume.id, r.labels_layer, "tif"), "TIFF", "download-labels-tif") ?? "",
      link(layerDownloadUrl(r.volume.id, r.labels_layer, "zarr"), "OME-Zarr", "download-labels-zarr") ?? "",
      h("span", { class: "muted sep" }, `Cells “${r.cells_layer}” `),
      link(layerDownloadUrl(r.volume.id, r.cells_layer, "tif"), "TIFF", "download-cells-tif") ?? "",
      link(layerDownloadUrl(r.volume.id, r.cells_layer, "zarr"), "OME-Zarr", "download-cells-zarr") ?? "",
    );
  }

  private async drawBars(): Promise<void> {
    const r = this.report.value;
    if (r === null || this.table === null) return;
    await this.bars.draw(organelleBars(this.table, Object.keys(r.classes), r.colors, r.hierarchy, this.mode.value));
  }

  private async drawDistributions(): Promise<void> {
    const r = this.report.value;
    const t = this.table;
    if (r === null || t === null) return;
    const ids = columnValues(t, "cell_id").map(Number);
    const group = (column: string) => [{
      name: r.volume.name,
      values: columnValues(t, column).map((v) => (typeof v === "number" ? v : null)),
      cellIds: ids,
    }];
    await this.solidity.draw(distribution(group("nucleus_solidity"), "Nucleus solidity (Fig 2G)", "solidity"));
    await this.fenestration.draw(
      distribution(group("nucleolus_fenestrated_pct"), "Fenestrated nucleolar volume (Fig 2H)", "% of nucleolus"));
  }

  private renderTable(): void {
    const r = this.report.value;
    const t = this.table;
    if (r === null || t === null) return;
    const visible = this.allColumns.value
      ? t.columns.map((c) => c.name)
      : defaultColumns(t.columns, Object.keys(r.classes));
    const cols = visible.map((name) => t.columns[columnIndex(t, name)]!);
    const sort = this.sort.value;
    this.thead.replaceChildren(
      h(
        "tr",
        {},
        ...cols.map((c) =>
          h(
            "th",
            {
              "data-column": c.name,
              title: c.description,
              class: sort?.column === c.name ? `sorted ${sort.dir}` : undefined,
              "aria-sort": sort?.column === c.name ? (sort.dir === "asc" ? "ascending" : "descending") : undefined,
            },
            headerLabel(c),
          ),
        ),
        h("th", {}, ""),
      ),
    );
    const parsed = parseFilter(this.filter.value, t.columns);
    this.filter.classList.toggle("invalid", !parsed.ok);
    const kept = parsed.ok ? filterRows(t, parsed.conditions) : t.rows.map((_, i) => i);
    const order = sortRows(t, kept, sort);
    const at = (name: string) => columnIndex(t, name);
    const [iz, iy, ix, iv, iid] = ["cell_centroid_z", "cell_centroid_y", "cell_centroid_x", "cell_voxels", "cell_id"].map(at);
    const meshes = new Set(r.mesh_cells);
    this.tbody.replaceChildren(
      ...order.map((i) => {
        const row = t.rows[i]!;
        const id = Number(row[iid!]);
        const href = cellViewerUrl(
          r.volume.id,
          [Number(row[iz!]), Number(row[iy!]), Number(row[ix!])],
          Number(row[iv!]),
          r.volume.voxel_size_nm,
          r.volume.shape,
        );
        return h(
          "tr",
          { "data-href": href, "data-cell": id, class: id === this.selectedCell ? "selected" : undefined },
          ...cols.map((c, k) =>
            h("td", { class: typeof row[at(c.name)] === "number" ? "num" : undefined },
              k === 0 ? h("a", { href, title: "open the viewer on this cell" }, formatValue(row[at(c.name)], c.unit))
                : formatValue(row[at(c.name)], c.unit)),
          ),
          h("td", {}, meshes.has(id) ? h("a", { href: cell3dUrl(r.id, id), class: "button small" }, "3D") : ""),
        );
      }),
    );
    this.filterNote.textContent = parsed.ok ? `${order.length} of ${t.rows.length} cells` : parsed.error;
    this.filterNote.classList.toggle("error", !parsed.ok);
  }

  /** Highlight a cell's row (from a click on a plot) and bring it into view. */
  private selectCell(id: number, scroll: boolean): void {
    this.selectedCell = id;
    for (const tr of this.tbody.querySelectorAll<HTMLTableRowElement>("tr")) {
      tr.classList.toggle("selected", Number(tr.dataset.cell) === id);
      if (scroll && Number(tr.dataset.cell) === id) tr.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
  }

  dispose(): void {
    this.runPanelD.dispose();
    this.d.dispose();
  }
}
