import { describe, expect, it } from "vitest";
import type { AssignmentState, ItemState, ReviewItem } from "./api";
import {
  approveBlocker,
  assignmentActions,
  countProgress,
  itemAtFocus,
  itemDecisions,
  progressText,
  stepItem,
  TRANSITIONS,
} from "./workflow";

const items = (states: ItemState[]): ReviewItem[] =>
  states.map((state, i) => ({ kind: "slice", key: 10 + i, state, decided_by: null, decided_at: null, center: [10 + i, 50, 60] }));

describe("assignment actions", () => {
  it("lets a reviewer start an open assignment but not an annotator", () => {
    expect(assignmentActions("open", "reviewer")).toEqual(["start"]);
    expect(assignmentActions("open", "annotator")).toEqual([]);
  });

  it("offers request changes and approve while in review, to reviewers and managers only", () => {
    expect(assignmentActions("in_review", "reviewer")).toEqual(["request_changes", "approve"]);
    expect(assignmentActions("in_review", "manager")).toEqual(["request_changes", "approve"]);
    expect(assignmentActions("in_review", "annotator")).toEqual([]);
  });

  it("lets an annotator mark requested changes fixed, and the reviewer send them back or approve", () => {
    expect(assignmentActions("changes_requested", "annotator")).toEqual(["mark_fixed"]);
    expect(assignmentActions("fixed", "annotator")).toEqual([]);
    expect(assignmentActions("fixed", "reviewer")).toEqual(["request_changes", "approve"]);
  });

  it("lets only a manager reopen an approved assignment", () => {
    expect(assignmentActions("approved", "reviewer")).toEqual([]);
    expect(assignmentActions("approved", "manager")).toEqual(["reopen"]);
  });

  it("gives a viewer no action in any state", () => {
    for (const s of Object.keys({ open: 1, in_review: 1, changes_requested: 1, fixed: 1, approved: 1 }) as AssignmentState[]) {
      expect(assignmentActions(s, "viewer")).toEqual([]);
    }
  });

  it("never offers an action whose rule does not start from the current state", () => {
    for (const [action, rule] of Object.entries(TRANSITIONS)) {
      for (const s of ["open", "in_review", "changes_requested", "fixed", "approved"] as AssignmentState[]) {
        const offered = assignmentActions(s, "manager").includes(action as keyof typeof TRANSITIONS);
        expect(offered).toBe(rule.from.includes(s));
      }
    }
  });
});

describe("item decisions", () => {
  it("lets a reviewer approve or send back a pending slice during the review", () => {
    expect(itemDecisions("pending", "in_review", "reviewer")).toEqual(["approve", "request_changes"]);
  });

  it("offers nothing on items before the review starts or after approval", () => {
    expect(itemDecisions("pending", "open", "manager")).toEqual([]);
    expect(itemDecisions("approved", "approved", "manager")).toEqual([]);
  });

  it("lets an annotator mark a sent-back item fixed but never approve it", () => {
    expect(itemDecisions("changes_requested", "changes_requested", "annotator")).toEqual(["fixed"]);
    expect(itemDecisions("pending", "in_review", "annotator")).toEqual([]);
  });

  it("does not offer a decision the item already has", () => {
    expect(itemDecisions("approved", "in_review", "reviewer")).toEqual(["request_changes"]);
    expect(itemDecisions("changes_requested", "in_review", "reviewer")).toEqual(["approve", "fixed"]);
  });

  it("names the items that block approving the assignment", () => {
    expect(approveBlocker(items(["approved", "pending"]))).toBeNull();
    expect(approveBlocker(items(["changes_requested", "pending", "changes_requested"]))).toBe("2 items still need changes");
  });
});

describe("stepping through items", () => {
  const list = items(["approved", "pending", "approved", "pending", "pending"]);

  it("moves one item forward and back and stops at the ends", () => {
    expect(stepItem(list, 0, 1)).toBe(1);
    expect(stepItem(list, 1, -1)).toBe(0);
    expect(stepItem(list, 0, -1)).toBe(0);
    expect(stepItem(list, 4, 1)).toBe(4);
  });

  it("skips approved items when asked", () => {
    expect(stepItem(list, 1, 1, { skipDecided: true })).toBe(3);
    expect(stepItem(list, 3, -1, { skipDecided: true })).toBe(1);
    expect(stepItem(list, 1, -1, { skipDecided: true })).toBe(1);
  });

  it("starts from the first or last item when nothing is selected", () => {
    expect(stepItem(list, -1, 1)).toBe(0);
    expect(stepItem(list, -1, -1)).toBe(4);
    expect(stepItem([], 0, 1)).toBe(-1);
  });

  it("finds the slice item under the focus, or the nearest cell", () => {
    expect(itemAtFocus(list, [12, 0, 0])).toBe(2);
    expect(itemAtFocus(list, [99, 0, 0])).toBe(-1);
    const cells: ReviewItem[] = [
      { kind: "cell", key: 3, state: "pending", decided_by: null, decided_at: null, center: [1, 10, 10] },
      { kind: "cell", key: 8, state: "pending", decided_by: null, decided_at: null, center: [5, 90, 90] },
    ];
    expect(itemAtFocus(cells, [4, 80, 85])).toBe(1);
  });
});

describe("progress", () => {
  it("counts items per state and words the approved fraction", () => {
    const p = countProgress(items(["approved", "pending", "fixed", "approved"]));
    expect(p).toEqual({ approved: 2, changes_requested: 0, fixed: 1, pending: 1, total: 4 });
    expect(progressText(p, "slices")).toBe("2/4 slices approved");
    expect(progressText(p, "cells")).toBe("2/4 cells approved");
  });
});
