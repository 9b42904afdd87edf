import { describe, expect, it } from "vitest";
import { PEER_TIMEOUT_MS, PresenceRoster } from "./presence";

describe("PresenceRoster", () => {
  it("answers a newcomer once and follows their crosshair", () => {
    const r = new PresenceRoster();
    expect(r.apply({ type: "presence", id: "a", user: "alice", focus: null, joined: true }, 0)).toBe(true);
    expect(r.apply({ type: "presence", id: "a", user: "alice", focus: [3, 10, 20] }, 10)).toBe(false);
    expect(r.list()).toEqual([{ id: "a", user: "alice", focus: [3, 10, 20], seen: 10 }]);
  });

  it("learns of a peer first seen moving and forgets one who left", () => {
    const r = new PresenceRoster();
    expect(r.apply({ type: "presence", id: "b", user: "bob", focus: [1, 1, 1] }, 0)).toBe(true);
    r.apply({ type: "presence", id: "a", user: "alice", focus: [2, 2, 2] }, 0);
    expect(r.list().map((p) => p.user)).toEqual(["alice", "bob"]);
    r.apply({ type: "presence", id: "b", user: "bob", focus: null, left: true }, 5);
    expect(r.list().map((p) => p.user)).toEqual(["alice"]);
  });

  it("keeps the last crosshair through a heartbeat without one and drops the quiet", () => {
    const r = new PresenceRoster();
    r.apply({ type: "presence", id: "a", user: "alice", focus: [4, 5, 6] }, 0);
    r.apply({ type: "presence", id: "a", user: "alice", focus: null }, 1000);
    expect(r.list()[0]!.focus).toEqual([4, 5, 6]);
    expect(r.prune(1000 + PEER_TIMEOUT_MS)).toBe(false);
    expect(r.prune(1001 + PEER_TIMEOUT_MS)).toBe(true);
    expect(r.list()).toEqual([]);
  });
});
