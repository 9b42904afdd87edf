import { describe, expect, it } from "vitest";
import type { VolumeInfo } from "../api/types";
import { AnnotationSession } from "../annotation/session";
import { ToolState } from "../annotation/tools";
import { missingLayers, paletteKey, ViewerContext } from "./context";
import { TileCache } from "./tile_cache";

function info(): VolumeInfo {
  return {
    id: 1, name: "v", project: { id: 1, name: "p" }, shape: [4, 64, 64], voxel_size_nm: [10, 5, 5],
    dtype: "uint8", tile_size: 256, levels: [{ level: 0, shape: [4, 64, 64], downsample: [1, 1, 1] }],
    window: [0, 255], role: "annotator",
    layers: [{ name: "manual", kind: "labels", version: 3 }, { name: "cells", kind: "instances" }],
    classes: [], complete_slices: [],
  };
}

function context(): ViewerContext {
  const v = info();
  const session = new AnnotationSession(v, { send: () => undefined });
  return new ViewerContext(v, session, new ToolState(v.classes, v.layers), new TileCache());
}

describe("layers made while the page is open", () => {
  it("finds the layers a fresh read holds that the page does not, in the server's order", () => {
    const fetched = [
      { name: "manual", kind: "labels" as const },
      { name: "prediction", kind: "labels" as const, version: 9 },
      { name: "cells_auto", kind: "instances" as const },
    ];
    expect(missingLayers(["image", "manual"], fetched).map((l) => l.name)).toEqual(["prediction", "cells_auto"]);
    expect(missingLayers(["image", "manual", "prediction", "cells_auto"], fetched)).toEqual([]);
  });

  it("adds a layer to the drawn layers, the versions and the volume's list, once", () => {
    const ctx = context();
    const seen: string[] = [];
    ctx.layerAdded.add((l) => seen.push(l.name));
    const added = ctx.addLayer({ name: "cells_auto", kind: "instances", version: 7 });
    expect(added?.kind).toBe("instances");
    expect(ctx.layers.map((l) => l.name)).toEqual(["image", "manual", "cells", "cells_auto"]);
    expect(ctx.session.versions.value).toEqual({ manual: 3, cells: 0, cells_auto: 7 });
    expect(ctx.session.layerKind("cells_auto")).toBe("instances");
    expect(ctx.addLayer({ name: "cells_auto", kind: "instances", version: 8 })).toBeNull();
    expect(seen).toEqual(["cells_auto"]);
  });
});

describe("paletteKey", () => {
  it("changes when a class colour changes and not otherwise", () => {
    expect(paletteKey("2#ffd400;4#ff69c8")).toBe(paletteKey("2#ffd400;4#ff69c8"));
    expect(paletteKey("2#ffd400;4#ff69c8")).not.toBe(paletteKey("2#ffd400;4#12ab34"));
  });
});
