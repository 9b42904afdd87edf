/**
 * "Cells" panel: the Segment cells button (interior + optical flow + tracking from the
 * cells painted on key slices), the cell list (volume, slices spanned; a click centres
 * the viewer on the cell) and, when the volume has ground-truth cells, the per-cell Dice
 * chart of the paper's Fig 2F.
 */
import { busyJob } from "../api/http";
import { type Disposable, DisposableSet, listen } from "../core/disposable";
import { h } from "../core/dom";
import { singleFlight } from "../core/single_flight";
import { Trackable } from "../core/trackable";
import { Chart } from "../training/chart";
import type { VolumeJobs } from "../training/jobs";
import { cellDiceTraces, type CellsOptions, isRunning, type LoopJob, loopApi, partialLayerWarning, type Run } from "../training/model";
import { centreOn, type LoopHost } from "../training/host";

export class CellsPanel implements Disposable {
  readonly element: HTMLElement;
  private readonly d = new DisposableSet();
  private readonly list = h("div", { class: "cell-list", id: "cell-list" });
  private readonly summary = h("div", { class: "muted", id: "cells-summary" });
  private readonly chart: Chart;

  constructor(private readonly host: LoopHost, jobs: VolumeJobs, private readonly notify: (t: string, k: "info" | "error") => void) {
    const method = h("select", { id: "cells-method", "aria-label": "cell method" },
      h("option", { value: "fusion", selected: true }, "fusion"), h("option", { value: "flow" }, "flow only"),
      h("option", { value: "interior" }, "interior only"));
    const compare = h("input", { type: "checkbox", id: "cells-compare" });
    const run = h("button", { class: "btn", id: "cells-btn", title: "Propagate the cells painted on key slices through the volume" }, "Segment cells");
    const status = h("div", { class: "loop-status", id: "cells-status" });
    this.chart = this.d.add(new Chart("cells-dice-chart", 210));
    const posting = new Trackable(false);
    const sync = () => {
      const job = jobs.jobs.value.cells;
      run.disabled = !host.ctx.canPaint || isRunning(job) || posting.value;
      status.textContent = job === null ? "" : `Cells #${job.id}: ${job.state === "running" ? `${Math.round(job.progress * 100)} % · ` : `${job.state} · `}${job.message}`;
      status.dataset.state = job?.state ?? "";
      status.hidden = job === null || job.state === "succeeded"; // the summary below says it
    };
    this.d.add(jobs.jobs.watch(sync));
    this.d.add(host.session.role.subscribe(sync));
    this.d.add(posting.subscribe(sync));
    const start = singleFlight(() => {
      const options: CellsOptions = { method: method.value as CellsOptions["method"], compare: compare.checked };
      return loopApi.cells(host.ctx.info.id, options).then((j) => jobs.apply(j)).catch((e: unknown) => {
        const busy = busyJob<LoopJob>(e);
        if (busy !== null) jobs.apply(busy);
        notify(String(e instanceof Error ? e.message : e), busy !== null ? "info" : "error");
      });
    }, posting);
    this.d.add(listen(run, "click", () => void start()));
    this.d.add(jobs.finished.add((j) => {
      if (j.kind === "cells" && j.state === "succeeded") this.reload();
    }));
    this.element = h("section", { class: "panel loop-panel", id: "cells-panel" },
      h("h2", {}, "Cells"),
      run,
      h("div", { class: "loop-options" }, method, h("label", { title: "With ground truth: score all three methods" }, compare, " compare methods")),
      status, this.summary, this.list, this.chart.element);
    this.chart.element.hidden = true;
    this.reload();
  }

  reload(): void {
    void loopApi.cellRun(this.host.ctx.info.id).then((r) => this.render(r)).catch((e: unknown) => this.notify(String(e), "error"));
  }

  private render(run: Run | null): void {
    const cells = run?.outputs.cells ?? [];
    const dice = run?.outputs.dice ?? {};
    const own = run?.outputs.method !== undefined ? dice[run.outputs.method] : undefined;
    this.summary.textContent = run === null ? "Paint cells on a few key slices (cells layer), then Segment cells."
      : `${cells.length} cells by ${run.outputs.method ?? "?"}${own !== undefined ? ` · mean per-cell Dice ${own.mean.toFixed(3)}` : ""}`;
    const warning = partialLayerWarning(run);
    if (warning !== null) this.summary.append(h("div", { class: "layer-partial" }, warning));
    this.list.replaceChildren(...(cells.length === 0 ? [] : [h("table", { class: "cell-table" },
      h("tr", {}, h("th", {}, "cell"), h("th", {}, "µm³"), h("th", {}, "slices"), ...(own ? [h("th", {}, "Dice")] : [])),
      ...cells.map((c) => {
        const row = h("tr", { class: "cell-row", "data-cell": c.id, title: "Centre the viewer on this cell" },
          h("td", {}, String(c.id)), h("td", {}, c.volume_um3.toPrecision(3)), h("td", {}, `${c.z0}–${c.z1} (${c.slices})`),
          ...(own ? [h("td", {}, own.cells[String(c.id)]?.toFixed(3) ?? "—")] : []));
        this.d.add(listen(row, "click", () => centreOn(this.host, c.centroid)));
        return row;
      }))]));
    if (Object.keys(dice).length > 0) {
      this.chart.element.hidden = false;
      void this.chart.draw(cellDiceTraces(dice), { barmode: "group", legend: { orientation: "h", y: -0.45, font: { size: 9 } }, margin: { l: 38, r: 10, t: 6, b: 40 },
        xaxis: { type: "category", title: { text: "cell" } }, yaxis: { title: { text: "per-cell Dice" }, range: [0, 1], gridcolor: "#2a313b" } });
    } else {
      this.chart.element.hidden = true;
    }
  }

  dispose(): void {
    this.d.dispose();
  }
}
