/** Job list logic: merging REST snapshots with live websocket updates, ordering, formatting. */
import type { Job, JobState } from "../api/types";

export const ACTIVE_STATES: ReadonlySet<JobState> = new Set(["queued", "running"]);

export function isActive(job: Job): boolean {
  return ACTIVE_STATES.has(job.state);
}

/** Newest first (by created, then id). */
export function sortJobs(jobs: readonly Job[]): Job[] {
  return [...jobs].sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : b.id - a.id));
}

/** Insert or replace one job (a websocket update) in a list. */
export function upsertJob(jobs: readonly Job[], job: Job): Job[] {
  const out = jobs.filter((j) => j.id !== job.id);
  out.push(job);
  return sortJobs(out);
}

/** Progress as a whole percentage in 0..100 (NaN and out-of-range values clamped). */
export function percent(progress: number): number {
  if (!Number.isFinite(progress)) return 0;
  return Math.round(Math.min(1, Math.max(0, progress)) * 100);
}

/** "just now", "5 min ago", "3 h ago", or the date. */
export function relativeTime(iso: string, now: number = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, (now - t) / 1000);
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 10);
}
