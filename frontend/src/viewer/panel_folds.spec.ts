import { describe, expect, it } from "vitest";
import { startsFolded } from "./panel_folds";

describe("startsFolded", () => {
  it("folds the reading panels on a 720-pixel screen and keeps the model controls open", () => {
    expect(startsFolded("models-panel", {}, 720)).toBe(true);
    expect(startsFolded("history-panel", {}, 720)).toBe(true);
    expect(startsFolded("training-panel", {}, 720)).toBe(false);
    expect(startsFolded("layers-panel", {}, 720)).toBe(false);
  });

  it("folds nothing on a tall screen, and the user's last choice wins either way", () => {
    expect(startsFolded("models-panel", {}, 1000)).toBe(false);
    expect(startsFolded("models-panel", { "models-panel": false }, 720)).toBe(false);
    expect(startsFolded("layers-panel", { "layers-panel": true }, 1000)).toBe(true);
  });
});
