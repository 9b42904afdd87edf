/** Pure helpers of the review pages: the dashboard's state counts, the form's body, audit rows as text. */
import type { Assignment, AssignmentState, AuditRow, NewAssignment, Scope } from "./api";

export const STATE_ORDER: readonly AssignmentState[] = ["open", "in_review", "changes_requested", "fixed", "approved"];

/** Assignments per state, every state present (0 when none). */
export function countByState(list: readonly Pick<Assignment, "state">[]): Record<AssignmentState, number> {
  const out = Object.fromEntries(STATE_ORDER.map((s) => [s, 0])) as Record<AssignmentState, number>;
  for (const a of list) out[a.state]++;
  return out;
}

/** Parse "3, 7 12" into cell ids; throws naming the bad entry. */
export function parseCellIds(text: string): number[] {
  const parts = text.split(/[\s,;]+/).filter((p) => p !== "");
  return parts.map((p) => {
    if (!/^\d+$/.test(p) || Number(p) === 0) throw new TypeError(`"${p}" is not a cell id (a positive integer)`);
    return Number(p);
  });
}

export interface FormValues {
  volume: string;
  layer: string;
  scope: string;
  z0: string;
  z1: string;
  cells: string;
  reviewer: string;
  fixer: string;
  due: string;
  note: string;
}

/** The POST body of a new assignment from the form's raw values (only the fields its scope uses). */
export function assignmentBody(v: FormValues): NewAssignment {
  const scope = v.scope as Scope;
  if (!["slices", "cells", "volume"].includes(scope)) throw new TypeError(`unknown scope "${v.scope}"`);
  const body: NewAssignment = { volume: Number(v.volume), layer: v.layer, scope, reviewer: v.reviewer, fixer: v.fixer };
  if (scope === "slices") {
    const z0 = Number(v.z0);
    const z1 = Number(v.z1);
    if (!Number.isInteger(z0) || !Number.isInteger(z1) || z1 <= z0) throw new TypeError(`slice range ${v.z0}–${v.z1} is empty`);
    body.z0 = z0;
    body.z1 = z1;
  } else if (scope === "cells") {
    body.cells = parseCellIds(v.cells);
    if (body.cells.length === 0) throw new TypeError("list at least one cell id");
  }
  if (v.due !== "") body.due = v.due;
  if (v.note.trim() !== "") body.note = v.note.trim();
  return body;
}

/** A JSON value as text: scalars as themselves, objects and arrays as JSON. */
function jsonText(v: unknown): string {
  switch (typeof v) {
    case "string":
      return v;
    case "number":
    case "boolean":
    case "bigint":
      return String(v);
    default:
      return JSON.stringify(v) ?? "";
  }
}

/** One line for an audit row's detail: "z 3 · value 2 · comment: fix the edge". */
export function describeDetail(detail: unknown): string {
  if (detail === null || detail === undefined) return "";
  if (typeof detail !== "object") return jsonText(detail);
  const named = "class" in detail || "cell" in detail; // then the raw label value says nothing more
  return Object.entries(detail as Record<string, unknown>)
    .filter(([k, v]) => k !== "uuid" && !(named && k === "value") && v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k.replace(/_/g, " ")} ${jsonText(v)}`)
    .join(" · ");
}

/** Rows whose actor, action, layer or detail contains `needle` (case-insensitive). */
export function filterAudit(rows: readonly AuditRow[], needle: string): AuditRow[] {
  const n = needle.trim().toLowerCase();
  if (n === "") return [...rows];
  return rows.filter((r) => [r.actor ?? "", r.action, r.layer ?? "", describeDetail(r.detail)].some((s) => s.toLowerCase().includes(n)));
}
