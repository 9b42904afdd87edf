import { describe, expect, it } from "vitest";
import { decimate, rasterizeBrush, rasterizePolygon } from "./brush";
import { crossSection, maskCount, maskHas } from "./mask";

describe("rasterizeBrush", () => {
  it("paints a disc of voxels whose centres are within the radius", () => {
    const m = rasterizeBrush([[10, 10]], 2, 100, 100);
    expect(maskHas(m, 10, 10)).toBe(true);
    expect(maskHas(m, 12, 10)).toBe(true);
    expect(maskHas(m, 12, 12)).toBe(false);
    // Lattice points with r^2 + c^2 <= 4.
    expect(maskCount(m)).toBe(13);
  });

  it("paints a single voxel at radius one half", () => {
    expect(maskCount(rasterizeBrush([[3, 4]], 0.5, 10, 10))).toBe(1);
  });

  it("covers the whole segment between points", () => {
    const m = rasterizeBrush(
      [
        [5, 0],
        [5, 20],
      ],
      1,
      50,
      50,
    );
    for (let c = 0; c <= 20; c++) expect(maskHas(m, 5, c)).toBe(true);
    expect(maskHas(m, 7, 10)).toBe(false);
    // Three rows of 21 plus the round cap at col 21 (the one at col -1 is clipped).
    expect(maskCount(m)).toBe(21 * 3 + 1);
  });

  it("clips to the plane", () => {
    const m = rasterizeBrush([[0, 0]], 3, 10, 10);
    expect(m.r0).toBe(0);
    expect(m.c0).toBe(0);
    expect(maskHas(m, -1, 0)).toBe(false);
    expect(maskCount(rasterizeBrush([[-50, -50]], 3, 10, 10))).toBe(0);
  });

  it("refuses a negative radius", () => {
    expect(() => rasterizeBrush([[1, 1]], -1, 5, 5)).toThrow(/radius/);
  });
});

describe("rasterizePolygon", () => {
  it("fills a square including its boundary", () => {
    const m = rasterizePolygon(
      [
        [2, 2],
        [2, 6],
        [6, 6],
        [6, 2],
      ],
      20,
      20,
    );
    expect(maskCount(m)).toBe(25);
    expect(maskHas(m, 4, 4)).toBe(true);
    expect(maskHas(m, 7, 4)).toBe(false);
  });

  it("leaves the notch of a concave polygon empty", () => {
    // A "U": outer square with a notch cut from the top middle.
    const u: Array<[number, number]> = [
      [0, 0],
      [0, 3],
      [6, 3],
      [6, 6],
      [0, 6],
      [0, 9],
      [9, 9],
      [9, 0],
    ];
    const m = rasterizePolygon(u, 20, 20);
    expect(maskHas(m, 3, 4)).toBe(false);
    expect(maskHas(m, 3, 1)).toBe(true);
    expect(maskHas(m, 8, 4)).toBe(true);
  });
});

describe("crossSection", () => {
  const m = rasterizeBrush(
    [
      [10, 5],
      [10, 15],
    ],
    1,
    100,
    100,
  );

  it("gives the row of an XY stroke seen in the XZ view at that y", () => {
    const xz = crossSection(m, "z", 4, "y", 10)!;
    expect(xz.rows).toBe(1);
    expect(xz.r0).toBe(4);
    expect(xz.c0).toBe(4);
    expect(maskCount(xz)).toBe(13);
  });

  it("gives the column of an XY stroke seen in the YZ view at that x", () => {
    const yz = crossSection(m, "z", 4, "x", 8)!;
    expect(yz.r0).toBe(4);
    expect(yz.c0).toBe(9);
    expect(maskCount(yz)).toBe(3);
  });

  it("is empty where the planes do not meet the stroke", () => {
    expect(crossSection(m, "z", 4, "y", 50)).toBeNull();
    expect(crossSection(m, "z", 4, "z", 4)).toBeNull();
  });
});

describe("decimate", () => {
  it("keeps points at least minStep apart and always the last one", () => {
    const pts: Array<[number, number]> = [
      [0, 0],
      [0, 0.4],
      [0, 1],
      [0, 1.2],
      [0, 3],
      [0, 3.1],
    ];
    expect(decimate(pts, 1)).toEqual([
      [0, 0],
      [0, 1],
      [0, 3],
      [0, 3.1],
    ]);
  });
});
