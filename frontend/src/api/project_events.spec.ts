import { describe, expect, it } from "vitest";
import { type JobEvent, reportEventAction } from "./project_events";

const job = (extra: Partial<JobEvent>): JobEvent => ({
  id: 4, kind: "report", state: "running", progress: 0.2, message: "", created: "", volume: 7, ...extra,
});

describe("reportEventAction", () => {
  it("follows a report of this volume started elsewhere", () => {
    expect(reportEventAction(job({}), 7, false)).toBe("watch");
    expect(reportEventAction(job({}), 7, true)).toBeNull();
  });

  it("lists the reports again when one finished that the page was not polling", () => {
    expect(reportEventAction(job({ state: "succeeded" }), 7, false)).toBe("refresh");
    expect(reportEventAction(job({ state: "succeeded" }), 7, true)).toBeNull();
    expect(reportEventAction(job({ state: "failed" }), 7, false)).toBeNull();
  });

  it("ignores other volumes and other kinds", () => {
    expect(reportEventAction(job({ volume: 8 }), 7, false)).toBeNull();
    expect(reportEventAction(job({ kind: "segment", state: "succeeded" }), 7, false)).toBeNull();
  });
});
