import { describe, expect, it } from "vitest";
import type { VolumeInfo } from "../api/types";
import { neuroglancerState, neuroglancerUrl, type StoreLink, zarrSource } from "./neuroglancer";

const info: VolumeInfo = {
  id: 7,
  name: "Bx1 crop",
  project: { id: 1, name: "Bx1" },
  shape: [20, 300, 520],
  voxel_size_nm: [8, 4, 4],
  dtype: "uint8",
  tile_size: 256,
  levels: [],
  window: [12, 230],
  role: "viewer",
  layers: [
    { name: "manual", kind: "labels" },
    { name: "cells", kind: "instances" },
    { name: "prediction", kind: "labels" },
  ],
  classes: [
    { id: 1, name: "nucleus", value: 2, color: "#3366ff", kind: "semantic" },
    { id: 2, name: "mitochondrion", value: 4, color: "#ff3366", kind: "semantic" },
    { id: 3, name: "cell", value: 7, color: "#ffffff", kind: "instance" },
  ],
  complete_slices: [],
};

const link: StoreLink = {
  url: "https://em.example/stores/abc.def.ghi/",
  expires: 1_900_000_000,
  zarr_format: 2,
  ngff_version: "0.4",
  layers: ["manual", "cells", "prediction"],
  neuroglancer: "https://neuroglancer-demo.appspot.com/",
};

describe("neuroglancerState", () => {
  it("names the image and each label folder with the zarr version of the store", () => {
    const state = neuroglancerState(info, link);
    expect(state.layers.map((l) => [l.type, l.name, l.source])).toEqual([
      ["image", "Bx1 crop", "zarr2://https://em.example/stores/abc.def.ghi/"],
      ["segmentation", "manual", "zarr2://https://em.example/stores/abc.def.ghi/labels/manual/"],
      ["segmentation", "cells", "zarr2://https://em.example/stores/abc.def.ghi/labels/cells/"],
      ["segmentation", "prediction", "zarr2://https://em.example/stores/abc.def.ghi/labels/prediction/"],
    ]);
    expect(zarrSource({ ...link, zarr_format: 3 }, "labels/manual/")).toBe(
      "zarr3://https://em.example/stores/abc.def.ghi/labels/manual/",
    );
  });

  it("puts the crosshair on voxel centres (an OME-Zarr voxel is centred on its index) in x, y, z, in metres", () => {
    const state = neuroglancerState(info, link, { focus: [3, 120, 44] });
    expect(state.position).toEqual([44, 120, 3]);
    expect(state.dimensions).toEqual({ x: [4e-9, "m"], y: [4e-9, "m"], z: [8e-9, "m"] });
  });

  it("starts in the middle of the volume without a view", () => {
    expect(neuroglancerState(info, link).position).toEqual([260, 150, 10]);
  });

  it("keeps the zoom, the display window, the hidden layers and the class colours", () => {
    const state = neuroglancerState(info, link, { zoom: 0.125, hidden: ["prediction"] });
    // 0.125 px per nm = 8 nm per px = 2 canonical voxels of 4 nm per px
    expect(state.crossSectionScale).toBeCloseTo(2);
    expect(state.layers[0]!.shaderControls).toEqual({ normalized: { range: [12, 230] } });
    const byName = Object.fromEntries(state.layers.map((l) => [l.name, l]));
    expect(byName.prediction!.visible).toBe(false);
    expect(byName.manual!.visible).toBeUndefined();
    expect(byName.manual!.segmentColors).toEqual({ "2": "#3366ff", "4": "#ff3366" });
    expect(byName.cells!.segmentColors).toBeUndefined(); // cells: one colour per id, Neuroglancer's
  });

  it("round-trips through the URL fragment", () => {
    const state = neuroglancerState(info, link, { focus: [1, 2, 3] });
    const url = neuroglancerUrl("https://neuroglancer-demo.appspot.com/#!old", state);
    expect(url.startsWith("https://neuroglancer-demo.appspot.com/#!")).toBe(true);
    expect(url).not.toContain("#!old");
    expect(JSON.parse(decodeURIComponent(url.slice(url.indexOf("#!") + 2)))).toEqual(state);
  });
});
