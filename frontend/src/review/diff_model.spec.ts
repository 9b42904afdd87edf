import { describe, expect, it } from "vitest";
import { diceClass, formatCount, formatDice, worstSlices } from "./diff_model";

describe("diff formatting", () => {
  it("formats Dice with two decimals and a dash when undefined", () => {
    expect(formatDice(0.9349)).toBe("0.93");
    expect(formatDice(null)).toBe("—");
    expect(formatDice(Number.NaN)).toBe("—");
  });

  it("bands Dice values for colouring", () => {
    expect([diceClass(0.95), diceClass(0.75), diceClass(0.2), diceClass(null)]).toEqual(["good", "fair", "poor", "none"]);
  });

  it("lists the slices that disagree most, without the ones that agree", () => {
    const s = [{ z: 0, disagree: 5 }, { z: 1, disagree: 0 }, { z: 2, disagree: 9 }, { z: 3, disagree: 5 }];
    expect(worstSlices(s, 2).map((x) => x.z)).toEqual([2, 0]);
    expect(worstSlices(s, 10).map((x) => x.z)).toEqual([2, 0, 3]);
  });

  it("shortens voxel counts for the narrow table", () => {
    expect([formatCount(952), formatCount(17432), formatCount(174102), formatCount(2_300_000)]).toEqual(["952", "17.4k", "174k", "2.3M"]);
  });
});
