import { describe, expect, it } from "vitest";
import { Outbox, reconnectDelayMs } from "./outbox";
import type { ClientMessage, Stroke } from "./types";

function stroke(uuid: string): ClientMessage {
  const s: Stroke = {
    uuid,
    layer: "manual",
    axis: "z",
    index: 0,
    points: [[1, 1]],
    radius: 2,
    value: 1,
    mode: "paint",
  };
  return { type: "stroke", stroke: s };
}

describe("Outbox", () => {
  it("sends each message once per connection, in order", () => {
    const box = new Outbox();
    box.push(stroke("a"));
    box.push({ type: "undo", uuid: "a" });
    box.push(stroke("b"));
    expect(box.takeUnsent().map((m) => m.type)).toEqual(["stroke", "undo", "stroke"]);
    expect(box.takeUnsent()).toEqual([]);
  });

  it("resends only unacknowledged strokes after the connection is lost", () => {
    const box = new Outbox();
    box.push(stroke("a"));
    box.push(stroke("b"));
    box.push({ type: "mark_complete", axis: "z", index: 2, complete: true });
    box.takeUnsent();
    box.settle("a");
    box.connectionLost();
    const again = box.takeUnsent();
    expect(again).toHaveLength(1);
    expect(again[0]!.type === "stroke" && again[0]!.stroke.uuid).toBe("b");
  });

  it("keeps commands queued while offline until they can be sent", () => {
    const box = new Outbox();
    box.push({ type: "redo", uuid: "x" });
    expect(box.size).toBe(1);
    expect(box.takeUnsent()).toHaveLength(1);
    expect(box.size).toBe(0);
  });

  it("reports whether settling matched a pending stroke", () => {
    const box = new Outbox();
    box.push(stroke("a"));
    expect(box.pendingStrokeIds()).toEqual(["a"]);
    expect(box.settle("zzz")).toBe(false);
    expect(box.settle("a")).toBe(true);
    expect(box.pendingStrokeIds()).toEqual([]);
  });
});

describe("reconnectDelayMs", () => {
  it("grows exponentially and is capped", () => {
    const mid = () => 0.5;
    expect(reconnectDelayMs(0, mid)).toBe(250);
    expect(reconnectDelayMs(2, mid)).toBe(1000);
    expect(reconnectDelayMs(20, mid)).toBe(5000);
  });
  it("stays within the jitter band", () => {
    for (const r of [0, 0.999]) {
      const d = reconnectDelayMs(1, () => r);
      expect(d).toBeGreaterThanOrEqual(400);
      expect(d).toBeLessThanOrEqual(600);
    }
  });
});
