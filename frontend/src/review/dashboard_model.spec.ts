import { describe, expect, it } from "vitest";
import type { AuditRow } from "./api";
import { assignmentBody, countByState, describeDetail, filterAudit, parseCellIds } from "./dashboard_model";

const form = { volume: "4", layer: "manual", scope: "slices", z0: "0", z1: "3", cells: "", reviewer: "rita", fixer: "ann", due: "", note: "" };

describe("dashboard", () => {
  it("counts assignments in every state, zero included", () => {
    const c = countByState([{ state: "open" }, { state: "open" }, { state: "approved" }]);
    expect(c).toEqual({ open: 2, in_review: 0, changes_requested: 0, fixed: 0, approved: 1 });
  });

  it("sends only the slice range for a slice assignment", () => {
    expect(assignmentBody({ ...form, cells: "5", due: "2030-01-02", note: " edges " })).toEqual({
      volume: 4, layer: "manual", scope: "slices", z0: 0, z1: 3, reviewer: "rita", fixer: "ann", due: "2030-01-02", note: "edges",
    });
  });

  it("sends the cell list for a cell assignment and nothing for the whole volume", () => {
    expect(assignmentBody({ ...form, scope: "cells", cells: "3, 7 12" }).cells).toEqual([3, 7, 12]);
    const whole = assignmentBody({ ...form, scope: "volume" });
    expect(whole.z0).toBeUndefined();
    expect(whole.cells).toBeUndefined();
  });

  it("refuses an empty slice range and a bad cell id, naming them", () => {
    expect(() => assignmentBody({ ...form, z0: "3", z1: "3" })).toThrow("3–3");
    expect(() => parseCellIds("4, x9")).toThrow('"x9"');
    expect(() => assignmentBody({ ...form, scope: "cells", cells: "" })).toThrow("at least one");
  });
});

describe("audit rows", () => {
  const rows: AuditRow[] = [
    { at: "2030-01-01T10:00:00Z", actor: "rita", action: "review.request_changes", layer: "manual", detail: { z: 2, comment: "edge" } },
    { at: "2030-01-01T10:01:00Z", actor: "ann", action: "stroke", layer: "manual", detail: { mode: "paint", value: 2 } },
  ];

  it("words a detail object as key value pairs", () => {
    expect(describeDetail({ z: 2, comment: "edge", none: null, uuid: "0a1b", cells: [] })).toBe("z 2 · comment edge");
    expect(describeDetail(null)).toBe("");
  });

  it("filters by actor, action or detail text", () => {
    expect(filterAudit(rows, "ANN").map((r) => r.actor)).toEqual(["ann"]);
    expect(filterAudit(rows, "edge").map((r) => r.actor)).toEqual(["rita"]);
    expect(filterAudit(rows, " ")).toHaveLength(2);
  });
});

describe("describeDetail of a stroke", () => {
  it("names the class painted instead of its value", () => {
    const text = describeDetail({ uuid: "u", mode: "paint", axis: "z", index: 3, value: 4, active: true, class: "mitochondria" });
    expect(text).toContain("class mitochondria");
    expect(text).not.toContain("value");
  });
});
