/** REST helpers: session auth (cookies), CSRF header on writes, typed JSON, tile URLs. */
import type { Axis, Job, VolumeInfo } from "./types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The parsed error body ({"error": {code, message, detail}}), or null. */
    readonly body: unknown = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Value of the `csrftoken` cookie in a `document.cookie` string, or "". */
export function csrfTokenFrom(cookie: string): string {
  for (const part of cookie.split(";")) {
    const [k, ...rest] = part.trim().split("=");
    if (k === "csrftoken") return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** Message of an error body in the one JSON shape {"error": {code, message}} (or DRF's {"detail"}). */
export function errorMessage(body: unknown, fallback: string): string {
  if (typeof body !== "object" || body === null) return fallback;
  const b = body as { error?: { message?: unknown }; message?: unknown; detail?: unknown };
  if (typeof b.error?.message === "string") return b.error.message;
  if (typeof b.message === "string") return b.message;
  if (typeof b.detail === "string") return b.detail;
  return fallback;
}

/** The job a 409 "job_running" refusal names (the one already queued or running), or null. */
export function busyJob<J extends { id: number }>(err: unknown): J | null {
  if (!(err instanceof ApiError) || err.status !== 409) return null;
  const b = err.body as { error?: { code?: unknown; detail?: { job?: unknown } } } | null;
  const job = b?.error?.code === "job_running" ? b.error.detail?.job : undefined;
  return typeof job === "object" && job !== null && typeof (job as { id?: unknown }).id === "number" ? job as J : null;
}

/** JSON request with the session cookie (and the CSRF header on writes); errors throw ApiError
 *  carrying the server's message, ready to show to the user. */
export async function request<T>(method: "GET" | "POST" | "DELETE", url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const init: RequestInit = { method, headers, credentials: "same-origin" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = csrfTokenFrom(document.cookie);
    init.body = JSON.stringify(body ?? {});
  }
  const res = await fetch(url, init);
  if (!res.ok) {
    let data: unknown = null;
    try {
      data = await res.json();
    } catch {
      /* not JSON: keep the status text */
    }
    throw new ApiError(res.status, errorMessage(data, res.statusText || `HTTP ${res.status}`), data);
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** One row of a layer's stroke log (newest first), as GET /api/volumes/<id>/strokes/ lists it. */
export interface LoggedStroke {
  uuid: string;
  user: string | null;
  mode: string;
  axis: Axis;
  index: number;
  value: number;
  active: boolean;
  version: number;
  created: string;
}

export const api = {
  volume: (id: number) => request<VolumeInfo>("GET", `/api/volumes/${id}/`),
  strokes: (id: number, layer: string) =>
    request<LoggedStroke[]>("GET", `/api/volumes/${id}/strokes/?layer=${encodeURIComponent(layer)}`),
  jobs: (projectId: number) => request<Job[]>("GET", `/api/projects/${projectId}/jobs/`),
  cancelJob: (jobId: number) => request<unknown>("POST", `/api/jobs/${jobId}/cancel/`),
  /** Value of a label layer at one level-0 voxel (optional endpoint; used by the picker). */
  labelValue: (id: number, layer: string, z: number, y: number, x: number) =>
    request<{ value: number }>(
      "GET",
      `/api/volumes/${id}/layers/${encodeURIComponent(layer)}/value/?z=${z}&y=${y}&x=${x}`,
    ),
};

export interface TileAddress {
  axis: Axis;
  /** Coordinate along axis in that level's voxels. */
  index: number;
  level: number;
  ty: number;
  tx: number;
}

export function imageTileUrl(volumeId: number, t: TileAddress, window: [number, number]): string {
  const w = `${Math.round(window[0])},${Math.round(window[1])}`;
  return `/api/volumes/${volumeId}/tiles/${t.axis}/${t.index}/${t.level}/${t.ty}/${t.tx}.png?window=${w}`;
}

export function labelTileUrl(
  volumeId: number,
  layer: string,
  t: TileAddress,
  version: number | string,
): string {
  return (
    `/api/volumes/${volumeId}/layers/${encodeURIComponent(layer)}/tiles/` +
    `${t.axis}/${t.index}/${t.level}/${t.ty}/${t.tx}.png?v=${version}`
  );
}
