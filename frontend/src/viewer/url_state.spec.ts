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
