import { describe, expect, it } from "vitest";
import { formatUrlState, parseUrlState } from "./url_state";

describe("url state", () => {
  it("round-trips the focus point and zoom", () => {
    const s = { focus: [3, 120, 44] as [number, number, number], zoom: 0.25 };
    expect(parseUrlState(formatUrlState(s))).toEqual(s);
  });
  it("ignores missing or malformed values", () => {
    expect(parseUrlState("#z=1&y=2")).toEqual({});
    expect(parseUrlState("#z=a&y=2&x=3&zoom=-1")).toEqual({});
    expect(parseUrlState("")).toEqual({});
  });
});

describe("the whole view in the URL", () => {
  it("round-trips centre, hidden layers and opacities", () => {
    const s = { focus: [3, 120, 44] as [number, number, number], zoom: 0.5, center: [118.5, 60] as [number, number],
      hidden: ["prediction"], opacity: { image: 1, manual: 0.6, cells: 0.25 } };
    const hash = formatUrlState(s);
    expect(hash).toContain("hide=prediction");
    expect(hash).toContain("opacity=image:1,manual:0.6,cells:0.25");
    expect(parseUrlState(hash)).toEqual(s);
  });

  it("keeps a hand-written zoom and drops what it cannot read", () => {
    expect(parseUrlState("#z=1&y=2&x=3&zoom=0.5")).toEqual({ focus: [1, 2, 3], zoom: 0.5 });
    expect(parseUrlState("#hide=a<b,manual&opacity=manual:x,cells:2,:0.3")).toEqual({ hidden: ["manual"], opacity: { cells: 1 } });
  });
});
