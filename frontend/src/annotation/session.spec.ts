import { describe, expect, it } from "vitest";
import type { ClientMessage, Stroke, VolumeInfo } from "../api/types";
import { AnnotationSession } from "./session";

const info: VolumeInfo = {
  id: 1,
  name: "v",
  project: { id: 1, name: "p" },
  shape: [4, 64, 64],
  voxel_size_nm: [10, 5, 5],
  dtype: "uint8",
  tile_size: 256,
  levels: [{ level: 0, shape: [4, 64, 64], downsample: [1, 1, 1] }],
  window: [0, 255],
  role: "annotator",
  layers: [
    { name: "manual", kind: "labels" },
    { name: "cells", kind: "instances" },
  ],
  classes: [{ id: 1, name: "nucleus", value: 2, color: "#ffff00", kind: "semantic" }],
  complete_slices: [["z", 1]],
};

function stroke(uuid: string, extra: Partial<Stroke> = {}): Stroke {
  return {
    uuid,
    layer: "manual",
    axis: "z",
    index: 2,
    points: [
      [10, 10],
      [10, 20],
    ],
    radius: 2,
    value: 2,
    mode: "paint",
    ...extra,
  };
}

function make() {
  const sent: ClientMessage[] = [];
  const s = new AnnotationSession(info, { send: (m) => sent.push(m) });
  return { s, sent };
}

describe("AnnotationSession", () => {
  it("sends a stroke and previews it in the class colour at once", () => {
    const { s, sent } = make();
    s.submit(stroke("a"), "brush");
    expect(sent).toEqual([{ type: "stroke", stroke: stroke("a") }]);
    const shown = s.previewsIn("z", 2, "manual");
    expect(shown).toHaveLength(1);
    expect(shown[0]!.preview.rgb).toEqual([255, 255, 0]);
    expect(s.previewsIn("z", 3, "manual")).toHaveLength(0);
    expect(s.previewsIn("z", 2, "cells")).toHaveLength(0);
  });

  it("shows a stroke's cross-section in the orthogonal views", () => {
    const { s } = make();
    s.submit(stroke("a"), "brush");
    const xz = s.previewsIn("y", 10, "manual");
    expect(xz).toHaveLength(1);
    expect(xz[0]!.mask.r0).toBe(2);
    expect(s.previewsIn("y", 40, "manual")).toHaveLength(0);
  });

  it("raises the stroke's layer version on ack", () => {
    const { s } = make();
    s.submit(stroke("a"), "brush");
    s.handle({ type: "ack", uuid: "a", version: 7 });
    expect(s.versions.value).toEqual({ manual: 7, cells: 0 });
    expect(s.history.get("a")!.state).toBe("applied");
    expect(s.previews.get("a")!.ackVersion).toBe(7);
  });

  it("draws other users' strokes and ignores echoes of its own", () => {
    const { s } = make();
    s.submit(stroke("mine"), "brush");
    s.handle({ type: "stroke", stroke: { ...stroke("mine"), user: "me" }, version: 3 });
    s.handle({ type: "stroke", stroke: { ...stroke("theirs", { layer: "cells", value: 9 }), user: "bob" }, version: 4 });
    expect(s.previews.get("theirs")!.remote).toBe(true);
    expect(s.previews.get("mine")!.remote).toBe(false);
    expect(s.versions.value.cells).toBe(4);
    expect(s.history.entries.map((e) => e.uuid)).toEqual(["mine"]);
  });

  it("undoes its own stroke: removes the preview and asks the server", () => {
    const { s, sent } = make();
    s.submit(stroke("a"), "brush");
    s.handle({ type: "ack", uuid: "a", version: 1 });
    expect(s.undo()).toBe("a");
    expect(s.previews.has("a")).toBe(false);
    expect(sent[sent.length - 1]).toEqual({ type: "undo", uuid: "a" });
    s.handle({ type: "undo", uuid: "a", version: 2, user: "me" });
    expect(s.versions.value.manual).toBe(2);
    expect(s.redo()).toBe("a");
    expect(sent[sent.length - 1]).toEqual({ type: "redo", uuid: "a" });
  });

  it("drops a rejected stroke and reports the error", () => {
    const { s } = make();
    const notes: string[] = [];
    s.notices.add((text) => notes.push(text));
    s.submit(stroke("bad"), "brush");
    s.handle({ type: "error", uuid: "bad", code: "forbidden", message: "viewers cannot paint" });
    expect(s.previews.has("bad")).toBe(false);
    expect(s.history.get("bad")!.state).toBe("failed");
    expect(notes[0]).toMatch(/viewers cannot paint/);
  });

  it("tracks complete slices from the server and from the user", () => {
    const { s, sent } = make();
    expect(s.isComplete("z", 1)).toBe(true);
    s.setComplete("z", 2, true);
    expect(s.isComplete("z", 2)).toBe(true);
    expect(sent[0]).toEqual({ type: "mark_complete", axis: "z", index: 2, complete: true });
    s.handle({ type: "mark_complete", axis: "z", index: 1, complete: false });
    expect(s.isComplete("z", 1)).toBe(false);
  });

  it("takes the role and the starting version from hello", () => {
    const { s } = make();
    s.handle({ type: "hello", user: "ann", role: "viewer", version: 12 });
    expect(s.role.value).toBe("viewer");
    expect(s.versions.value).toEqual({ manual: 12, cells: 12 });
  });

  it("keeps the layer versions when hello carries none", () => {
    const { s } = make();
    s.handle({ type: "ack", uuid: "x", version: 5 });
    s.handle({ type: "hello", user: "ann", role: "annotator" } as never);
    expect(s.versions.value).toEqual({ manual: 5, cells: 5 });
  });

  it("has no preview mask for flood fill (the server decides the region)", () => {
    const { s } = make();
    s.submit(stroke("f", { mode: "fill", points: [[5, 5]] }), "fill");
    expect(s.previews.get("f")!.mask).toBeNull();
    expect(s.previewsIn("z", 2, "manual")).toHaveLength(0);
  });
});
