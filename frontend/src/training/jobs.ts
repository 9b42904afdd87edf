/**
 * The model-loop jobs of one volume (retrain, segment, cells), kept current from one REST
 * snapshot plus the websocket's job events, and the layer versions those jobs write.
 */
import type { VolumeSocket } from "../api/socket";
import type { AnnotationSession } from "../annotation/session";
import { type Disposable, DisposableSet, every } from "../core/disposable";
import { Signal, Trackable } from "../core/trackable";
import { latestJob, LOOP_KINDS, type LoopJob, type LoopKind, loopApi } from "./model";

export type LoopJobs = Readonly<Record<LoopKind, LoopJob | null>>;

export class VolumeJobs implements Disposable {
  readonly jobs = new Trackable<LoopJobs>({ retrain: null, segment: null, cells: null });
  /** A job of this volume reached a final state (panels reload what it made). */
  readonly finished = new Signal<[LoopJob]>();
  /** A job wrote a layer this page does not know yet: the page reads and draws it. */
  readonly newLayer = new Signal<[string]>();
  private readonly disposers = new DisposableSet();

  constructor(
    readonly volumeId: number,
    readonly projectId: number,
    socket: VolumeSocket,
    private readonly session: AnnotationSession,
  ) {
    this.disposers.add(socket.messages.add((m) => {
      if (m.type === "job" && m.job.volume === volumeId) this.apply(m.job);
    }));
    void loopApi.jobs(projectId).then((list) => {
      const next = { ...this.jobs.value };
      for (const kind of LOOP_KINDS) {
        const j = latestJob(list, volumeId, kind);
        const cur = next[kind];
        if (j !== null && (cur === null || cur.id <= j.id)) next[kind] = cur?.id === j.id ? cur : j;
      }
      this.jobs.value = next;
    }).catch(() => undefined);
    // Events sent while the socket was reconnecting are lost: while a job runs, also ask REST.
    this.disposers.add(every(4000, () => void this.pollActive()));
  }

  private async pollActive(): Promise<void> {
    const active = LOOP_KINDS.filter((k) => {
      const j = this.jobs.value[k];
      return j !== null && (j.state === "queued" || j.state === "running");
    });
    if (active.length === 0) return;
    try {
      const list = await loopApi.jobs(this.projectId);
      for (const kind of active) {
        const j = latestJob(list, this.volumeId, kind);
        if (j !== null) this.apply(j);
      }
    } catch {
      // offline: the next tick or the socket catches up
    }
  }

  /** Merge one job update (also used right after a POST returns the queued job). */
  apply(job: LoopJob): void {
    if (!(LOOP_KINDS as readonly string[]).includes(job.kind)) return;
    const kind = job.kind as LoopKind;
    const cur = this.jobs.value[kind];
    if (cur !== null && cur.id > job.id) return; // an older job's late event
    const wasActive = cur !== null && cur.id === job.id && (cur.state === "queued" || cur.state === "running");
    // Progress events repeat the result; keep the curve we have if an event carries none.
    const merged: LoopJob = cur !== null && cur.id === job.id && job.result === undefined ? { ...job, result: cur.result } : job;
    this.jobs.value = { ...this.jobs.value, [kind]: merged };
    this.followLayer(merged);
    const done = job.state === "succeeded" || job.state === "failed" || job.state === "cancelled";
    if (done && (wasActive || cur === null || cur.id !== job.id)) this.finished.dispatch(merged);
  }

  private followLayer(job: LoopJob): void {
    const layer = job.result?.layer;
    const version = job.result?.version;
    if (layer === undefined || typeof version !== "number") return;
    const versions = this.session.versions.value;
    if (layer in versions) {
      if ((versions[layer] ?? 0) < version) this.session.versions.value = { ...versions, [layer]: version };
    } else if (job.state === "succeeded") {
      this.newLayer.dispatch(layer);
    }
  }

  dispose(): void {
    this.disposers.dispose();
  }
}
