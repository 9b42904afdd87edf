/** Wire types and calls of the reports API (segmentation/reports/api.py). */
import { request as call } from "../api/http";
import type { Job, Zyx } from "../api/types";

export type CellValue = number | boolean | null;

export interface ColumnInfo {
  name: string;
  unit: string;
  description: string;
}

/** One row per cell; `rows[i][j]` is column `columns[j]` of cell i; null = "does not apply". */
export interface CellTable {
  columns: ColumnInfo[];
  rows: CellValue[][];
}

export interface ReportInfo {
  id: number;
  volume: { id: number; name: string; shape: Zyx; voxel_size_nm: Zyx };
  project: { id: number; name: string };
  job: number | null;
  created: string;
  labels_layer: string;
  cells_layer: string;
  /** Feature class name -> label value used. */
  classes: Record<string, number>;
  /** Class name -> "#rrggbb" (the project's colours, the paper's by default). */
  colors: Record<string, string>;
  /** Child class -> parent class among the report's classes (nucleolus -> nucleus). */
  hierarchy: Record<string, string>;
  fenestration_closing_nm: number;
  n_cells: number;
  means: Record<string, number | null>;
  /** True when a layer changed since the report was made. */
  stale: boolean;
  mesh_cells: number[];
  downloads: Partial<Record<"csv" | "xlsx" | "parquet" | "meshes", string>>;
  cells_url: string;
}

export interface ReportLayers {
  labels_layers: string[];
  cells_layers: string[];
  labels_layer: string | null;
  cells_layer: string | null;
}

export interface VolumeReports {
  reports: ReportInfo[];
  layers: ReportLayers;
  active_jobs: Job[];
  can_run: boolean;
}

export interface ReportRequest {
  labels_layer: string;
  cells_layer: string;
  fenestration_closing_nm: number;
}

export const reportsApi = {
  forVolume: (volumeId: number) => call<VolumeReports>("GET", `/api/volumes/${volumeId}/reports/`),
  forProject: (projectId: number) => call<ReportInfo[]>("GET", `/api/projects/${projectId}/reports/`),
  report: (reportId: number) => call<ReportInfo>("GET", `/api/reports/${reportId}/`),
  cells: (reportId: number) => call<CellTable>("GET", `/api/reports/${reportId}/cells/`),
  run: (volumeId: number, req: ReportRequest) => call<Job>("POST", `/api/volumes/${volumeId}/reports/`, req),
  job: (jobId: number) => call<Job>("GET", `/api/jobs/${jobId}/`),
};

export function meshUrl(reportId: number, cellId: number): string {
  return `/api/reports/${reportId}/cells/${cellId}/mesh.glb`;
}

export function plyUrl(reportId: number, cellId: number, part: string): string {
  return `/api/reports/${reportId}/cells/${cellId}/${encodeURIComponent(part)}.ply`;
}

export function layerDownloadUrl(volumeId: number, layer: string, format: "tif" | "zarr"): string {
  const suffix = format === "tif" ? "export.tif" : "export.ome.zarr.zip";
  return `/api/volumes/${volumeId}/layers/${encodeURIComponent(layer)}/${suffix}`;
}

export function cell3dUrl(reportId: number, cellId: number): string {
  return `/reports/${reportId}/cells/${cellId}/3d/`;
}
