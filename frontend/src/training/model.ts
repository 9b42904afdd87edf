/**
 * Wire types and pure logic of the model loop panels (retrain, segment, versions,
 * suggestions, cells): REST calls, job filtering, chart traces, formatting.
 * No DOM here, so it is unit-tested in node (model.spec.ts).
 */
import { request as call } from "../api/http";
import type { JobState, Zyx } from "../api/types";

export interface CurvePoint {
  step: number;
  loss: number | null;
  val_dice: number | null;
  elapsed_s?: number;
}

/** A job as the websocket and /api/projects/<id>/jobs/ send it, with its result. */
export interface LoopJob {
  id: number;
  kind: string;
  state: JobState;
  progress: number;
  message: string;
  volume: number | null;
  created: string;
  result?: {
    phase?: string;
    curve?: CurvePoint[];
    eta_s?: number;
    version?: number;
    layer?: string;
    model_version?: number;
    run?: number;
  };
}

export interface ModelVersionInfo {
  id: number;
  volume: number | null;
  parent: number | null;
  active: boolean;
  classes: Record<string, number>;
  labels_hash: string;
  labeled_voxels: number;
  curve: CurvePoint[];
  val_dice: Record<string, number | null>;
  mean_val_dice: number | null;
  config: Record<string, unknown>;
  created_by: string | null;
  created: string;
}

export interface ModelComparison {
  a: ModelVersionInfo;
  b: ModelVersionInfo;
  classes: string[];
  delta: Record<string, number | null>;
  same_labels: boolean;
}

export interface Suggestion {
  z: number;
  y0: number;
  x0: number;
  y1: number;
  x1: number;
  score: number;
  class?: string;
  dismissed?: boolean;
}

export interface CellRow {
  id: number;
  voxels: number;
  volume_um3: number;
  z0: number;
  z1: number;
  slices: number;
  centroid: Zyx;
}

export interface CellDice {
  cells: Record<string, number>;
  mean: number;
  matched: Record<string, number>;
}

export interface Run {
  id: number;
  volume: number;
  model_version: number | null;
  job: number | null;
  layer: string;
  created: string;
  /** Whether the newest job writing this run's layer finished: "partial" after a failed or killed one. */
  layer_state?: { state: "complete" | "writing" | "partial"; job: number | null; job_state?: string; message?: string };
  outputs: {
    suggestions?: Suggestion[];
    version?: number;
    tile?: number;
    cells?: CellRow[];
    dice?: Record<string, CellDice>;
    method?: string;
    class_voxels?: Record<string, number>;
  };
}

/** A warning for a layer that a job left half-written, or null when the layer is whole. */
export function partialLayerWarning(run: Run | null): string | null {
  const st = run?.layer_state;
  if (st?.state !== "partial") return null;
  return `The ${run?.layer ?? "layer"} layer is incomplete: job ${st.job ?? "?"} ${st.job_state ?? "failed"}` +
    `${st.message ? ` (${st.message})` : ""}. Run it again to replace it.`;
}

export interface RetrainOptions {
  minutes: number;
  from_scratch?: boolean;
}

export interface CellsOptions {
  method: "fusion" | "flow" | "interior";
  compare?: boolean;
}

export const loopApi = {
  jobs: (projectId: number) => call<LoopJob[]>("GET", `/api/projects/${projectId}/jobs/`),
  cancel: (jobId: number) => call<LoopJob>("POST", `/api/jobs/${jobId}/cancel/`),
  retrain: (volumeId: number, o: RetrainOptions) => call<LoopJob>("POST", `/api/volumes/${volumeId}/retrain/`, o),
  segment: (volumeId: number) => call<LoopJob>("POST", `/api/volumes/${volumeId}/segment/`, {}),
  cells: (volumeId: number, o: CellsOptions) => call<LoopJob>("POST", `/api/volumes/${volumeId}/cells/`, o),
  models: (projectId: number) => call<ModelVersionInfo[]>("GET", `/api/projects/${projectId}/models/`),
  activate: (modelId: number) => call<ModelVersionInfo>("POST", `/api/models/${modelId}/activate/`),
  compare: (a: number, b: number) => call<ModelComparison>("GET", `/api/models/${a}/compare/${b}/`),
  suggestions: (volumeId: number) => call<Run | null>("GET", `/api/volumes/${volumeId}/suggestions/`),
  dismiss: (runId: number, index: number) => call<Run>("POST", `/api/runs/${runId}/suggestions/${index}/dismiss/`),
  cellRun: (volumeId: number) => call<Run | null>("GET", `/api/volumes/${volumeId}/cells/`),
  accept: (volumeId: number, body: AcceptBody) =>
    call<{ uuid: string; version: number }>("POST", `/api/volumes/${volumeId}/accept-prediction/`, body),
};

export interface AcceptBody {
  uuid: string;
  axis: "z" | "y" | "x";
  index: number;
  points: Array<[number, number]>;
  radius: number;
}

export const LOOP_KINDS = ["retrain", "segment", "cells"] as const;
export type LoopKind = (typeof LOOP_KINDS)[number];

/** The newest job of `kind` on `volumeId` from a list (newest first or not). */
export function latestJob(jobs: readonly LoopJob[], volumeId: number, kind: LoopKind): LoopJob | null {
  let best: LoopJob | null = null;
  for (const j of jobs) {
    if (j.volume !== volumeId || j.kind !== kind) continue;
    if (best === null || j.created > best.created || (j.created === best.created && j.id > best.id)) best = j;
  }
  return best;
}

export function isRunning(job: LoopJob | null): boolean {
  return job !== null && (job.state === "queued" || job.state === "running");
}

/** "42 s", "3 min 5 s", "1 h 2 min". */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "—";
  const r = Math.round(s);
  if (r < 60) return `${r} s`;
  if (r < 3600) return `${Math.floor(r / 60)} min ${r % 60} s`;
  return `${Math.floor(r / 3600)} h ${Math.round((r % 3600) / 60)} min`;
}

export function formatDice(d: number | null | undefined): string {
  return d === null || d === undefined || !Number.isFinite(d) ? "—" : d.toFixed(3);
}

/** How a version predicts a class, as calibrated on its held-out slices: the probability cut-off
 * and how much of the neighbouring slices' probability is mixed in ("—" for versions saved
 * before calibration was recorded). */
export function calibrationText(m: ModelVersionInfo, cls: string): string {
  const thresholds = m.config.thresholds as Record<string, number> | undefined;
  if (thresholds === undefined) return "—";
  const mix = (m.config.z_blend as Record<string, number> | undefined)?.[cls];
  return `${(thresholds[cls] ?? 0.5).toFixed(2)}${mix ? ` · mix ${mix.toFixed(1)}` : ""}`;
}

/** Traces of the live training chart: loss on the left axis, validation Dice (0..1) on the right. */
export function curveTraces(curve: readonly CurvePoint[]): Array<Record<string, unknown>> {
  const loss = curve.filter((p) => p.loss !== null);
  const dice = curve.filter((p) => p.val_dice !== null);
  return [
    { x: loss.map((p) => p.step), y: loss.map((p) => p.loss), name: "loss", mode: "lines+markers", line: { color: "#f0a04b" } },
    {
      x: dice.map((p) => p.step), y: dice.map((p) => p.val_dice), name: "val Dice", mode: "lines+markers",
      yaxis: "y2", line: { color: "#4bd18b" },
    },
  ];
}

/** Validation Dice per class (and their mean) over model versions, oldest first. */
export function versionTraces(models: readonly ModelVersionInfo[]): Array<Record<string, unknown>> {
  const ordered = [...models].sort((a, b) => a.id - b.id);
  const x = ordered.map((m) => `v${m.id}`);
  const classes = [...new Set(ordered.flatMap((m) => Object.keys(m.val_dice)))].sort();
  const traces: Array<Record<string, unknown>> = classes.map((c) => ({
    x, y: ordered.map((m) => m.val_dice[c] ?? null), name: c, mode: "lines+markers", connectgaps: false,
  }));
  traces.push({
    x, y: ordered.map((m) => m.mean_val_dice), name: "mean", mode: "lines+markers", line: { width: 3, color: "#ffffff" },
  });
  traces.push({
    x, y: ordered.map((m) => m.labeled_voxels), name: "labeled voxels", type: "bar", yaxis: "y2", opacity: 0.25,
    marker: { color: "#5b8def" },
  });
  return traces;
}

/** Per-cell Dice bars grouped by method, cells in id order (paper Fig 2F). */
export function cellDiceTraces(dice: Record<string, CellDice>): Array<Record<string, unknown>> {
  const order = ["interior", "flow", "fusion"].filter((m) => m in dice);
  const ids = [...new Set(order.flatMap((m) => Object.keys(dice[m]!.cells)))].sort((a, b) => Number(a) - Number(b));
  const colors: Record<string, string> = { interior: "#8a94a6", flow: "#5b8def", fusion: "#4bd18b" };
  return order.map((m) => ({
    x: ids, y: ids.map((i) => dice[m]!.cells[i] ?? 0), type: "bar",
    name: `${m} (mean ${dice[m]!.mean.toFixed(3)})`, marker: { color: colors[m] },
  }));
}

export function thumbnailUrl(volumeId: number, s: Suggestion, size = 96, overlay = "prediction"): string {
  return `/api/volumes/${volumeId}/thumbnail.png?z=${s.z}&y0=${s.y0}&x0=${s.x0}&y1=${s.y1}&x1=${s.x1}&size=${size}&overlay=${encodeURIComponent(overlay)}`;
}

/** The voxel to centre on for a suggested region: its middle, on its slice. */
export function regionCentre(s: Suggestion): Zyx {
  return [s.z, Math.floor((s.y0 + s.y1) / 2), Math.floor((s.x0 + s.x1) / 2)];
}

/** Visible suggestions with their index in the run (dismiss needs it), best first. */
export function openSuggestions(run: Run | null): Array<{ index: number; s: Suggestion }> {
  const list = run?.outputs.suggestions ?? [];
  return list.map((s, index) => ({ index, s })).filter((e) => !e.s.dismissed).sort((a, b) => b.s.score - a.s.score);
}

/** Plane [row, col] of a level-0 ZYX point in the view of `axis`. */
export function planePoint(axis: "z" | "y" | "x", p: Zyx): [number, number] {
  if (axis === "z") return [p[1], p[2]];
  if (axis === "y") return [p[0], p[2]];
  return [p[0], p[1]];
}

/**
 * The voxel [row, col] under a level-0 ZYX point in the view of `axis`, clipped to the
 * plane of a volume of `shape`, as the paint brush clips: a drag that starts or wanders
 * off the image still sends points the server accepts.
 */
export function planeVoxel(axis: "z" | "y" | "x", p: Zyx, shape: Zyx): [number, number] {
  const [row, col] = planePoint(axis, p);
  const [rows, cols] = planePoint(axis, shape);
  return [Math.min(rows - 1, Math.max(0, Math.floor(row))), Math.min(cols - 1, Math.max(0, Math.floor(col)))];
}
