/** Jobs page: the project's jobs with live progress bars and Cancel buttons.
 *  Progress arrives over the project websocket; a REST poll every 5 s covers a dropped socket. */
import { api } from "../api/http";
import { type Job, parseServerMessages } from "../api/types";
import { type Disposable, DisposableSet, every, listen } from "../core/disposable";
import { h } from "../core/dom";
import { Trackable } from "../core/trackable";
import { isActive, percent, relativeTime, sortJobs, upsertJob } from "./jobs_model";

export class JobsPage implements Disposable {
  readonly jobs = new Trackable<Job[]>([]);
  private readonly disposers = new DisposableSet();
  private readonly tbody: HTMLTableSectionElement;
  private readonly note: HTMLElement;

  constructor(root: HTMLElement, private readonly projectId: number) {
    this.tbody = h("tbody");
    this.note = h("span", { class: "jobs-note", id: "jobs-note" }, "loading…");
    root.replaceChildren(
      h(
        "div",
        { class: "jobs-app" },
        h("header", {}, h("h1", {}, "Jobs"), this.note),
        h(
          "table",
          { class: "jobs-table", id: "jobs-table" },
          h("thead", {}, h("tr", {}, ...["#", "Kind", "State", "Progress", "Message", "Created", ""].map((t) => h("th", {}, t)))),
          this.tbody,
        ),
      ),
    );
    this.disposers.add(this.jobs.subscribe(() => this.render()));
    this.disposers.add(every(5000, () => void this.refresh()));
    this.listen();
    this.disposers.add(listen(this.tbody, "click", (ev: Event) => {
      const target = ev.target as HTMLElement;
      const btn = target.closest<HTMLButtonElement>("button[data-cancel]");
      if (btn !== null) void this.cancel(Number(btn.dataset.cancel), btn);
    }));
    void this.refresh();
  }

  /** Follow job events on /ws/projects/<id>/, reconnecting after a drop. */
  private listen(): void {
    let socket: WebSocket | null = null;
    let closed = false;
    let retry: ReturnType<typeof setTimeout> | null = null;
    const open = (): void => {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      socket = new WebSocket(`${scheme}://${location.host}/ws/projects/${this.projectId}/`);
      socket.onmessage = (ev: MessageEvent<string>) => {
        for (const msg of parseServerMessages(ev.data)) {
          if (msg.type === "job" && msg.job !== undefined) this.jobs.value = sortJobs(upsertJob(this.jobs.value, msg.job));
        }
      };
      socket.onclose = () => {
        if (!closed) retry = setTimeout(open, 2000);
      };
    };
    open();
    this.disposers.add({
      dispose: () => {
        closed = true;
        if (retry !== null) clearTimeout(retry);
        socket?.close();
      },
    });
  }

  async refresh(): Promise<void> {
    try {
      this.jobs.value = sortJobs(await api.jobs(this.projectId));
      this.note.textContent = `updated ${new Date().toLocaleTimeString()}`;
      this.note.classList.remove("error");
    } catch (err) {
      this.note.textContent = `could not load jobs: ${String(err)}`;
      this.note.classList.add("error");
    }
  }

  private async cancel(id: number, btn: HTMLButtonElement): Promise<void> {
    btn.disabled = true;
    btn.textContent = "Cancelling…";
    try {
      await api.cancelJob(id);
    } catch (err) {
      this.note.textContent = `cancel failed: ${String(err)}`;
      this.note.classList.add("error");
    }
    await this.refresh();
  }

  private render(): void {
    const rows = this.jobs.value.map((j) => {
      const pct = percent(j.progress);
      return h(
        "tr",
        { class: `job state-${j.state}`, id: `job-${j.id}`, "data-job-id": j.id, "data-state": j.state },
        h("td", { class: "num" }, String(j.id)),
        h("td", {}, j.kind, j.volume !== null ? h("span", { class: "muted" }, ` · volume ${j.volume}`) : null),
        h("td", {}, h("span", { class: `pill ${j.state}` }, j.state)),
        h(
          "td",
          { class: "progress-cell" },
          h("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct },
            h("div", { class: "progress-fill", style: `width:${pct}%` })),
          h("span", { class: "pct" }, `${pct}%`),
        ),
        h("td", { class: "message", title: j.message }, j.message),
        h("td", { class: "muted", title: j.created }, relativeTime(j.created)),
        h("td", {}, isActive(j) ? h("button", { class: "btn small", "data-cancel": j.id }, "Cancel") : null),
      );
    });
    if (rows.length === 0) rows.push(h("tr", {}, h("td", { colspan: 7, class: "muted empty" }, "No jobs yet.")));
    this.tbody.replaceChildren(...rows);
  }

  dispose(): void {
    this.disposers.dispose();
  }
}
