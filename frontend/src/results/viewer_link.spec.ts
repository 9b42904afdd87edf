import { describe, expect, it } from "vitest";
import { parseUrlState } from "../viewer/url_state";
import { cellViewerUrl } from "./viewer_link";

describe("cellViewerUrl", () => {
  it("opens the viewer on the rounded centroid with a zoom that fits the cell", () => {
    const url = cellViewerUrl(7, [10.4, 50.6, 20.2], 33510, [4, 4, 4], [48, 320, 320]);
    expect(url.startsWith("/volumes/7/#")).toBe(true);
    const state = parseUrlState(url.slice(url.indexOf("#")));
    expect(state.focus).toEqual([10, 51, 20]);
    // 33510 voxels of 4 nm: a ball of radius 20 voxels = 80 nm, diameter 160 nm.
    expect(state.zoom! * 160 * 1.3).toBeCloseTo(520, 0);
  });

  it("clamps a centroid outside the volume into it", () => {
    const url = cellViewerUrl(1, [-3, 400, 5], 10, [4, 4, 4], [48, 320, 320]);
    expect(parseUrlState(url.slice(url.indexOf("#"))).focus).toEqual([0, 319, 5]);
  });
});
