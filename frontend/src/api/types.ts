/** Wire types of the EM Portal REST and websocket API (see the viewer contract). */

export type Axis = "z" | "y" | "x";
export const AXES: readonly Axis[] = ["z", "y", "x"];

export type Role = "viewer" | "annotator" | "reviewer" | "manager";
const ROLE_RANK: Record<Role, number> = { viewer: 0, annotator: 1, reviewer: 2, manager: 3 };

/** True when `role` is at least `minimum` in viewer < annotator < reviewer < manager. */
export function roleAtLeast(role: Role, minimum: Role): boolean {
  return ROLE_RANK[role] >= ROLE_RANK[minimum];
}

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && value in ROLE_RANK;
}

/** [Z, Y, X] in voxels or nm. */
export type Zyx = [number, number, number];

export interface LevelInfo {
  level: number;
  shape: Zyx;
  downsample: Zyx;
}

export type LayerKind = "labels" | "instances";

export interface LayerInfo {
  name: string;
  kind: LayerKind;
  /** Optional: largest id in an instance layer, so "new id" can pick max + 1. */
  max_value?: number;
  /** Current layer version (label tile cache-buster); the backend sends it. */
  version?: number;
  /** Whether this user may paint this layer (predictions are read-only). */
  editable?: boolean;
}

export interface LabelClass {
  id: number;
  name: string;
  value: number;
  color: string;
  kind: "semantic" | "instance";
}

export interface VolumeInfo {
  id: number;
  name: string;
  project: { id: number; name: string };
  shape: Zyx;
  voxel_size_nm: Zyx;
  dtype: string;
  tile_size: number;
  levels: LevelInfo[];
  window: [number, number];
  role: Role;
  layers: LayerInfo[];
  classes: LabelClass[];
  complete_slices: Array<[Axis, number]>;
}

export type StrokeMode = "paint" | "erase" | "fill" | "polygon";

export interface Stroke {
  uuid: string;
  layer: string;
  axis: Axis;
  /** Level-0 coordinate along `axis`. */
  index: number;
  /** Level-0 [row, col] in the plane (z: y,x; y: z,x; x: z,y). */
  points: Array<[number, number]>;
  radius: number;
  value: number;
  mode: StrokeMode;
  user?: string;
}

export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface Job {
  id: number;
  kind: string;
  state: JobState;
  progress: number;
  message: string;
  created: string;
  volume: number | null;
}

export type ClientMessage =
  | { type: "stroke"; stroke: Stroke }
  | { type: "undo"; uuid: string }
  | { type: "redo"; uuid: string }
  | { type: "mark_complete"; axis: Axis; index: number; complete: boolean }
  | { type: "presence"; focus: Zyx };

export type ServerMessage =
  | { type: "ack"; uuid: string; version: number }
  | { type: "stroke"; stroke: Stroke; version: number }
  | { type: "undo"; uuid: string; version: number; user?: string }
  | { type: "redo"; uuid: string; version: number; user?: string }
  | { type: "error"; uuid?: string; code: string; message: string }
  | { type: "job"; job: Job }
  | { type: "hello"; user: string; role: Role; version: number }
  | PresenceMessage
  | {
      type: "mark_complete";
      axis: Axis;
      index: number;
      complete: boolean;
      user?: string;
    };

/**
 * Who else has this volume open: `id` names one socket (a user may have two tabs); `focus` is
 * their crosshair, null when they just joined (others answer with theirs) or `left` is set.
 */
export interface PresenceMessage {
  type: "presence";
  id: string;
  user: string;
  focus: Zyx | null;
  joined?: boolean;
  left?: boolean;
}

const KNOWN_TYPES = new Set(["ack", "stroke", "undo", "redo", "error", "job", "hello", "mark_complete", "presence"]);

function knownMessage(data: unknown): ServerMessage | null {
  if (typeof data !== "object" || data === null) return null;
  return KNOWN_TYPES.has((data as { type?: unknown }).type as string) ? (data as ServerMessage) : null;
}

/**
 * Parse one websocket frame into its messages, in order: a frame holds one message, or a
 * `{"type": "batch", "events": [...]}` of the events the server gathered for one frame.
 * Anything that is not a known message is dropped.
 */
export function parseServerMessages(text: string): ServerMessage[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return [];
  }
  const batch = data as { type?: unknown; events?: unknown };
  const items = batch?.type === "batch" && Array.isArray(batch.events) ? batch.events : [data];
  return items.map(knownMessage).filter((m): m is ServerMessage => m !== null);
}
