import { describe, expect, it } from "vitest";
import { TileCache, type TileFetcher, type TileImage } from "./tile_cache";

function fakeImage(name: string): TileImage {
  return { name, close() {} } as unknown as TileImage;
}

/** A fetcher whose requests resolve when the test says so. */
function controlledFetcher() {
  const calls: Array<{ url: string; resolve: (img: TileImage | null) => void }> = [];
  const fetcher: TileFetcher = (url) =>
    new Promise((resolve) => {
      calls.push({ url, resolve });
    });
  return { calls, fetcher };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("TileCache", () => {
  it("loads a tile once and then returns it as fresh", async () => {
    const { calls, fetcher } = controlledFetcher();
    const cache = new TileCache(fetcher);
    cache.beginFrame();
    expect(cache.request("k", "/a.png")).toEqual({ image: null, fresh: false });
    cache.request("k", "/a.png");
    expect(calls).toHaveLength(1);
    calls[0]!.resolve(fakeImage("a"));
    await tick();
    const hit = cache.request("k", "/a.png");
    expect(hit.fresh).toBe(true);
    expect((hit.image as unknown as { name: string }).name).toBe("a");
  });

  it("keeps showing the old image while a new version loads", async () => {
    const { calls, fetcher } = controlledFetcher();
    const cache = new TileCache(fetcher);
    cache.beginFrame();
    cache.request("k", "/t.png?v=1");
    calls[0]!.resolve(fakeImage("v1"));
    await tick();
    const stale = cache.request("k", "/t.png?v=2");
    expect(stale.fresh).toBe(false);
    expect((stale.image as unknown as { name: string }).name).toBe("v1");
    calls[1]!.resolve(fakeImage("v2"));
    await tick();
    expect((cache.request("k", "/t.png?v=2").image as unknown as { name: string }).name).toBe("v2");
  });

  it("limits concurrent loads and serves the latest request first", () => {
    const { calls, fetcher } = controlledFetcher();
    const cache = new TileCache(fetcher, 100, 2);
    cache.beginFrame();
    for (const k of ["a", "b", "c", "d"]) cache.request(k, `/${k}`);
    expect(calls.map((c) => c.url)).toEqual(["/a", "/b"]);
    expect(cache.pendingCount).toBe(4);
  });

  it("skips queued tiles that stopped being requested", async () => {
    const { calls, fetcher } = controlledFetcher();
    const cache = new TileCache(fetcher, 100, 1);
    cache.beginFrame();
    cache.request("a", "/a");
    cache.request("old", "/old");
    for (let i = 0; i < 5; i++) cache.beginFrame();
    cache.request("new", "/new");
    calls[0]!.resolve(fakeImage("a"));
    await tick();
    expect(calls.map((c) => c.url)).toEqual(["/a", "/new"]);
  });

  it("remembers a 404 as an empty tile", async () => {
    const { calls, fetcher } = controlledFetcher();
    const cache = new TileCache(fetcher);
    cache.beginFrame();
    cache.request("k", "/out");
    calls[0]!.resolve(null);
    await tick();
    expect(cache.request("k", "/out")).toEqual({ image: null, fresh: true });
  });

  it("evicts the least recently used slots beyond capacity", async () => {
    const { calls, fetcher } = controlledFetcher();
    const cache = new TileCache(fetcher, 2, 10);
    cache.beginFrame();
    cache.request("a", "/a");
    cache.beginFrame();
    cache.request("b", "/b");
    for (const c of calls) c.resolve(fakeImage(c.url));
    await tick();
    cache.beginFrame();
    cache.request("c", "/c");
    expect(cache.peek("a")).toBeNull();
    expect(cache.peek("b")).not.toBeNull();
  });
});
