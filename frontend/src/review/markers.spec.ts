import { describe, expect, it } from "vitest";
import { markersOnSlice, reviewIdFrom, threadNumbers } from "./markers";

const comments = [
  { id: 1, z: 2, y: 30, x: 40, resolved: false },
  { id: 2, z: 5, y: 30, x: 41, resolved: false },
  { id: 3, z: 2, y: 7, x: 8, resolved: true },
];

describe("comment markers", () => {
  it("puts a comment on the XY slice of its z at its (y, x) voxel centre", () => {
    const m = markersOnSlice(comments, "z", 2);
    expect(m.map((x) => x.item.id)).toEqual([1]);
    expect([m[0]!.row, m[0]!.col]).toEqual([30.5, 40.5]);
  });

  it("puts a comment on the XZ slice of its y with rows z and columns x", () => {
    const m = markersOnSlice(comments, "y", 30);
    expect(m.map((x) => [x.item.id, x.row, x.col])).toEqual([[1, 2.5, 40.5], [2, 5.5, 41.5]]);
  });

  it("hides resolved comments unless asked", () => {
    expect(markersOnSlice(comments, "x", 8)).toEqual([]);
    expect(markersOnSlice(comments, "x", 8, { showResolved: true }).map((m) => m.item.id)).toEqual([3]);
  });

  it("reads the review id from the page URL and ignores junk", () => {
    expect(reviewIdFrom("?review=12")).toBe(12);
    expect(reviewIdFrom("?review=12abc")).toBeNull();
    expect(reviewIdFrom("")).toBeNull();
  });
});

describe("threadNumbers", () => {
  it("numbers threads 1..n by when they started, whatever their order or state", () => {
    const numbers = threadNumbers([{ id: 9 }, { id: 4 }, { id: 12 }]);
    expect([numbers.get(4), numbers.get(9), numbers.get(12)]).toEqual([1, 2, 3]);
    expect(new Set(numbers.values()).size).toBe(3);
  });
});
