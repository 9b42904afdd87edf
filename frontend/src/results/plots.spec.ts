import { describe, expect, it } from "vitest";
import { distribution, exclusiveVolumes, meanShareBars, organelleBars, withAlpha } from "./plots";
import type { CellTable } from "./results_api";

const table: CellTable = {
  columns: ["cell_id", "nucleus_volume_um3", "nucleolus_volume_um3", "nucleus_pct_of_cell", "nucleolus_pct_of_cell"].map(
    (name) => ({ name, unit: "", description: "" }),
  ),
  rows: [
    [2, 10, 3, 20, 6],
    [1, 8, 0, 16, 0],
  ],
};
const classes = ["nucleus", "nucleolus"];
const hierarchy = { nucleolus: "nucleus" };
const colors = { nucleus: "#ffd400", nucleolus: "#ff2020" };

describe("organelle bars", () => {
  it("stacks the nucleus without its nucleoli so no voxel counts twice", () => {
    const parts = exclusiveVolumes(table, classes, hierarchy, "um3");
    expect(parts.get("nucleus")).toEqual([7, 8]);
    expect(parts.get("nucleolus")).toEqual([3, 0]);
  });

  it("draws one stacked bar per cell in id order, one trace per class in its colour", () => {
    const fig = organelleBars(table, classes, colors, hierarchy, "pct");
    expect(fig.layout.barmode).toBe("stack");
    expect(fig.data.map((t) => t.type)).toEqual(["bar", "bar"]);
    expect(fig.data[0]!.x).toEqual(["cell 1", "cell 2"]);
    expect(fig.data[0]!.y).toEqual([16, 14]);
    expect(fig.data[1]!.y).toEqual([0, 6]);
    expect((fig.data[1]!.marker as { color: string }).color).toBe("#ff2020");
    expect(fig.data[0]!.name).toContain("without nucleolus");
  });
});

describe("distribution", () => {
  it("draws one box per volume with every cell as a point, leaving out values that do not apply", () => {
    const fig = distribution(
      [
        { name: "Bx1", values: [0.9, null, 0.8], cellIds: [1, 2, 3] },
        { name: "Bx2", values: [0.7], cellIds: [5] },
      ],
      "Nucleus solidity",
      "solidity",
    );
    expect(fig.data.map((t) => t.name)).toEqual(["Bx1", "Bx2"]);
    expect(fig.data[0]!.y).toEqual([0.9, 0.8]);
    expect(fig.data[0]!.customdata).toEqual([1, 3]);
    expect(fig.data[0]!.boxpoints).toBe("all");
  });

  it("fills each box with its group's colour, translucent", () => {
    const fig = distribution([{ name: "Bx1", values: [1], cellIds: [1], color: "#ff9f43" }], "t", "y");
    expect(fig.data[0]!.fillcolor).toBe(withAlpha("#ff9f43", 0.12));
    expect(withAlpha("#ff9f43", 0.12)).toBe("rgba(255,159,67,0.12)");
  });
});

describe("mean share bars", () => {
  it("averages each class's exclusive share over the cells of each volume", () => {
    const fig = meanShareBars([{ name: "Bx1", table }], classes, colors, hierarchy);
    expect(fig.data[0]!.y).toEqual([15]);
    expect(fig.data[1]!.y).toEqual([3]);
  });
});
