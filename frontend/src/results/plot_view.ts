/** Draws a {@link Figure} with Plotly into an element and reports clicks on cells; disposable. */
import Plotly from "plotly.js-dist-min";
import type { Disposable } from "../core/disposable";
import type { Figure } from "./plots";

const CONFIG: Partial<Plotly.Config> = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["lasso2d", "select2d"],
  toImageButtonOptions: { format: "svg" },
};

export class PlotView implements Disposable {
  private drawn = false;

  constructor(
    readonly element: HTMLElement,
    private readonly onCell: ((cellId: number, trace: number) => void) | null = null,
  ) {}

  async draw(figure: Figure): Promise<void> {
    const data = figure.data as unknown as Plotly.Data[];
    const layout = figure.layout as Partial<Plotly.Layout>;
    if (this.drawn) {
      await Plotly.react(this.element, data, layout, CONFIG);
      return;
    }
    const el = await Plotly.newPlot(this.element, data, layout, CONFIG);
    this.drawn = true;
    if (this.onCell !== null) {
      const onCell = this.onCell;
      el.on("plotly_click", (event: Plotly.PlotMouseEvent) => {
        const point = event.points[0];
        const id = Number(point?.customdata);
        if (point !== undefined && Number.isFinite(id)) onCell(id, point.curveNumber);
      });
    }
  }

  dispose(): void {
    if (this.drawn) Plotly.purge(this.element);
    this.drawn = false;
  }
}
