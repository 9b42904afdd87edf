import { describe, expect, it } from "vitest";
import { soloToggle } from "./solo";

describe("soloToggle", () => {
  const shown = { image: true, manual: true, prediction: true, cells: false };

  it("shows only the target over the image", () => {
    const { visible, state } = soloToggle(shown, "prediction", null);
    expect(visible).toEqual({ image: true, manual: false, prediction: true, cells: false });
    expect(state?.layer).toBe("prediction");
  });

  it("soloing the same layer again restores what was shown before", () => {
    const first = soloToggle(shown, "prediction", null);
    const back = soloToggle(first.visible, "prediction", first.state);
    expect(back.visible).toEqual(shown);
    expect(back.state).toBeNull();
  });

  it("moving the solo to another layer keeps the first saved visibility", () => {
    const first = soloToggle(shown, "prediction", null);
    const second = soloToggle(first.visible, "cells", first.state);
    expect(second.visible).toEqual({ image: true, manual: false, prediction: false, cells: true });
    expect(soloToggle(second.visible, "cells", second.state).visible).toEqual(shown);
  });

  it("a layer added during the solo keeps its visibility when the solo ends", () => {
    const first = soloToggle(shown, "manual", null);
    const back = soloToggle({ ...first.visible, cells_auto: true }, "manual", first.state);
    expect(back.visible.cells_auto).toBe(true);
    expect(back.visible.prediction).toBe(true);
  });
});
