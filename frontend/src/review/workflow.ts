/**
 * The review state machine as the viewer sees it: which assignment-level actions and which
 * item decisions a user of a given role may take now, stepping through the items, and the
 * progress line. Pure: the server is the authority, this only decides which buttons show.
 */
import { roleAtLeast, type Role, type Zyx } from "../api/types";
import type { AssignmentState, ItemDecision, ItemState, Progress, ReviewItem, Scope, TransitionAction } from "./api";

interface Rule {
  from: readonly AssignmentState[];
  to: AssignmentState;
  role: Role;
}

/** open → in_review → changes_requested ↔ fixed → approved; approved → in_review (reopen). */
export const TRANSITIONS: Record<TransitionAction, Rule> = {
  start: { from: ["open"], to: "in_review", role: "reviewer" },
  request_changes: { from: ["in_review", "fixed"], to: "changes_requested", role: "reviewer" },
  mark_fixed: { from: ["changes_requested"], to: "fixed", role: "annotator" },
  approve: { from: ["in_review", "fixed"], to: "approved", role: "reviewer" },
  reopen: { from: ["approved"], to: "in_review", role: "manager" },
};

export const ACTION_LABELS: Record<TransitionAction, string> = {
  start: "Start review",
  request_changes: "Send back",
  mark_fixed: "Mark fixed",
  approve: "Approve all",
  reopen: "Reopen",
};

export const STATE_LABELS: Record<AssignmentState, string> = {
  open: "open",
  in_review: "in review",
  changes_requested: "changes requested",
  fixed: "fixed",
  approved: "approved",
};

/** Assignment-level actions `role` may take from `state`, in the order of TRANSITIONS. */
export function assignmentActions(state: AssignmentState, role: Role): TransitionAction[] {
  return (Object.keys(TRANSITIONS) as TransitionAction[]).filter((a) => {
    const rule = TRANSITIONS[a];
    return rule.from.includes(state) && roleAtLeast(role, rule.role);
  });
}

/** Why approving the whole assignment would be refused now, or null when it would not. */
export function approveBlocker(items: readonly Pick<ReviewItem, "state">[]): string | null {
  const n = items.filter((i) => i.state === "changes_requested").length;
  return n === 0 ? null : `${n} item${n === 1 ? "" : "s"} still need${n === 1 ? "s" : ""} changes`;
}

/**
 * Item decisions open to `role` on an item in `item` state while the assignment is in
 * `assignment` state. Reviewers decide while the review runs (in review, changes requested
 * or fixed); annotators mark an item fixed once changes were requested on it.
 */
export function itemDecisions(item: ItemState, assignment: AssignmentState, role: Role): ItemDecision[] {
  const out: ItemDecision[] = [];
  const reviewing = assignment === "in_review" || assignment === "changes_requested" || assignment === "fixed";
  if (reviewing && roleAtLeast(role, "reviewer")) {
    if (item !== "approved") out.push("approve");
    if (item !== "changes_requested") out.push("request_changes");
  }
  if (item === "changes_requested" && assignment !== "approved" && roleAtLeast(role, "annotator")) out.push("fixed");
  return out;
}

/**
 * Index of the item `delta` steps from `current` (j: +1, k: -1), clamped to the list; with
 * `skipDecided` it skips approved items so a reviewer walks only what is left. Returns
 * `current` when there is nowhere to go; -1 for an empty list.
 */
export function stepItem(
  items: readonly Pick<ReviewItem, "state">[],
  current: number,
  delta: number,
  { skipDecided = false }: { skipDecided?: boolean } = {},
): number {
  if (items.length === 0) return -1;
  if (delta === 0) return Math.min(items.length - 1, Math.max(0, current));
  const dir = delta > 0 ? 1 : -1;
  let steps = Math.abs(delta);
  let i = current < 0 ? (dir > 0 ? -1 : items.length) : current;
  let found = current;
  while (steps > 0) {
    i += dir;
    if (i < 0 || i >= items.length) break;
    if (skipDecided && items[i]!.state === "approved") continue;
    found = i;
    steps--;
  }
  return found < 0 ? -1 : Math.min(items.length - 1, found);
}

/**
 * Index of the item the viewer shows at `focus`: the slice item of focus z, or for cell
 * items the one whose centre is nearest (so moving by hand keeps the panel in step).
 */
export function itemAtFocus(items: readonly Pick<ReviewItem, "kind" | "key" | "center">[], focus: Zyx): number {
  if (items.length === 0) return -1;
  if (items[0]!.kind === "slice") return items.findIndex((i) => i.key === focus[0]);
  let best = -1;
  let bestD = Infinity;
  items.forEach((it, i) => {
    const d = (it.center[0] - focus[0]) ** 2 + (it.center[1] - focus[1]) ** 2 + (it.center[2] - focus[2]) ** 2;
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  });
  return best;
}

/** "37/120 slices approved" (cells for a cell-scope assignment). */
export function progressText(progress: Progress, scope: Scope): string {
  const noun = scope === "cells" ? "cells" : "slices";
  return `${progress.approved}/${progress.total} ${noun} approved`;
}

/** Progress counted from the items (the panel updates it before the server answers). */
export function countProgress(items: readonly Pick<ReviewItem, "state">[]): Progress {
  const p: Progress = { approved: 0, changes_requested: 0, fixed: 0, pending: 0, total: items.length };
  for (const it of items) p[it.state]++;
  return p;
}

/** Label of one item: "z 12" or "cell 7". */
export function itemLabel(item: Pick<ReviewItem, "kind" | "key">): string {
  return item.kind === "slice" ? `z ${item.key}` : `cell ${item.key}`;
}
