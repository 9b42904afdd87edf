import { describe, expect, it } from "vitest";
import { singleFlight } from "./single_flight";
import { Trackable } from "./trackable";

describe("singleFlight", () => {
  it("drops calls made while the last one is in flight, then runs again", async () => {
    let calls = 0;
    let release: () => void = () => undefined;
    const busy = new Trackable(false);
    const click = singleFlight(() => {
      calls++;
      return new Promise<void>((resolve) => (release = resolve));
    }, busy);
    const first = click();
    void click();
    void click();
    expect(calls).toBe(1);
    expect(busy.value).toBe(true);
    release();
    await first;
    expect(busy.value).toBe(false);
    void click();
    expect(calls).toBe(2);
  });

  it("frees itself when the action fails", async () => {
    let calls = 0;
    const click = singleFlight(() => {
      calls++;
      return Promise.reject(new Error("409"));
    });
    await expect(click()).rejects.toThrow("409");
    await expect(click()).rejects.toThrow("409");
    expect(calls).toBe(2);
  });
});
