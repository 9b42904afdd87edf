import { describe, expect, it } from "vitest";
import { csrfTokenFrom, errorMessage, imageTileUrl, labelTileUrl } from "./http";
import { parseServerMessages, roleAtLeast } from "./types";

describe("csrfTokenFrom", () => {
  it("finds the csrftoken cookie among others", () => {
    expect(csrfTokenFrom("sessionid=abc; csrftoken=T0K%3D; theme=dark")).toBe("T0K=");
  });
  it("returns an empty string when there is no token", () => {
    expect(csrfTokenFrom("sessionid=abc")).toBe("");
  });
});

describe("tile urls", () => {
  const t = { axis: "y" as const, index: 4, level: 1, ty: 0, tx: 2 };
  it("builds the image tile url with a rounded window", () => {
    expect(imageTileUrl(12, t, [10.4, 200.6])).toBe(
      "/api/volumes/12/tiles/y/4/1/0/2.png?window=10,201",
    );
  });
  it("builds the label tile url with a version cache-buster", () => {
    expect(labelTileUrl(12, "manual", t, 7)).toBe(
      "/api/volumes/12/layers/manual/tiles/y/4/1/0/2.png?v=7",
    );
  });
});

describe("messages and roles", () => {
  it("parses known messages and rejects others", () => {
    expect(parseServerMessages('{"type":"ack","uuid":"u","version":3}')).toEqual([
      { type: "ack", uuid: "u", version: 3 },
    ]);
    expect(parseServerMessages('{"type":"nope"}')).toEqual([]);
    expect(parseServerMessages("not json")).toEqual([]);
  });
  it("unpacks a batch frame into its known events, in order", () => {
    const frame = JSON.stringify({
      type: "batch",
      events: [
        { type: "undo", uuid: "a", version: 4 },
        { type: "nope" },
        { type: "redo", uuid: "b", version: 5 },
      ],
    });
    expect(parseServerMessages(frame).map((m) => m.type)).toEqual(["undo", "redo"]);
  });
  it("orders roles viewer < annotator < reviewer < manager", () => {
    expect(roleAtLeast("viewer", "annotator")).toBe(false);
    expect(roleAtLeast("reviewer", "annotator")).toBe(true);
    expect(roleAtLeast("manager", "reviewer")).toBe(true);
  });
});

describe("errorMessage", () => {
  it("reads the project's error shape, DRF's detail, or falls back", () => {
    expect(errorMessage({ error: { code: "off_volume", message: "voxel (9, 0, 0) is off the volume" } }, "x")).toBe(
      "voxel (9, 0, 0) is off the volume",
    );
    expect(errorMessage({ detail: "Authentication credentials were not provided." }, "x")).toBe(
      "Authentication credentials were not provided.",
    );
    expect(errorMessage("<html>", "Bad Gateway")).toBe("Bad Gateway");
  });
});
