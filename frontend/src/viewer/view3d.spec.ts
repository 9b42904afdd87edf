import { describe, expect, it } from "vitest";
import { meshUrl } from "./view3d";

describe("meshUrl", () => {
  it("asks for the whole class layer, or one cell of a cells layer", () => {
    expect(meshUrl(3, "prediction", null)).toBe("/api/volumes/3/layers/prediction/mesh.glb");
    expect(meshUrl(3, "cells_auto", 12)).toBe("/api/volumes/3/layers/cells_auto/mesh.glb?value=12");
  });
});
