import { describe, expect, it } from "vitest";
import type { LabelClass } from "../api/types";
import { MAX_RADIUS, MIN_RADIUS, stepRadius, ToolState } from "./tools";

const classes: LabelClass[] = [
  { id: 1, name: "background", value: 1, color: "#202020", kind: "semantic" },
  { id: 2, name: "nucleus", value: 2, color: "#ffff00", kind: "semantic" },
  { id: 3, name: "cell", value: 0, color: "#00ffff", kind: "instance" },
];
const layers = [
  { name: "manual", kind: "labels" as const },
  { name: "cells", kind: "instances" as const },
];

describe("stepRadius", () => {
  it("grows and shrinks by at least half a voxel within bounds", () => {
    expect(stepRadius(4, 1)).toBe(4.5);
    expect(stepRadius(20, 1)).toBe(23);
    expect(stepRadius(0.5, -1)).toBe(MIN_RADIUS);
    expect(stepRadius(MAX_RADIUS, 1)).toBe(MAX_RADIUS);
  });
});

describe("ToolState", () => {
  it("paints the chosen class into the manual layer", () => {
    const t = new ToolState(classes, layers);
    expect(t.classValue.value).toBe(1);
    t.selectPaletteEntry(classes[1]!);
    expect(t.activeLayer).toBe("manual");
    expect(t.paintValue).toBe(2);
  });

  it("paints the cell id into the instance layer in instance mode", () => {
    const t = new ToolState(classes, layers);
    t.selectPaletteEntry(classes[2]!);
    t.cellId.value = 17;
    expect(t.activeLayer).toBe("cells");
    expect(t.paintValue).toBe(17);
  });

  it("erases with value 0", () => {
    const t = new ToolState(classes, layers);
    t.tool.value = "eraser";
    expect(t.paintValue).toBe(0);
  });

  it("lists semantic classes first, then cells, only if a cell layer exists", () => {
    expect(new ToolState(classes, layers).palette.map((c) => c.name)).toEqual(["background", "nucleus", "cell"]);
    expect(new ToolState(classes, [layers[0]!]).palette.map((c) => c.name)).toEqual(["background", "nucleus"]);
  });
});
