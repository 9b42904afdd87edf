import { describe, expect, it, vi } from "vitest";
import { DisposableSet } from "./disposable";
import { Signal, Trackable, tupleEquals } from "./trackable";

describe("Trackable", () => {
  it("notifies subscribers with the new and previous value", () => {
    const t = new Trackable(1);
    const seen: Array<[number, number]> = [];
    t.subscribe((v, p) => seen.push([v, p]));
    t.value = 2;
    t.update((v) => v * 10);
    expect(seen).toEqual([
      [2, 1],
      [20, 2],
    ]);
  });

  it("does not notify when the value is equal", () => {
    const t = new Trackable<[number, number]>([1, 2], tupleEquals);
    const fn = vi.fn();
    t.subscribe(fn);
    t.value = [1, 2];
    expect(fn).not.toHaveBeenCalled();
    t.value = [1, 3];
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("stops notifying after the disposer runs", () => {
    const t = new Trackable("a");
    const fn = vi.fn();
    const off = t.subscribe(fn);
    off();
    t.value = "b";
    expect(fn).not.toHaveBeenCalled();
    expect(t.listenerCount).toBe(0);
  });

  it("calls a watcher once immediately", () => {
    const t = new Trackable(5);
    const fn = vi.fn();
    t.watch(fn);
    expect(fn).toHaveBeenCalledWith(5, 5);
  });
});

describe("DisposableSet", () => {
  it("runs disposers once, in reverse order", () => {
    const order: string[] = [];
    const set = new DisposableSet();
    set.add(() => order.push("first"));
    set.add({ dispose: () => order.push("second") });
    set.dispose();
    set.dispose();
    expect(order).toEqual(["second", "first"]);
  });

  it("disposes items added after disposal immediately", () => {
    const set = new DisposableSet();
    set.dispose();
    const fn = vi.fn();
    set.add(fn);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("unsubscribes a signal listener through the set", () => {
    const sig = new Signal<[number]>();
    const set = new DisposableSet();
    const fn = vi.fn();
    set.add(sig.add(fn));
    sig.dispatch(1);
    set.dispose();
    sig.dispatch(2);
    expect(fn).toHaveBeenCalledTimes(1);
  });
});
