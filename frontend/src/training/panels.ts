/**
 * The model-loop panels of the volume page's right sidebar: Retrain / Segment with a live
 * loss and validation-Dice chart, the model versions (compare, make active, Dice over
 * versions), "Where to label next", and the accept-prediction brush. Cells live in
 * ../cells/cells_panel.ts. `mountModelPanels` builds them all and returns one disposer.
 */
import { CellsPanel } from "../cells/cells_panel";
import { api, busyJob } from "../api/http";
import { type Disposable, DisposableSet, listen } from "../core/disposable";
import { h } from "../core/dom";
import { singleFlight } from "../core/single_flight";
import { Trackable } from "../core/trackable";
import { missingLayers } from "../viewer/context";
import type { SliceView } from "../viewer/slice_view";
import { Chart } from "./chart";
import { centreOn, type LoopHost } from "./host";
import { VolumeJobs } from "./jobs";
import {
  calibrationText,
  curveTraces,
  formatDice,
  formatSeconds,
  isRunning,
  type LoopJob,
  loopApi,
  type ModelVersionInfo,
  openSuggestions,
  partialLayerWarning,
  planeVoxel,
  regionCentre,
  type Run,
  thumbnailUrl,
  versionTraces,
} from "./model";
import "./training.css";

function jobLine(job: LoopJob | null): string {
  if (job === null) return "";
  const pct = `${Math.round(Math.min(1, Math.max(0, job.progress)) * 100)} %`;
  return job.state === "running" ? `${pct} · ${job.message}` : `${job.state} · ${job.message}`;
}

// ---------------------------------------------------------------- retrain and segment
class TrainingPanel implements Disposable {
  readonly element: HTMLElement;
  private readonly d = new DisposableSet();

  constructor(host: LoopHost, jobs: VolumeJobs, notify: (text: string, kind: "info" | "error") => void) {
    const volumeId = host.ctx.info.id;
    const minutes = h("select", { id: "retrain-minutes", "aria-label": "training budget" },
      ...[0.5, 1, 2, 5, 10, 20].map((m) => h("option", { value: m, selected: m === 2 }, `${m} min`)));
    const scratch = h("input", { type: "checkbox", id: "retrain-scratch" });
    const retrain = h("button", { class: "btn", id: "retrain-btn", title: "Fine-tune the active model on the current labels" }, "Retrain");
    const segment = h("button", { class: "btn", id: "segment-btn", title: "Predict the whole volume with the active model" }, "Segment");
    const cancel = h("button", { class: "btn small", id: "loop-cancel", hidden: true }, "Cancel");
    const bar = h("div", { class: "loop-bar" }, h("div", { class: "loop-bar-fill" }));
    const status = h("div", { class: "loop-status", id: "training-status" });
    const segStatus = h("div", { class: "loop-status", id: "segment-status" });
    const chart = this.d.add(new Chart("training-chart"));
    const eta = h("span", { class: "loop-eta", id: "training-eta" });

    const posting = { retrain: new Trackable(false), segment: new Trackable(false) };
    const sync = () => {
      const { retrain: r, segment: s } = jobs.jobs.value;
      const canAct = host.ctx.canPaint;
      retrain.disabled = !canAct || isRunning(r) || posting.retrain.value;
      segment.disabled = !canAct || isRunning(s) || posting.segment.value;
      const running = isRunning(r) ? r : isRunning(s) ? s : null;
      cancel.hidden = running === null || !canAct;
      (bar.firstChild as HTMLElement).style.width = `${Math.round((running?.progress ?? 0) * 100)}%`;
      bar.classList.toggle("active", running !== null);
      status.textContent = r === null ? "No training yet." : `Retrain #${r.id}: ${jobLine(r)}`;
      status.dataset.state = r?.state ?? "";
      segStatus.textContent = s === null ? "" : `Segment #${s.id}: ${jobLine(s)}`;
      segStatus.dataset.state = s?.state ?? "";
      const curve = r?.result?.curve ?? [];
      eta.textContent = isRunning(r) && r?.result?.eta_s !== undefined ? `ETA ${formatSeconds(r.result.eta_s)}` : "";
      if (curve.length > 0) {
        chart.element.hidden = false;
        void chart.draw(curveTraces(curve), {
          xaxis: { title: { text: "step" }, gridcolor: "#2a313b" },
          yaxis: { title: { text: "loss" }, gridcolor: "#2a313b", rangemode: "tozero" },
          yaxis2: { title: { text: "val Dice" }, overlaying: "y", side: "right", range: [0, 1], showgrid: false },
        });
      } else {
        chart.element.hidden = true;
        delete chart.element.dataset.points; // a new job starts with no curve
      }
    };
    this.d.add(jobs.jobs.watch(sync));
    this.d.add(host.session.role.subscribe(sync));
    this.d.add(posting.retrain.subscribe(sync));
    this.d.add(posting.segment.subscribe(sync));

    const start = async (what: "retrain" | "segment") => {
      try {
        const job = what === "retrain"
          ? await loopApi.retrain(volumeId, { minutes: Number(minutes.value), from_scratch: scratch.checked })
          : await loopApi.segment(volumeId);
        jobs.apply(job);
      } catch (err) {
        const busy = busyJob<LoopJob>(err); // someone (another tab, a colleague) started it first: show that one
        if (busy !== null) jobs.apply(busy);
        notify(String(err instanceof Error ? err.message : err), busy !== null ? "info" : "error");
      }
    };
    // A second click while the POST is in flight is dropped (a double-click started two jobs).
    const startRetrain = singleFlight(() => start("retrain"), posting.retrain);
    const startSegment = singleFlight(() => start("segment"), posting.segment);
    this.d.add(listen(retrain, "click", () => void startRetrain()));
    this.d.add(listen(segment, "click", () => void startSegment()));
    this.d.add(listen(cancel, "click", () => {
      const { retrain: r, segment: s } = jobs.jobs.value;
      const running = isRunning(r) ? r : isRunning(s) ? s : null;
      if (running !== null) void loopApi.cancel(running.id).then((j) => jobs.apply(j)).catch((e: unknown) => notify(String(e), "error"));
    }));

    this.element = h("section", { class: "panel loop-panel", id: "training-panel" },
      h("h2", {}, "Model"),
      h("div", { class: "btn-row" }, retrain, segment),
      h("div", { class: "loop-options" }, minutes, h("label", {}, scratch, " from scratch")),
      bar,
      h("div", { class: "loop-status-row" }, status, eta, cancel),
      chart.element,
      segStatus,
    );
  }

  dispose(): void {
    this.d.dispose();
  }
}

// ---------------------------------------------------------------- model versions
class ModelsPanel implements Disposable {
  readonly element: HTMLElement;
  private readonly d = new DisposableSet();
  private models: ModelVersionInfo[] = [];
  private readonly selected = new Set<number>();

  constructor(private readonly host: LoopHost, jobs: VolumeJobs, private readonly notify: (t: string, k: "info" | "error") => void) {
    const list = h("div", { class: "model-list", id: "model-list" });
    const compareBtn = h("button", { class: "btn small", id: "model-compare", disabled: true }, "Compare");
    const comparison = h("div", { class: "model-compare", id: "model-comparison" });
    const chart = this.d.add(new Chart("versions-chart", 160));
    const render = () => {
      list.replaceChildren(...(this.models.length === 0 ? [h("div", { class: "muted" }, "No model yet: paint, then Retrain.")] : this.models.map((m) => {
        const check = h("input", { type: "checkbox", "aria-label": `compare v${m.id}`, checked: this.selected.has(m.id) });
        const use = h("button", { class: "btn small", disabled: m.active || !host.ctx.canPaint, title: "Segment with this version and fine-tune it next" }, m.active ? "active" : "Use");
        this.d.add(listen(check, "change", () => {
          if (check.checked) this.selected.add(m.id);
          else this.selected.delete(m.id);
          compareBtn.disabled = this.selected.size !== 2;
        }));
        this.d.add(listen(use, "click", () => void loopApi.activate(m.id).then(() => this.reload()).catch((e: unknown) => notify(String(e), "error"))));
        return h("div", { class: `model-row${m.active ? " active" : ""}`, "data-model": m.id },
          check,
          h("span", { class: "model-name" }, `v${m.id}`),
          h("span", { class: "model-dice", title: "mean validation Dice" }, formatDice(m.mean_val_dice)),
          h("span", { class: "muted model-meta" }, `${m.parent !== null ? `from v${m.parent}` : "scratch"} · ${m.labeled_voxels.toLocaleString()} vox`),
          use);
      })));
      if (this.models.length > 0) {
        chart.element.hidden = false;
        void chart.draw(versionTraces(this.models), {
          yaxis: { title: { text: "val Dice" }, range: [0, 1], gridcolor: "#2a313b" },
          yaxis2: { overlaying: "y", side: "right", showgrid: false, title: { text: "labeled" } },
          barmode: "overlay",
        });
      } else {
        chart.element.hidden = true;
      }
    };
    this.render = render;
    this.d.add(listen(compareBtn, "click", () => {
      const [a, b] = [...this.selected].sort((x, y) => x - y);
      if (a === undefined || b === undefined) return;
      void loopApi.compare(a, b).then((c) => {
        comparison.replaceChildren(h("table", { class: "compare-table" },
          h("tr", {}, h("th", {}, "class"), h("th", {}, `v${a}`), h("th", {}, `v${b}`), h("th", {}, "Δ")),
          ...c.classes.map((name) => {
            const delta = c.delta[name];
            return h("tr", {}, h("td", {}, name), h("td", {}, formatDice(c.a.val_dice[name])), h("td", {}, formatDice(c.b.val_dice[name])),
              h("td", { class: delta === null || delta === undefined ? "" : delta >= 0 ? "up" : "down" },
                delta === null || delta === undefined ? "—" : `${delta >= 0 ? "+" : ""}${delta.toFixed(3)}`));
          })),
          h("div", { class: "muted" }, c.same_labels ? "same labels" : "trained on different labels"),
          h("table", { class: "compare-table", title: "probability cut-off · share of each neighbouring slice mixed in, chosen on held-out slices" },
            h("tr", {}, h("th", {}, "cut-off"), h("th", {}, `v${a}`), h("th", {}, `v${b}`)),
            ...c.classes.map((name) => h("tr", {}, h("td", {}, name),
              h("td", {}, calibrationText(c.a, name)), h("td", {}, calibrationText(c.b, name))))));
      }).catch((e: unknown) => notify(String(e), "error"));
    }));
    this.d.add(jobs.finished.add((j) => {
      if (j.kind === "retrain") this.reload();
    }));
    this.element = h("section", { class: "panel loop-panel", id: "models-panel" },
      h("h2", {}, "Model versions"), list, h("div", { class: "btn-row" }, compareBtn), comparison,
      h("div", { class: "muted chart-title" }, "Validation Dice over versions"), chart.element);
    this.reload();
  }

  private render: () => void = () => undefined;

  reload(): void {
    void loopApi.models(this.host.ctx.info.project.id).then((models) => {
      this.models = models;
      this.render();
    }).catch((e: unknown) => this.notify(String(e), "error"));
  }

  dispose(): void {
    this.d.dispose();
  }
}

// ---------------------------------------------------------------- where to label next
class SuggestionsPanel implements Disposable {
  readonly element: HTMLElement;
  private readonly d = new DisposableSet();
  private readonly list = h("div", { class: "suggestion-list", id: "suggestion-list" });

  constructor(private readonly host: LoopHost, jobs: VolumeJobs, private readonly notify: (t: string, k: "info" | "error") => void) {
    this.d.add(jobs.finished.add((j) => {
      if (j.kind === "segment" && j.state === "succeeded") this.reload();
    }));
    this.element = h("section", { class: "panel loop-panel", id: "suggestions-panel" },
      h("h2", {}, "Where to label next"), this.list);
    this.reload();
  }

  reload(): void {
    void loopApi.suggestions(this.host.ctx.info.id).then((run) => this.render(run)).catch((e: unknown) => this.notify(String(e), "error"));
  }

  private render(run: Run | null): void {
    const open = openSuggestions(run);
    const warning = partialLayerWarning(run);
    const notice = warning === null ? [] : [h("div", { class: "layer-partial" }, warning)];
    if (run === null || open.length === 0) {
      this.list.replaceChildren(...notice, h("div", { class: "muted" }, run === null ? "Segment the volume to see where the model is least sure." : "All suggestions dismissed."));
      return;
    }
    const volumeId = this.host.ctx.info.id;
    this.list.replaceChildren(...notice, ...open.map(({ index, s }) => {
      const dismiss = h("button", { class: "btn small dismiss", title: "Dismiss this region", "aria-label": "dismiss", disabled: !this.host.ctx.canPaint }, "×");
      const card = h("div", { class: "suggestion", "data-index": index, title: "Open the viewer here" },
        h("img", { src: thumbnailUrl(volumeId, s), alt: `slice ${s.z}`, width: 64, height: 64, loading: "lazy" }),
        h("div", { class: "suggestion-text" },
          h("div", {}, `z ${s.z} · y ${s.y0}–${s.y1} · x ${s.x0}–${s.x1}`),
          h("div", { class: "muted" }, `uncertainty ${s.score.toFixed(3)}${s.class ? ` · ${s.class}` : ""}`)),
        dismiss);
      this.d.add(listen(card, "click", (ev) => {
        if (ev.target === dismiss) return;
        centreOn(this.host, regionCentre(s));
      }));
      this.d.add(listen(dismiss, "click", () => {
        void loopApi.dismiss(run.id, index).then((r) => this.render(r)).catch((e: unknown) => this.notify(String(e), "error"));
      }));
      return card;
    }));
  }

  dispose(): void {
    this.d.dispose();
  }
}

// ---------------------------------------------------------------- accept prediction under the brush
/**
 * While on, a left-drag in any slice view copies the prediction under the brush (the
 * toolbar's radius) into the manual layer: one server stroke, added to this user's undo
 * history so Ctrl+Z takes it back like painting.
 */
class AcceptTool implements Disposable {
  readonly element: HTMLElement;
  private readonly d = new DisposableSet();
  private on = false;

  constructor(private readonly host: LoopHost, private readonly notify: (t: string, k: "info" | "error") => void) {
    const button = h("button", { class: "btn wide", id: "accept-prediction", "aria-pressed": "false",
      title: "Drag over the prediction to copy it into your labels (undo with Ctrl+Z)" }, "Accept prediction (brush)");
    const hint = h("div", { class: "muted", id: "accept-hint", hidden: true }, "Drag over the prediction; Esc or the button ends.");
    const setOn = (on: boolean) => {
      this.on = on;
      button.setAttribute("aria-pressed", String(on));
      hint.hidden = !on;
      if (on && host.ctx.tools.tool.value !== "brush") host.ctx.tools.tool.value = "brush"; // shows the brush outline
    };
    this.d.add(listen(button, "click", () => setOn(!this.on)));
    this.d.add(listen(window, "keydown", (ev: KeyboardEvent) => {
      if (ev.key === "Escape" && this.on) setOn(false);
    }));
    const sync = () => {
      const can = host.ctx.canPaint && host.ctx.session.versions.value.prediction !== undefined;
      button.disabled = !can;
      if (!can && this.on) setOn(false);
    };
    this.d.add(host.session.role.watch(sync));
    this.d.add(host.session.versions.subscribe(sync));
    for (const view of host.views) this.bind(view);
    this.element = h("div", { class: "accept-tool" }, button, hint);
  }

  private bind(view: SliceView): void {
    let points: Array<[number, number]> | null = null;
    let index = 0;
    const axis = view.axis;
    const sample = () => {
      const hv = this.host.ctx.hover.value;
      if (points === null || hv === null || hv.axis !== axis) return;
      const p = planeVoxel(axis, hv.point, this.host.ctx.info.shape); // clipped, like the brush
      const last = points[points.length - 1];
      if (last === undefined || Math.hypot(last[0] - p[0], last[1] - p[1]) >= 0.5) points.push(p);
    };
    // Capture on the view, before the canvas: the paint tool never sees this drag.
    this.d.add(listen(view.element, "pointerdown", (ev: PointerEvent) => {
      if (!this.on || ev.button !== 0 || this.host.ctx.spaceHeld.value) return;
      ev.stopPropagation();
      ev.preventDefault();
      const plane = this.host.ctx.focus.value;
      index = axis === "z" ? plane[0] : axis === "y" ? plane[1] : plane[2];
      points = [];
      sample();
    }, { capture: true }));
    this.d.add(this.host.ctx.hover.subscribe(sample));
    this.d.add(listen(window, "pointerup", () => {
      if (points === null) return;
      const gesture = points;
      points = null;
      if (gesture.length === 0) return;
      const uuid = crypto.randomUUID();
      const radius = this.host.ctx.tools.radius.value;
      void loopApi.accept(this.host.ctx.info.id, { uuid, axis, index, points: gesture, radius }).then((r) => {
        const history = this.host.session.history;
        history.add(r.uuid, "accept prediction");
        history.acknowledge(r.uuid, r.version);
        const versions = this.host.session.versions.value;
        if ((versions.manual ?? 0) < r.version) this.host.session.versions.value = { ...versions, manual: r.version };
      }).catch((e: unknown) => this.notify(String(e instanceof Error ? e.message : e), "error"));
    }));
  }

  dispose(): void {
    this.d.dispose();
  }
}

/** Build the model-loop and cells panels into the sidebar (after its first panel). */
export function mountModelPanels(sidebar: HTMLElement, host: LoopHost): Disposable {
  const d = new DisposableSet();
  const info = host.ctx.info;
  const jobs = d.add(new VolumeJobs(info.id, info.project.id, host.socket, host.session));
  const notify = (text: string, kind: "info" | "error") => host.session.notices.dispatch(text, kind);
  const training = d.add(new TrainingPanel(host, jobs, notify));
  const accept = d.add(new AcceptTool(host, notify));
  training.element.append(accept.element);
  const suggestions = d.add(new SuggestionsPanel(host, jobs, notify));
  const models = d.add(new ModelsPanel(host, jobs, notify));
  const cells = d.add(new CellsPanel(host, jobs, notify));
  // A job made a layer this page did not have (prediction after Segment, cells_auto after
  // Segment cells): read the volume again and draw it, no reload.
  const addLayers = async () => {
    try {
      const fresh = await api.volume(info.id);
      for (const layer of missingLayers(host.ctx.layers.map((l) => l.name), fresh.layers)) {
        if (host.ctx.addLayer(layer) !== null) notify(`New layer "${layer.name}" is shown.`, "info");
      }
    } catch (e: unknown) {
      notify(`Could not show the new layer: ${String(e)}`, "error");
    }
  };
  d.add(jobs.newLayer.add(() => void addLayers()));
  const anchor = sidebar.firstElementChild?.nextSibling ?? null;
  for (const el of [training.element, suggestions.element, models.element, cells.element]) sidebar.insertBefore(el, anchor);
  d.add(() => {
    for (const el of [training.element, suggestions.element, models.element, cells.element]) el.remove();
  });
  return d;
}
