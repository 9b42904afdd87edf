/**
 * The project socket (/ws/projects/<id>/) for pages outside the viewer: it carries every job
 * event of the project, so a results page shows a report that finished anywhere without a
 * reload. Reconnects with the volume socket's backoff; dispose() closes it.
 */
import type { Disposable } from "../core/disposable";
import { reconnectDelayMs } from "./outbox";
import { websocketUrl } from "./socket";
import { type Job, parseServerMessages } from "./types";

/** A job event as the server sends it (the REST job plus what it made). */
export type JobEvent = Job & { result?: Record<string, unknown> | null };

export class ProjectJobs implements Disposable {
  private ws: WebSocket | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private disposed = false;

  constructor(
    private readonly projectId: number,
    private readonly onJob: (job: JobEvent) => void,
  ) {
    this.open();
  }

  private open(): void {
    if (this.disposed) return;
    const ws = new WebSocket(websocketUrl(`/ws/projects/${this.projectId}/`, window.location));
    this.ws = ws;
    ws.onopen = () => (this.attempt = 0);
    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data !== "string") return;
      for (const m of parseServerMessages(ev.data)) if (m.type === "job") this.onJob(m.job);
    };
    ws.onclose = () => {
      if (this.ws !== ws || this.disposed) return;
      this.timer = setTimeout(() => this.open(), reconnectDelayMs(this.attempt++));
    };
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.ws?.close();
    this.ws = null;
  }
}

/**
 * What a volume's results page does with a job event: follow a report job of this volume that
 * it is not following yet ("watch"), or list the reports again when one finished ("refresh").
 */
export function reportEventAction(job: JobEvent, volumeId: number, watching: boolean): "watch" | "refresh" | null {
  if (job.kind !== "report" || job.volume !== volumeId) return null;
  if (job.state === "queued" || job.state === "running") return watching ? null : "watch";
  return job.state === "succeeded" && !watching ? "refresh" : null;
}
