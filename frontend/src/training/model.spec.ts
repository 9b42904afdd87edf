import { describe, expect, it } from "vitest";
import {
  calibrationText,
  cellDiceTraces,
  curveTraces,
  formatSeconds,
  latestJob,
  type LoopJob,
  type ModelVersionInfo,
  openSuggestions,
  partialLayerWarning,
  planePoint,
  planeVoxel,
  regionCentre,
  type Run,
  thumbnailUrl,
  versionTraces,
} from "./model";

function job(id: number, kind: string, volume: number, created: string, state: LoopJob["state"] = "running"): LoopJob {
  return { id, kind, volume, created, state, progress: 0, message: "" };
}

function version(id: number, dice: Record<string, number | null>, mean: number | null, voxels = 10): ModelVersionInfo {
  return {
    id, volume: 1, parent: null, active: false, classes: {}, labels_hash: "", labeled_voxels: voxels, curve: [],
    val_dice: dice, mean_val_dice: mean, config: {}, created_by: null, created: "",
  };
}

describe("calibrationText", () => {
  it("gives the calibrated cut-off and slice mixing, 0.5 where a class kept the default", () => {
    const m = { ...version(1, {}, null), config: { thresholds: { mitochondrion: 0.35 }, z_blend: { mitochondrion: 0.2 } } };
    expect(calibrationText(m, "mitochondrion")).toBe("0.35 · mix 0.2");
    expect(calibrationText(m, "nucleus")).toBe("0.50");
  });

  it("says nothing for versions saved before calibration was recorded", () => {
    expect(calibrationText(version(1, {}, null), "mitochondrion")).toBe("—");
  });
});

describe("latestJob", () => {
  it("picks the newest job of the kind on the volume, ignoring others", () => {
    const jobs = [job(1, "retrain", 5, "2025-01-01T00:00:00"), job(2, "retrain", 5, "2025-01-02T00:00:00"),
      job(3, "segment", 5, "2025-01-03T00:00:00"), job(4, "retrain", 6, "2025-01-04T00:00:00")];
    expect(latestJob(jobs, 5, "retrain")?.id).toBe(2);
    expect(latestJob(jobs, 5, "cells")).toBeNull();
  });
});

describe("formatSeconds", () => {
  it("reads like a clock a person would say", () => {
    expect(formatSeconds(42.4)).toBe("42 s");
    expect(formatSeconds(185)).toBe("3 min 5 s");
    expect(formatSeconds(Number.NaN)).toBe("—");
  });
});

describe("curveTraces", () => {
  it("puts loss and validation Dice on separate axes and skips missing values", () => {
    const [loss, dice] = curveTraces([
      { step: 10, loss: 0.9, val_dice: null },
      { step: 20, loss: null, val_dice: 0.4 },
      { step: 30, loss: 0.5, val_dice: 0.6 },
    ]);
    expect(loss!.x).toEqual([10, 30]);
    expect(dice!.x).toEqual([20, 30]);
    expect(dice!.y).toEqual([0.4, 0.6]);
    expect(dice!.yaxis).toBe("y2");
  });
});

describe("versionTraces", () => {
  it("orders versions oldest first with one line per class, the mean, and labeled voxels", () => {
    const traces = versionTraces([version(7, { mito: 0.8 }, 0.8, 300), version(3, { mito: 0.5, nucleus: 0.9 }, 0.7, 100)]);
    const names = traces.map((t) => t.name);
    expect(names).toEqual(["mito", "nucleus", "mean", "labeled voxels"]);
    expect(traces[0]!.x).toEqual(["v3", "v7"]);
    expect(traces[1]!.y).toEqual([0.9, null]);
    expect(traces[3]!.y).toEqual([100, 300]);
  });
});

describe("cellDiceTraces", () => {
  it("groups per-cell Dice by method in the paper's order, cells by id", () => {
    const traces = cellDiceTraces({
      fusion: { cells: { "10": 0.9, "2": 0.95 }, mean: 0.925, matched: {} },
      interior: { cells: { "2": 0.5 }, mean: 0.5, matched: {} },
    });
    expect(traces.map((t) => String(t.name).split(" ")[0])).toEqual(["interior", "fusion"]);
    expect(traces[0]!.x).toEqual(["2", "10"]);
    expect(traces[0]!.y).toEqual([0.5, 0]);
    expect(traces[1]!.y).toEqual([0.95, 0.9]);
  });
});

describe("suggestions", () => {
  const run: Run = {
    id: 1, volume: 2, model_version: 3, job: 4, layer: "prediction", created: "",
    outputs: {
      suggestions: [
        { z: 1, y0: 0, x0: 0, y1: 256, x1: 256, score: 0.2 },
        { z: 5, y0: 256, x0: 0, y1: 512, x1: 256, score: 0.9, dismissed: true },
        { z: 9, y0: 0, x0: 256, y1: 256, x1: 300, score: 0.5 },
      ],
    },
  };

  it("hides dismissed ones, keeps their run index, best first", () => {
    expect(openSuggestions(run).map((e) => e.index)).toEqual([2, 0]);
    expect(openSuggestions(null)).toEqual([]);
  });

  it("centres on the middle of the region and asks for a thumbnail of exactly it", () => {
    expect(regionCentre(run.outputs.suggestions![2]!)).toEqual([9, 128, 278]);
    expect(thumbnailUrl(2, run.outputs.suggestions![0]!, 64)).toBe(
      "/api/volumes/2/thumbnail.png?z=1&y0=0&x0=0&y1=256&x1=256&size=64&overlay=prediction");
  });
});

describe("planePoint", () => {
  it("maps ZYX to the [row, col] of each view", () => {
    expect(planePoint("z", [1, 2, 3])).toEqual([2, 3]);
    expect(planePoint("y", [1, 2, 3])).toEqual([1, 3]);
    expect(planePoint("x", [1, 2, 3])).toEqual([1, 2]);
  });
});

describe("partialLayerWarning", () => {
  const run = (state?: "complete" | "writing" | "partial"): Run => ({
    id: 1, volume: 2, model_version: 3, job: 4, layer: "prediction", created: "", outputs: {},
    ...(state ? { layer_state: { state, job: 9, job_state: "failed", message: "worker lost" } } : {}),
  });

  it("warns only when a job left the layer half-written", () => {
    expect(partialLayerWarning(null)).toBeNull();
    expect(partialLayerWarning(run())).toBeNull();
    expect(partialLayerWarning(run("complete"))).toBeNull();
    expect(partialLayerWarning(run("writing"))).toBeNull();
    expect(partialLayerWarning(run("partial"))).toBe(
      "The prediction layer is incomplete: job 9 failed (worker lost). Run it again to replace it.",
    );
  });
});

describe("planeVoxel", () => {
  it("clips points off the image to its edge voxels, as the brush does", () => {
    const shape: [number, number, number] = [5, 40, 60];
    expect(planeVoxel("z", [2.5, -3.2, 70.1], shape)).toEqual([0, 59]);
    expect(planeVoxel("z", [2.5, 12.7, 30.2], shape)).toEqual([12, 30]);
    expect(planeVoxel("y", [9, 3, -1], shape)).toEqual([4, 0]);
    expect(planeVoxel("x", [-0.5, 45, 3], shape)).toEqual([0, 39]);
  });
});
