/**
 * Plotly figures of reports, built as plain data (pure, tested without a browser):
 * stacked organelle volumes per cell in the class colours (the paper's Fig 1, fourth
 * row), and distributions of one measure per volume (Fig 2G solidity, Fig 2H
 * fenestration), as box plots with every cell drawn as a point.
 */
import type { CellTable } from "./results_api";
import { columnValues } from "./table_model";

/** Minimal Plotly shapes used here (plotly.js-dist-min's own types are looser). */
export interface Trace {
  type: "bar" | "box";
  name: string;
  x?: Array<string | number>;
  y?: Array<number | null>;
  customdata?: Array<number | string>;
  marker?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Figure {
  data: Trace[];
  layout: Record<string, unknown>;
}

export type VolumeMode = "um3" | "pct";

/** Dark theme matching portal.css. */
export function baseLayout(title: string, yTitle: string): Record<string, unknown> {
  return {
    title: { text: title, font: { size: 15 } },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#181c22",
    font: { color: "#e6e9ee", family: "system-ui, sans-serif", size: 12 },
    margin: { l: 64, r: 16, t: 44, b: 56 },
    xaxis: { gridcolor: "#2c313a", linecolor: "#3a404b", automargin: true },
    yaxis: { title: { text: yTitle }, gridcolor: "#2c313a", zerolinecolor: "#3a404b", automargin: true },
    legend: { orientation: "h", y: -0.18, traceorder: "normal" },
    hoverlabel: { bgcolor: "#0e1014" },
  };
}

/**
 * Part of each class that no nested class covers, per cell: nucleus minus its nucleoli,
 * so stacked segments add up to the organelles' total without counting a voxel twice.
 */
export function exclusiveVolumes(
  table: CellTable,
  classes: readonly string[],
  hierarchy: Readonly<Record<string, string>>,
  mode: VolumeMode,
): Map<string, number[]> {
  const suffix = mode === "um3" ? "_volume_um3" : "_pct_of_cell";
  const raw = new Map(classes.map((c) => [c, columnValues(table, `${c}${suffix}`).map((v) => Number(v ?? 0))]));
  const out = new Map<string, number[]>();
  for (const c of classes) {
    const own = [...raw.get(c)!];
    for (const child of classes) {
      if (hierarchy[child] === c) raw.get(child)!.forEach((v, i) => (own[i] = Math.max(0, own[i]! - v)));
    }
    out.set(c, own);
  }
  return out;
}

function stackName(c: string, classes: readonly string[], hierarchy: Readonly<Record<string, string>>): string {
  const children = classes.filter((child) => hierarchy[child] === c);
  return children.length ? `${c} (without ${children.join(", ")})` : c;
}

/** Stacked bars: one bar per cell (sorted by id), one segment per class in its colour. */
export function organelleBars(
  table: CellTable,
  classes: readonly string[],
  colors: Readonly<Record<string, string>>,
  hierarchy: Readonly<Record<string, string>>,
  mode: VolumeMode,
): Figure {
  const ids = columnValues(table, "cell_id").map((v) => Number(v));
  const order = ids.map((_, i) => i).sort((a, b) => ids[a]! - ids[b]!);
  const volumes = exclusiveVolumes(table, classes, hierarchy, mode);
  const x = order.map((i) => `cell ${ids[i]}`);
  const unit = mode === "um3" ? "µm³" : "% of cell";
  const data: Trace[] = classes.map((c) => ({
    type: "bar",
    name: stackName(c, classes, hierarchy),
    x,
    y: order.map((i) => volumes.get(c)![i]!),
    customdata: order.map((i) => ids[i]!),
    marker: { color: colors[c] ?? "#888888", line: { color: "#8a93a0", width: 0.6 } },
    hovertemplate: `%{x}<br>${c}: %{y:.4g} ${unit}<extra></extra>`,
  }));
  const layout = baseLayout(
    mode === "um3" ? "Organelle volume per cell" : "Organelle volume per cell, % of the cell",
    mode === "um3" ? "volume (µm³)" : "% of cell volume",
  );
  layout.barmode = "stack";
  layout.bargap = 0.25;
  return { data, layout };
}

export interface Group {
  /** Volume (dataset) name, the x category. */
  name: string;
  values: Array<number | null>;
  cellIds: number[];
  color?: string;
}

/** `#rrggbb` with an alpha, as Plotly's `rgba(...)`; other strings come back unchanged. */
export function withAlpha(color: string, alpha: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (m === null) return color;
  return `rgba(${parseInt(m[1]!, 16)},${parseInt(m[2]!, 16)},${parseInt(m[3]!, 16)},${alpha})`;
}

/** One box per group with every cell as a point; null values (does not apply) are left out. */
export function distribution(groups: readonly Group[], title: string, yTitle: string): Figure {
  const data: Trace[] = groups.map((g) => {
    const color = g.color ?? "#4aa8ff";
    const keep = g.values.map((v, i) => [v, g.cellIds[i]] as const).filter(([v]) => v !== null && Number.isFinite(v));
    return {
      type: "box",
      name: g.name,
      y: keep.map(([v]) => v as number),
      customdata: keep.map(([, id]) => id as number),
      boxpoints: "all",
      jitter: 0.45,
      pointpos: 0,
      boxmean: true,
      marker: { color, size: 7, opacity: 0.9 },
      line: { color },
      fillcolor: withAlpha(color, 0.12),
      hovertemplate: `cell %{customdata}: %{y:.4g}<extra>${g.name}</extra>`,
    };
  });
  const layout = baseLayout(title, yTitle);
  layout.showlegend = false;
  return { data, layout };
}

/** Mean share of the cell per class and volume, stacked: the project's side-by-side view. */
export function meanShareBars(
  volumes: ReadonlyArray<{ name: string; table: CellTable }>,
  classes: readonly string[],
  colors: Readonly<Record<string, string>>,
  hierarchy: Readonly<Record<string, string>>,
): Figure {
  const means = volumes.map(({ table }) => {
    const parts = exclusiveVolumes(table, classes, hierarchy, "pct");
    return new Map(classes.map((c) => {
      const v = parts.get(c)!;
      return [c, v.length ? v.reduce((a, b) => a + b, 0) / v.length : 0];
    }));
  });
  const x = volumes.map((v) => v.name);
  const data: Trace[] = classes.map((c) => ({
    type: "bar",
    name: stackName(c, classes, hierarchy),
    x,
    y: means.map((m) => m.get(c)!),
    marker: { color: colors[c] ?? "#888888", line: { color: "#8a93a0", width: 0.6 } },
    hovertemplate: `%{x}<br>${c}: %{y:.3g} % of cell (mean)<extra></extra>`,
  }));
  const layout = baseLayout("Mean organelle share of the cell, per volume", "% of cell volume (mean over cells)");
  layout.barmode = "stack";
  return { data, layout };
}
