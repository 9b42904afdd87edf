/**
 * Entry of the review pages (the "reviews" bundle): the project's review dashboard
 * (with the manager's form), a volume's audit trail, and the user's notifications. The
 * Django templates in emportal/templates/reviews/ are the shells.
 */
import { h } from "../core/dom";
import { type Assignment, type AuditRow, auditCsvUrl, type Notification, reviewApi, type Summary } from "./api";
import { assignmentBody, countByState, describeDetail, filterAudit, type FormValues, STATE_ORDER } from "./dashboard_model";
import { formatTime } from "./host";
import { progressText, STATE_LABELS } from "./workflow";
import "./reviews.css";

interface Choices {
  volumes: Array<{ id: number; name: string; shape_z: number; layers: Array<{ name: string; kind: string }> }>;
  members: Array<{ username: string; role: string }>;
}

const RANK: Record<string, number> = { viewer: 0, annotator: 1, reviewer: 2, manager: 3 };

function stateBadge(state: Assignment["state"]): HTMLElement {
  return h("span", { class: `state-badge state-${state}` }, STATE_LABELS[state]);
}

function progressCell(a: Assignment): HTMLElement {
  const p = a.progress;
  const bar = h("div", { class: "mini-progress" }, ...(["approved", "fixed", "changes_requested"] as const).map((s) =>
    h("div", { class: `seg state-${s}`, style: `width: ${p.total > 0 ? (100 * p[s]) / p.total : 0}%` })));
  return h("div", {}, bar, h("span", { class: "muted small" }, progressText(p, a.scope)));
}

// ---------------------------------------------------------------- dashboard

class Dashboard {
  private readonly counts = h("div", { class: "state-cards", id: "state-cards" });
  private readonly table = h("div", { id: "assignments" });
  private readonly people = h("div", { id: "per-person" });
  private readonly overdue = h("div", { id: "overdue" });
  private filter: string | null = null;
  private mine = false;
  private list: Assignment[] = [];

  constructor(
    root: HTMLElement,
    private readonly projectId: number,
    private readonly isManager: boolean,
  ) {
    const mine = h("input", { type: "checkbox", id: "only-mine" });
    mine.addEventListener("change", () => {
      this.mine = mine.checked;
      void this.load();
    });
    root.replaceChildren(
      this.counts,
      h("div", { class: "dash-grid" },
        h("section", {}, h("div", { class: "row-head" }, h("h2", {}, "Assignments"),
          h("label", { class: "inline-check" }, mine, " only mine")), this.table),
        h("aside", {}, h("h2", {}, "Per person"), this.people, h("h2", {}, "Overdue"), this.overdue)),
    );
    if (isManager) this.bindForm();
    void this.load();
  }

  async load(): Promise<void> {
    try {
      const [list, summary] = await Promise.all([
        reviewApi.list(this.projectId, this.mine ? { mine: true } : {}),
        reviewApi.summary(this.projectId),
      ]);
      this.list = list.results;
      this.render(summary);
    } catch (err) {
      this.table.replaceChildren(h("p", { class: "error" }, `Could not load the assignments: ${(err as Error).message}`));
    }
  }

  private render(summary: Summary): void {
    const counts = countByState(this.list);
    this.counts.replaceChildren(...STATE_ORDER.map((s) => {
      const card = h("button", { class: `state-card state-${s}${this.filter === s ? " active" : ""}`, "data-state": s, type: "button" },
        h("span", { class: "n" }, String(this.mine ? counts[s] : summary.by_state[s] ?? counts[s])), h("span", {}, STATE_LABELS[s]));
      card.addEventListener("click", () => {
        this.filter = this.filter === s ? null : s;
        this.render(summary);
      });
      return card;
    }));
    const shown = this.filter === null ? this.list : this.list.filter((a) => a.state === this.filter);
    if (shown.length === 0) {
      this.table.replaceChildren(h("p", { class: "muted" }, this.list.length === 0 ? "No assignments yet." : "None in this state."));
    } else {
      this.table.replaceChildren(h("table", { class: "table assignments" },
        h("thead", {}, h("tr", {}, ...["#", "Volume", "Layer", "Part", "Reviewer", "Fixer", "Due", "State", "Progress", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, ...shown.map((a) => this.row(a)))));
    }
    this.people.replaceChildren(summary.by_person.length === 0 ? h("p", { class: "muted" }, "Nobody assigned yet.") :
      h("table", { class: "table compact" },
        h("thead", {}, h("tr", {}, h("th", {}, "Person"), h("th", {}, "reviewing"), h("th", {}, "fixing"), h("th", {}, "overdue"))),
        h("tbody", {}, ...summary.by_person.map((p) => h("tr", { "data-user": p.user }, h("td", {}, p.user), h("td", {}, String(p.reviewing)),
          h("td", {}, String(p.fixing)), h("td", { class: p.overdue > 0 ? "late" : "" }, String(p.overdue)))))));
    this.overdue.replaceChildren(summary.overdue.length === 0 ? h("p", { class: "muted" }, "Nothing overdue.") :
      h("ul", { class: "overdue-list" }, ...summary.overdue.map((a) => h("li", {}, h("a", { href: a.url }, `#${a.id} ${a.volume_name} · ${a.layer}`),
        ` due ${a.due ?? "?"} · ${a.fixer ?? a.reviewer ?? ""}`))));
  }

  private row(a: Assignment): HTMLElement {
    const part = a.scope === "cells" ? `${a.cells.length} cells` : a.scope === "volume" ? "whole volume" : `z ${a.z0}–${a.z1 - 1}`;
    const actions = h("td", { class: "row-actions" }, h("a", { class: "button small", href: a.url }, "Open"));
    if (this.isManager) {
      const del = h("button", { class: "link danger", type: "button", title: "Delete this assignment" }, "Delete");
      del.addEventListener("click", () => void this.remove(a));
      actions.append(" ", del);
    }
    return h("tr", { "data-assignment": a.id, class: a.overdue ? "overdue" : "" },
      h("td", {}, String(a.id)), h("td", {}, a.volume_name), h("td", {}, a.layer), h("td", {}, part),
      h("td", {}, a.reviewer ?? "—"), h("td", {}, a.fixer ?? "—"),
      h("td", { class: a.overdue ? "late nowrap" : "nowrap" }, a.due ?? "—"), h("td", {}, stateBadge(a.state)), h("td", {}, progressCell(a)), actions);
  }

  private async remove(a: Assignment): Promise<void> {
    if (!window.confirm(`Delete assignment #${a.id}?`)) return;
    try {
      await reviewApi.remove(a.id);
    } catch (err) {
      window.alert((err as Error).message);
    }
    void this.load();
  }

  private bindForm(): void {
    const form = document.getElementById("assignment-form") as HTMLFormElement | null;
    const data = document.getElementById("assignment-choices");
    if (form === null || data === null) return;
    const choices = JSON.parse(data.textContent ?? "{}") as Choices;
    const $ = <T extends HTMLElement>(id: string) => form.querySelector<T>(`#${id}`)!;
    const volume = $<HTMLSelectElement>("af-volume");
    const layer = $<HTMLSelectElement>("af-layer");
    const scope = $<HTMLSelectElement>("af-scope");
    const z1 = $<HTMLInputElement>("af-z1");
    const status = $<HTMLElement>("af-status");
    volume.replaceChildren(...choices.volumes.map((v) => h("option", { value: v.id }, v.name)));
    const people = (min: string) => choices.members.filter((m) => RANK[m.role]! >= RANK[min]!).map((m) => h("option", { value: m.username }, `${m.username} (${m.role})`));
    $<HTMLSelectElement>("af-reviewer").replaceChildren(...people("reviewer"));
    $<HTMLSelectElement>("af-fixer").replaceChildren(...people("annotator"));
    const syncVolume = () => {
      const v = choices.volumes.find((x) => String(x.id) === volume.value);
      layer.replaceChildren(...(v?.layers ?? []).map((l) => h("option", { value: l.name }, `${l.name} (${l.kind})`)));
      z1.value = String(v?.shape_z ?? 1);
      z1.max = String(v?.shape_z ?? 1);
    };
    const syncScope = () => {
      for (const el of form.querySelectorAll<HTMLElement>(".scope-slices")) el.hidden = scope.value !== "slices";
      for (const el of form.querySelectorAll<HTMLElement>(".scope-cells")) el.hidden = scope.value !== "cells";
    };
    volume.addEventListener("change", syncVolume);
    scope.addEventListener("change", syncScope);
    syncVolume();
    syncScope();
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.submit(form, status);
    });
  }

  private async submit(form: HTMLFormElement, status: HTMLElement): Promise<void> {
    const raw = Object.fromEntries(new FormData(form)) as Record<string, string>;
    const values: FormValues = { volume: "", layer: "", scope: "slices", z0: "0", z1: "0", cells: "", reviewer: "", fixer: "", due: "", note: "", ...raw };
    try {
      const created = await reviewApi.create(this.projectId, assignmentBody(values));
      status.className = "status ok";
      status.textContent = `Assignment #${created.id} created; ${created.reviewer} and ${created.fixer} were notified.`;
      void this.load();
    } catch (err) {
      status.className = "status error";
      status.textContent = (err as Error).message;
    }
  }
}

// ---------------------------------------------------------------- audit trail

class AuditPage {
  private rows: AuditRow[] = [];
  private readonly body = h("tbody", {});
  private readonly count = h("span", { class: "muted", id: "audit-count" });

  constructor(root: HTMLElement, private readonly volumeId: number) {
    const filter = h("input", { type: "search", id: "audit-filter", placeholder: "Filter by person, action, layer or detail" });
    filter.addEventListener("input", () => this.render(filter.value));
    root.replaceChildren(
      h("div", { class: "audit-tools" }, filter, this.count),
      h("table", { class: "table audit-table", id: "audit-table" },
        h("thead", {}, h("tr", {}, ...["When", "Who", "Action", "Layer", "Detail"].map((t) => h("th", {}, t)))), this.body),
    );
    void this.load().then(() => this.render(""));
  }

  private async load(): Promise<void> {
    try {
      this.rows = (await reviewApi.audit(this.volumeId, { limit: 5000 })).results;
    } catch (err) {
      this.body.replaceChildren(h("tr", {}, h("td", { class: "error", colspan: 5 }, (err as Error).message)));
    }
  }

  private render(needle: string): void {
    const rows = filterAudit(this.rows, needle);
    this.count.textContent = `${rows.length} of ${this.rows.length} events · `;
    this.count.append(h("a", { href: auditCsvUrl(this.volumeId) }, "CSV"));
    if (rows.length === 0) {
      this.body.replaceChildren(h("tr", {}, h("td", { class: "muted", colspan: 5 }, "Nothing recorded yet.")));
      return;
    }
    this.body.replaceChildren(...rows.map((r) => h("tr", { class: `audit-row action-${r.action.replace(/[^a-z0-9_-]/gi, "_")}`, "data-action": r.action },
      h("td", { class: "nowrap", title: r.at }, formatTime(r.at, { seconds: true })), h("td", {}, r.actor ?? "—"), h("td", {}, h("code", {}, r.action)),
      h("td", {}, r.layer ?? ""), h("td", { class: "detail" }, describeDetail(r.detail)))));
  }
}

// ---------------------------------------------------------------- notifications

class NotificationsPage {
  private readonly list = h("ul", { class: "notifications", id: "notification-list" });

  constructor(root: HTMLElement) {
    root.replaceChildren(this.list);
    document.getElementById("notifications-read-all")?.addEventListener("click", () => void this.markRead("all"));
    void this.load();
  }

  /** A failed mark was an unhandled rejection: the click did nothing and said nothing. */
  private async markRead(ids: number[] | "all"): Promise<void> {
    try {
      await reviewApi.markRead(ids);
    } catch (err) {
      window.alert((err as Error).message);
    }
    void this.load();
  }

  private async load(): Promise<void> {
    let items: Notification[];
    try {
      items = (await reviewApi.notifications()).results;
    } catch (err) {
      this.list.replaceChildren(h("li", { class: "error" }, (err as Error).message));
      return;
    }
    if (items.length === 0) {
      this.list.replaceChildren(h("li", { class: "muted" }, "No notifications."));
      return;
    }
    this.list.replaceChildren(...items.map((n) => {
      const link = h("a", { href: n.link || "#", class: "notification-link" }, n.text);
      link.addEventListener("click", (ev) => {
        if (n.read) return;
        ev.preventDefault();
        // Follow the link whether or not the mark succeeded; a failure leaves it unread.
        void reviewApi.markRead([n.id]).catch(() => undefined).finally(() => {
          window.location.href = n.link || window.location.href;
        });
      });
      const read = h("button", { class: "link", type: "button", hidden: n.read }, "Mark read");
      read.addEventListener("click", () => void this.markRead([n.id]));
      return h("li", { class: `notification kind-${n.kind}${n.read ? " read" : ""}`, "data-kind": n.kind },
        h("span", { class: "kind" }, n.kind.replace("_", " ")), link, h("span", { class: "muted small" }, formatTime(n.created)), read);
    }));
  }
}

const root = document.getElementById("review-app");
if (root !== null) {
  const mode = root.dataset.mode;
  const projectId = Number(root.dataset.projectId);
  const volumeId = Number(root.dataset.volumeId);
  if (mode === "dashboard" && Number.isInteger(projectId)) new Dashboard(root, projectId, root.dataset.manager === "true");
  else if (mode === "audit" && Number.isInteger(volumeId)) new AuditPage(root, volumeId);
  else if (mode === "notifications") new NotificationsPage(root);
  else root.textContent = `review page without its ids (${mode ?? "no mode"})`;
}
