import { describe, expect, it } from "vitest";
import type { LevelInfo, Zyx } from "../api/types";
import { indexAtLevel, planeDims, planeOf, planeToVolume, volumeToPlane } from "./geometry";
import { selectLevel, snappedRect, visibleTiles } from "./pyramid";
import { formatLength, scaleBar } from "./scale_bar";
import { fitPlane, panBy, planeToScreen, screenToPlane, zoomAround } from "./view_transform";

const shape: Zyx = [10, 1000, 600];
const levels: LevelInfo[] = [0, 1, 2].map((l) => ({
  level: l,
  shape: [10, Math.ceil(1000 / 2 ** l), Math.ceil(600 / 2 ** l)] as Zyx,
  downsample: [1, 2 ** l, 2 ** l] as Zyx,
}));

describe("geometry", () => {
  it("maps each plane to the documented rows and cols", () => {
    expect(planeDims("z")).toEqual([1, 2]);
    expect(planeDims("y")).toEqual([0, 2]);
    expect(planeDims("x")).toEqual([0, 1]);
    expect(planeOf(shape, "y")).toEqual([10, 600]);
  });

  it("round-trips plane and volume coordinates on every axis", () => {
    const p: Zyx = [3, 40, 500];
    for (const axis of ["z", "y", "x"] as const) {
      const { index, row, col } = volumeToPlane(axis, p);
      expect(planeToVolume(axis, index, row, col)).toEqual(p);
    }
  });

  it("expresses the slice index in the level's voxels, z never downsampled", () => {
    expect(indexAtLevel("z", 7, levels[2]!)).toBe(7);
    expect(indexAtLevel("y", 7, levels[1]!)).toBe(3);
    expect(indexAtLevel("x", 9, levels[2]!)).toBe(2);
  });
});

describe("view transform", () => {
  const vp = { width: 800, height: 600, rowNm: 5, colNm: 5 };

  it("inverts planeToScreen", () => {
    const v = { centerRow: 100, centerCol: 50, pxPerNm: 0.3 };
    const [sx, sy] = planeToScreen(v, vp, 123.5, 77.25);
    const [r, c] = screenToPlane(v, vp, sx, sy);
    expect(r).toBeCloseTo(123.5);
    expect(c).toBeCloseTo(77.25);
  });

  it("keeps the point under the cursor fixed while zooming", () => {
    const v = { centerRow: 100, centerCol: 50, pxPerNm: 0.3 };
    const before = screenToPlane(v, vp, 610, 95);
    const z = zoomAround(v, vp, 610, 95, 1.7);
    expect(z.pxPerNm).toBeCloseTo(0.51);
    const after = screenToPlane(z, vp, 610, 95);
    expect(after[0]).toBeCloseTo(before[0]);
    expect(after[1]).toBeCloseTo(before[1]);
  });

  it("moves the content with the drag", () => {
    const v = { centerRow: 100, centerCol: 50, pxPerNm: 0.2 };
    const p = planeToScreen(v, vp, 10, 10);
    const moved = panBy(v, vp, 30, -12);
    const q = planeToScreen(moved, vp, 10, 10);
    expect(q[0] - p[0]).toBeCloseTo(30);
    expect(q[1] - p[1]).toBeCloseTo(-12);
  });

  it("fits an anisotropic plane inside the viewport", () => {
    const aniso = { width: 400, height: 400, rowNm: 20, colNm: 5 };
    const v = fitPlane(aniso, 10, 600);
    const [x0, y0] = planeToScreen(v, aniso, 0, 0);
    const [x1, y1] = planeToScreen(v, aniso, 10, 600);
    expect(x0).toBeGreaterThanOrEqual(0);
    expect(x1).toBeLessThanOrEqual(400);
    expect(y0).toBeGreaterThanOrEqual(0);
    expect(y1).toBeLessThanOrEqual(400);
    expect(x1 - x0).toBeCloseTo(0.95 * 400);
  });
});

describe("pyramid", () => {
  it("uses level 0 when zoomed in and coarser levels when zoomed out", () => {
    expect(selectLevel(levels, "z", 3)).toBe(0);
    expect(selectLevel(levels, "z", 1)).toBe(0);
    expect(selectLevel(levels, "z", 0.5)).toBe(1);
    expect(selectLevel(levels, "z", 0.3)).toBe(1);
    expect(selectLevel(levels, "z", 0.2)).toBe(2);
    expect(selectLevel(levels, "y", 0.01)).toBe(2);
  });

  it("lists only tiles intersecting the viewport, clipped to the plane", () => {
    const vp = { width: 300, height: 300, rowNm: 1, colNm: 1 };
    const v = { centerRow: 300, centerCol: 300, pxPerNm: 1 };
    const tiles = visibleTiles(v, vp, levels[0]!, "z", 256);
    expect(tiles.map((t) => [t.ty, t.tx])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ]);
    const edge = tiles[3]!;
    expect(edge.c1).toBe(512);
    const far = visibleTiles({ ...v, centerCol: 590 }, vp, levels[0]!, "z", 256);
    expect(Math.max(...far.map((t) => t.tx))).toBe(2);
    expect(far.find((t) => t.tx === 2)!.c1).toBe(600);
  });

  it("scales tile extents by the level's downsampling", () => {
    const vp = { width: 2000, height: 2000, rowNm: 1, colNm: 1 };
    const v = { centerRow: 500, centerCol: 300, pxPerNm: 1 };
    const tiles = visibleTiles(v, vp, levels[1]!, "z", 256);
    expect(tiles).toHaveLength(4);
    expect(tiles[3]!.r1).toBe(1000);
    expect(tiles[3]!.c0).toBe(512);
  });

  it("snaps neighbouring tiles to a shared pixel edge so there is no seam", () => {
    const vp = { width: 777, height: 555, rowNm: 3, colNm: 3 };
    const v = { centerRow: 123.37, centerCol: 311.9, pxPerNm: 0.4137 };
    const a = snappedRect(v, vp, 1.5, 0, 256, 0, 256);
    const b = snappedRect(v, vp, 1.5, 0, 256, 256, 512);
    const c = snappedRect(v, vp, 1.5, 256, 512, 0, 256);
    expect(a.x + a.w).toBe(b.x);
    expect(a.y + a.h).toBe(c.y);
  });
});

describe("scale bar", () => {
  it("picks the longest 1-2-5 length that fits", () => {
    const bar = scaleBar(0.1, 120);
    expect(bar.nm).toBe(1000);
    expect(bar.label).toBe("1 µm");
    expect(bar.px).toBeLessThanOrEqual(120);
    expect(scaleBar(0.1, 60).nm).toBe(500);
    expect(scaleBar(0.5, 120).nm).toBe(200);
  });
  it("formats nm, µm and mm", () => {
    expect(formatLength(50)).toBe("50 nm");
    expect(formatLength(2500)).toBe("2.5 µm");
    expect(formatLength(3e6)).toBe("3 mm");
  });
});
