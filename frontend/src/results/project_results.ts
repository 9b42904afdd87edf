/**
 * Results of a project: the newest report of every volume side by side, like the paper's
 * Fig 2G/2H across Bx1, Bx2, PDAC and MCF7: mean organelle share per volume (stacked),
 * nucleus solidity and fenestrated nucleolar volume per volume (box + every cell).
 */
import { ProjectJobs } from "../api/project_events";
import { type Disposable, DisposableSet } from "../core/disposable";
import { h } from "../core/dom";
import { PlotView } from "./plot_view";
import { type Group, distribution, meanShareBars } from "./plots";
import { type CellTable, type ReportInfo, reportsApi } from "./results_api";
import { columnValues } from "./table_model";

/** Distinct colours for volumes (datasets); classes keep their own colours. */
const VOLUME_COLORS = ["#4aa8ff", "#ff9f43", "#2bd9c0", "#c77dff", "#ff6b81", "#a3e048", "#ffd166", "#8fa3bf"];

export class ProjectResultsPage implements Disposable {
  private readonly d = new DisposableSet();

  constructor(
    private readonly root: HTMLElement,
    private readonly projectId: number,
  ) {
    root.replaceChildren(h("p", { class: "muted" }, "loading…"));
    void this.load();
    // A report finished anywhere in the project joins the comparison without a reload.
    this.d.add(new ProjectJobs(projectId, (job) => {
      if (job.kind === "report" && job.state === "succeeded") void this.load();
    }));
  }

  private async load(): Promise<void> {
    let reports: ReportInfo[];
    let tables: CellTable[];
    try {
      reports = await reportsApi.forProject(this.projectId);
      tables = await Promise.all(reports.map((r) => reportsApi.cells(r.id)));
    } catch (err) {
      this.root.replaceChildren(h("p", { class: "error" }, `could not load the reports: ${String(err)}`));
      return;
    }
    if (reports.length === 0) {
      this.root.replaceChildren(
        h("p", { class: "card empty", id: "no-report" },
          "No volume of this project has a report yet. Open a volume's results page to run one."),
      );
      return;
    }
    const first = reports[0]!;
    const classes = [...new Set(reports.flatMap((r) => Object.keys(r.classes)))];
    const colors = Object.assign({}, ...reports.map((r) => r.colors)) as Record<string, string>;
    const hierarchy = Object.assign({}, ...reports.map((r) => r.hierarchy)) as Record<string, string>;
    const groups = (column: string): Group[] =>
      reports.map((r, k) => ({
        name: r.volume.name,
        values: columnValues(tables[k]!, column).map((v) => (typeof v === "number" ? v : null)),
        cellIds: columnValues(tables[k]!, "cell_id").map(Number),
        color: VOLUME_COLORS[k % VOLUME_COLORS.length]!,
      }));

    const share = h("div", { class: "res-plot", id: "plot-share" });
    const solidity = h("div", { class: "res-plot", id: "plot-solidity" });
    const fenestration = h("div", { class: "res-plot", id: "plot-fenestration" });
    const cellVolume = h("div", { class: "res-plot", id: "plot-cell-volume" });
    const mito = h("div", { class: "res-plot", id: "plot-mitochondria" });
    const summary = h(
      "table",
      { class: "res-table", id: "volume-summary" },
      h("thead", {}, h("tr", {}, ...["Volume", "Cells", "Classes / cells layers", "Report", ""].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        ...reports.map((r) =>
          h(
            "tr",
            {},
            h("td", {}, r.volume.name),
            h("td", { class: "num" }, String(r.n_cells)),
            h("td", {}, `${r.labels_layer} / ${r.cells_layer}`),
            h("td", {}, `#${r.id} · ${new Date(r.created).toLocaleString()}`, r.stale ? h("span", { class: "stale" }, " · stale") : ""),
            h("td", {}, h("a", { href: `/volumes/${r.volume.id}/results/` }, "open results")),
          ),
        ),
      ),
    );
    this.root.replaceChildren(
      h("div", { class: "res-body" },
        h("div", { class: "res-plot-card card wide" }, share),
        h("div", { class: "res-plot-card card" }, solidity),
        h("div", { class: "res-plot-card card" }, fenestration),
        h("div", { class: "res-plot-card card" }, mito),
        h("div", { class: "res-plot-card card" }, cellVolume),
        h("section", { class: "card wide" }, h("h2", {}, "Volumes"), summary)),
    );
    const named = reports.map((r, k) => ({ name: r.volume.name, table: tables[k]! }));
    const views = [share, solidity, fenestration, mito, cellVolume].map((el) => this.d.add(new PlotView(el)));
    await views[0]!.draw(meanShareBars(named, classes, colors, hierarchy));
    await views[1]!.draw(distribution(groups("nucleus_solidity"), "Nucleus solidity per volume (Fig 2G)", "solidity"));
    await views[2]!.draw(distribution(groups("nucleolus_fenestrated_pct"),
      "Fenestrated nucleolar volume per volume (Fig 2H)", "% of nucleolus"));
    await views[3]!.draw(distribution(groups("mitochondrion_pct_of_cell"), "Mitochondria per volume", "% of cell volume"));
    await views[4]!.draw(distribution(groups("cell_volume_um3"), "Cell volume per volume", "µm³"));
    this.root.dataset.drawn = "true";
    this.root.dataset.project = first.project.name;
  }

  dispose(): void {
    this.d.dispose();
  }
}
