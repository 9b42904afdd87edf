import { describe, expect, it } from "vitest";
import type { CellTable } from "./results_api";
import { defaultColumns, filterRows, formatValue, nextSort, parseFilter, sortRows } from "./table_model";

const table: CellTable = {
  columns: [
    { name: "cell_id", unit: "id", description: "" },
    { name: "cell_volume_um3", unit: "µm³", description: "" },
    { name: "nucleus_solidity", unit: "1", description: "" },
    { name: "cell_touches_border", unit: "bool", description: "" },
  ],
  rows: [
    [1, 2.5, 0.95, false],
    [2, 1.0, null, true],
    [3, 4.0, 0.7, false],
    [4, 1.0, 0.99, true],
  ],
};

describe("parseFilter and filterRows", () => {
  it("keeps the rows that satisfy every condition joined by and", () => {
    const f = parseFilter("nucleus_solidity > 0.9 and cell_touches_border = false", table.columns);
    expect(f.ok).toBe(true);
    if (f.ok) expect(filterRows(table, f.conditions)).toEqual([0]);
  });

  it("lets a null value pass only a != condition", () => {
    const f = parseFilter("nucleus_solidity != 0.7", table.columns);
    if (!f.ok) throw new Error(f.error);
    expect(filterRows(table, f.conditions)).toEqual([0, 1, 3]);
  });

  it("names an unknown column and an unreadable condition", () => {
    const unknown = parseFilter("golgi_volume > 1", table.columns);
    expect(unknown.ok ? "" : unknown.error).toContain("golgi_volume");
    const garbled = parseFilter("cell_volume_um3 >> 1", table.columns);
    expect(garbled.ok).toBe(false);
  });

  it("keeps every row for an empty filter", () => {
    const f = parseFilter("   ", table.columns);
    expect(f.ok && filterRows(table, f.conditions)).toEqual([0, 1, 2, 3]);
  });
});

describe("sortRows and nextSort", () => {
  it("sorts by a column in both directions with nulls last and ties in their order", () => {
    const all = [0, 1, 2, 3];
    expect(sortRows(table, all, { column: "nucleus_solidity", dir: "asc" })).toEqual([2, 0, 3, 1]);
    expect(sortRows(table, all, { column: "nucleus_solidity", dir: "desc" })).toEqual([3, 0, 2, 1]);
    expect(sortRows(table, all, { column: "cell_volume_um3", dir: "asc" })).toEqual([1, 3, 0, 2]);
  });

  it("flips the direction on the same column and starts ascending on a new one", () => {
    const first = nextSort(null, "cell_id");
    expect(first).toEqual({ column: "cell_id", dir: "asc" });
    expect(nextSort(first, "cell_id").dir).toBe("desc");
    expect(nextSort(first, "cell_volume_um3").dir).toBe("asc");
  });
});

describe("defaultColumns and formatValue", () => {
  it("shows only columns the table has, id first", () => {
    expect(defaultColumns(table.columns, ["nucleus"])).toEqual([
      "cell_id",
      "cell_volume_um3",
      "nucleus_solidity",
      "cell_touches_border",
    ]);
  });

  it("formats values compactly and marks missing ones", () => {
    expect(formatValue(null)).toBe("—");
    expect(formatValue(12, "id")).toBe("12");
    expect(formatValue(0.123456)).toBe("0.123");
    expect(formatValue(2.5)).toBe("2.5");
    expect(formatValue(true)).toBe("yes");
  });
});
