import { describe, expect, it } from "vitest";
import type { Job } from "../api/types";
import { isActive, percent, relativeTime, sortJobs, upsertJob } from "./jobs_model";

function job(id: number, created: string, extra: Partial<Job> = {}): Job {
  return { id, kind: "import", state: "running", progress: 0.5, message: "", created, volume: null, ...extra };
}

describe("jobs model", () => {
  it("sorts newest first", () => {
    const jobs = [job(1, "2024-01-01T00:00:00Z"), job(2, "2024-03-01T00:00:00Z"), job(3, "2024-02-01T00:00:00Z")];
    expect(sortJobs(jobs).map((j) => j.id)).toEqual([2, 3, 1]);
  });

  it("replaces a job by id with its update", () => {
    const jobs = [job(1, "2024-01-01T00:00:00Z"), job(2, "2024-03-01T00:00:00Z")];
    const next = upsertJob(jobs, job(1, "2024-01-01T00:00:00Z", { state: "succeeded", progress: 1 }));
    expect(next).toHaveLength(2);
    expect(next.find((j) => j.id === 1)!.state).toBe("succeeded");
    expect(jobs[0]!.state).toBe("running");
  });

  it("adds a job it has not seen", () => {
    expect(upsertJob([], job(9, "2024-01-01T00:00:00Z"))).toHaveLength(1);
  });

  it("treats queued and running as active", () => {
    expect(isActive(job(1, "", { state: "queued" }))).toBe(true);
    expect(isActive(job(1, "", { state: "failed" }))).toBe(false);
  });

  it("clamps progress to 0..100 %", () => {
    expect(percent(0.426)).toBe(43);
    expect(percent(1.7)).toBe(100);
    expect(percent(Number.NaN)).toBe(0);
  });

  it("formats relative times", () => {
    const now = Date.parse("2024-05-01T12:00:00Z");
    expect(relativeTime("2024-05-01T11:59:50Z", now)).toBe("just now");
    expect(relativeTime("2024-05-01T11:30:00Z", now)).toBe("30 min ago");
    expect(relativeTime("2024-04-01T11:30:00Z", now)).toBe("2024-04-01");
  });
});
