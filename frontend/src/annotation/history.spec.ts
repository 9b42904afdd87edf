import { describe, expect, it, vi } from "vitest";
import { StrokeHistory } from "./history";

describe("StrokeHistory", () => {
  it("undoes the most recent strokes first", () => {
    const h = new StrokeHistory();
    h.add("a", "brush");
    h.add("b", "brush");
    h.acknowledge("a", 1);
    expect(h.undo()).toBe("b");
    expect(h.undo()).toBe("a");
    expect(h.undo()).toBeNull();
    expect(h.canUndo).toBe(false);
  });

  it("redoes in reverse order of undo", () => {
    const h = new StrokeHistory();
    h.add("a", "brush");
    h.add("b", "brush");
    h.undo();
    h.undo();
    expect(h.redo()).toBe("a");
    expect(h.redo()).toBe("b");
    expect(h.redo()).toBeNull();
    expect(h.get("b")!.state).toBe("applied");
  });

  it("drops the redo chain when a new stroke is made", () => {
    const h = new StrokeHistory();
    h.add("a", "brush");
    h.undo();
    h.add("b", "brush");
    expect(h.canRedo).toBe(false);
    expect(h.undo()).toBe("b");
    expect(h.undo()).toBeNull();
  });

  it("skips strokes the server rejected", () => {
    const h = new StrokeHistory();
    h.add("a", "brush");
    h.add("b", "brush");
    h.fail("b");
    expect(h.undo()).toBe("a");
  });

  it("records the acknowledged version and signals changes", () => {
    const h = new StrokeHistory();
    const fn = vi.fn();
    h.onChange(fn);
    h.add("a", "fill");
    h.acknowledge("a", 42);
    expect(h.get("a")).toMatchObject({ state: "applied", version: 42 });
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it("keeps at most `limit` entries", () => {
    const h = new StrokeHistory(3);
    for (const u of ["a", "b", "c", "d"]) h.add(u, "brush");
    expect(h.entries.map((e) => e.uuid)).toEqual(["b", "c", "d"]);
  });
});

describe("StrokeHistory.restore (undo across a reload)", () => {
  it("puts saved strokes under the new ones, oldest first, so undo goes on into them", () => {
    const h = new StrokeHistory();
    h.add("new", "paint z 3", 300);
    const added = h.restore([
      { uuid: "b", label: "paint z 2", version: 5, time: 200 },
      { uuid: "a", label: "paint z 1", version: 4, time: 100 },
      { uuid: "new", label: "dup", version: 9, time: 300 },
    ]);
    expect(added).toBe(2);
    expect(h.entries.map((e) => e.uuid)).toEqual(["a", "b", "new"]);
    expect(h.undo()).toBe("new");
    expect(h.undo()).toBe("b");
    expect(h.undo()).toBe("a");
    expect(h.undo()).toBeNull();
    expect(h.redo()).toBe("a");
  });

  it("keeps the limit, dropping the oldest", () => {
    const h = new StrokeHistory(2);
    h.restore([1, 2, 3].map((i) => ({ uuid: String(i), label: "x", version: i, time: i })));
    expect(h.entries.map((e) => e.uuid)).toEqual(["2", "3"]);
  });
});
