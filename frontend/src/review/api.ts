/** Wire types and REST client of team review (assignments, items, comments, diff, audit, notifications). */
import { request as call } from "../api/http";
import type { Axis } from "../api/types";

export type AssignmentState = "open" | "in_review" | "changes_requested" | "fixed" | "approved";
export type ItemState = "pending" | "approved" | "changes_requested" | "fixed";
export type Scope = "slices" | "cells" | "volume";
export type TransitionAction = "start" | "request_changes" | "mark_fixed" | "approve" | "reopen";
export type ItemDecision = "approve" | "request_changes" | "fixed";

export interface Progress {
  approved: number;
  changes_requested: number;
  fixed: number;
  pending: number;
  total: number;
}

export interface Assignment {
  id: number;
  volume: number;
  volume_name: string;
  layer: string;
  scope: Scope;
  z0: number;
  z1: number;
  cells: number[];
  reviewer: string | null;
  fixer: string | null;
  due: string | null;
  note: string;
  state: AssignmentState;
  created_by: string | null;
  created: string;
  updated: string;
  overdue: boolean;
  progress: Progress;
  url: string;
}

export interface ReviewItem {
  kind: "slice" | "cell";
  key: number;
  state: ItemState;
  decided_by: string | null;
  decided_at: string | null;
  center: [number, number, number];
}

export interface AuditRow {
  at: string;
  actor: string | null;
  action: string;
  layer: string | null;
  detail: unknown;
}

export interface AssignmentDetail extends Assignment {
  items: ReviewItem[];
  history: AuditRow[];
}

export interface Comment {
  id: number;
  volume: number;
  layer: string | null;
  assignment: number | null;
  parent: number | null;
  z: number;
  y: number;
  x: number;
  text: string;
  author: string | null;
  created: string;
  resolved: boolean;
  resolved_by: string | null;
  url: string;
  replies?: Comment[];
}

export interface NewComment {
  z: number;
  y: number;
  x: number;
  text: string;
  layer?: string;
  assignment?: number;
  parent?: number;
}

export interface Pin {
  comment?: string;
  z?: number;
  y?: number;
  x?: number;
}

export interface ClassAgreement {
  dice: number | null;
  a_voxels: number;
  b_voxels: number;
}

export interface DiffResult {
  a: string;
  b: string;
  compared_voxels: number;
  disagree_voxels: number;
  classes: Record<string, ClassAgreement>;
  cells?: Array<{ a: number; b: number | null; dice: number }>;
  slices: Array<{ z: number; disagree: number }>;
}

export interface Summary {
  by_state: Partial<Record<AssignmentState, number>>;
  by_person: Array<{ user: string; reviewing: number; fixing: number; overdue: number }>;
  overdue: Assignment[];
}

export interface Notification {
  id: number;
  kind: string;
  text: string;
  link: string;
  created: string;
  read: boolean;
}

export interface NewAssignment {
  volume: number;
  layer: string;
  scope: Scope;
  z0?: number;
  z1?: number;
  cells?: number[];
  reviewer: string;
  fixer: string;
  due?: string;
  note?: string;
}

function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === false || v === "") continue;
    q.set(k, v === true ? "1" : String(v));
  }
  const s = q.toString();
  return s === "" ? "" : `?${s}`;
}

export const reviewApi = {
  list: (projectId: number, f: { state?: string; volume?: number; mine?: boolean } = {}) =>
    call<{ results: Assignment[] }>("GET", `/api/projects/${projectId}/reviews/${query(f)}`),
  create: (projectId: number, body: NewAssignment) => call<Assignment>("POST", `/api/projects/${projectId}/reviews/`, body),
  summary: (projectId: number) => call<Summary>("GET", `/api/projects/${projectId}/reviews/summary/`),
  get: (id: number) => call<AssignmentDetail>("GET", `/api/reviews/${id}/`),
  remove: (id: number) => call<unknown>("DELETE", `/api/reviews/${id}/`),
  transition: (id: number, action: TransitionAction, pin: Pin = {}) =>
    call<Assignment>("POST", `/api/reviews/${id}/transition/`, { action, ...pin }),
  decide: (id: number, item: { kind: string; key: number }, decision: ItemDecision, pin: Pin = {}) =>
    call<unknown>("POST", `/api/reviews/${id}/items/`, { kind: item.kind, key: item.key, decision, ...pin }),
  comments: (volumeId: number, f: { open?: boolean; assignment?: number } = {}) =>
    call<{ results: Comment[] }>("GET", `/api/volumes/${volumeId}/comments/${query(f)}`),
  comment: (volumeId: number, body: NewComment) => call<Comment>("POST", `/api/volumes/${volumeId}/comments/`, body),
  resolve: (commentId: number) => call<Comment>("POST", `/api/comments/${commentId}/resolve/`),
  reopen: (commentId: number) => call<Comment>("POST", `/api/comments/${commentId}/reopen/`),
  diff: (volumeId: number, a: string, b: string, range: { z0?: number; z1?: number } = {}) =>
    call<DiffResult>("GET", `/api/volumes/${volumeId}/diff/${query({ a, b, ...range })}`),
  audit: (volumeId: number, f: { since?: string; limit?: number } = {}) =>
    call<{ results: AuditRow[] }>("GET", `/api/volumes/${volumeId}/audit/${query({ format: "json", ...f })}`),
  notifications: (unread = false) =>
    call<{ results: Notification[]; unread: number }>("GET", `/api/notifications/${query({ unread })}`),
  markRead: (ids: number[] | "all") =>
    call<unknown>("POST", "/api/notifications/read/", ids === "all" ? { all: true } : { ids }),
};

export function auditCsvUrl(volumeId: number): string {
  return `/api/volumes/${volumeId}/audit/?format=csv`;
}

export function diffTileUrl(volumeId: number, a: string, b: string, t: { axis: Axis; index: number; level: number; ty: number; tx: number }): string {
  return `/api/volumes/${volumeId}/diff/tiles/${t.axis}/${t.index}/${t.level}/${t.ty}/${t.tx}.png${query({ a, b })}`;
}
