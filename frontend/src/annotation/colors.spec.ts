import { describe, expect, it } from "vitest";
import { hash32, instanceColor, parseHexColor, toHex } from "./colors";

describe("colours", () => {
  it("parses and formats #rrggbb", () => {
    expect(parseHexColor("#FFd700")).toEqual([255, 215, 0]);
    expect(toHex([255, 215, 0])).toBe("#ffd700");
    expect(() => parseHexColor("yellow")).toThrow(/yellow/);
  });

  it("gives an instance the same colour every time and neighbours different ones", () => {
    expect(instanceColor(17)).toEqual(instanceColor(17));
    const seen = new Set<string>();
    for (let id = 1; id <= 50; id++) seen.add(toHex(instanceColor(id)));
    expect(seen.size).toBeGreaterThan(45);
  });

  it("keeps instance colours bright enough to see on dark EM", () => {
    for (let id = 1; id <= 100; id++) expect(Math.max(...instanceColor(id))).toBeGreaterThan(190);
  });

  it("hashes to unsigned 32-bit values", () => {
    expect(hash32(0)).toBe(0);
    expect(hash32(1)).toBeGreaterThan(0);
    expect(hash32(1)).toBeLessThan(2 ** 32);
  });
});
