/**
 * A small Plotly chart for the sidebar, dark themed. Plotly is loaded on first draw (a
 * separate chunk), so the viewer itself starts as fast as before.
 */
import type { Disposable } from "../core/disposable";
import { h } from "../core/dom";

type PlotlyModule = typeof import("plotly.js-dist-min");
let plotly: Promise<PlotlyModule> | null = null;

function loadPlotly(): Promise<PlotlyModule> {
  plotly ??= import("plotly.js-dist-min").then((m) => ((m as unknown as { default?: PlotlyModule }).default ?? m));
  return plotly;
}

const BASE_LAYOUT: Record<string, unknown> = {
  paper_bgcolor: "rgba(0,0,0,0)",
  plot_bgcolor: "rgba(0,0,0,0)",
  font: { color: "#c9d1d9", size: 10 },
  margin: { l: 38, r: 38, t: 6, b: 28 },
  legend: { orientation: "h", y: -0.25, font: { size: 9 } },
  xaxis: { gridcolor: "#2a313b", zeroline: false },
  yaxis: { gridcolor: "#2a313b", zeroline: false },
};

export class Chart implements Disposable {
  readonly element: HTMLDivElement;
  private drawn = false;
  private disposed = false;
  private pending: Promise<void> = Promise.resolve();

  constructor(id: string, height = 170) {
    this.element = h("div", { class: "loop-chart", id });
    this.element.style.height = `${height}px`;
  }

  /** Draw (or redraw) `traces` with `layout` merged over the dark base layout. */
  draw(traces: Array<Record<string, unknown>>, layout: Record<string, unknown> = {}): Promise<void> {
    this.pending = this.pending.then(async () => {
      if (this.disposed) return;
      const P = await loadPlotly();
      if (this.disposed) return;
      const merged = { ...BASE_LAYOUT, ...layout };
      const config = { displayModeBar: false, responsive: true };
      if (this.drawn) await P.react(this.element, traces, merged, config);
      else await P.newPlot(this.element, traces, merged, config);
      this.drawn = true;
      this.element.dataset.points = String(traces.reduce((n, t) => n + ((t.x as unknown[] | undefined)?.length ?? 0), 0));
    }).catch((err: unknown) => {
      this.element.textContent = `chart unavailable: ${String(err)}`;
    });
    return this.pending;
  }

  dispose(): void {
    this.disposed = true;
    if (this.drawn) void loadPlotly().then((P) => P.purge(this.element));
  }
}
