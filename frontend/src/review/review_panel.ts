/**
 * Reviewer mode (volume page ?review=<id>): the assignment's progress, stepping through its
 * slices or cells (j / k), per-item decisions (a approve, c request changes with a comment
 * pinned at the cursor voxel, f mark fixed) and the assignment-level transitions the user's
 * role allows in the current state.
 */
import { type Disposable, DisposableSet, listen } from "../core/disposable";
import { h } from "../core/dom";
import { Signal, Trackable } from "../core/trackable";
import type { Role, Zyx } from "../api/types";
import { type AssignmentDetail, type ItemDecision, type ReviewItem, reviewApi, type TransitionAction } from "./api";
import { cursorVoxel, jumpTo, notify, type ReviewHost } from "./host";
import {
  ACTION_LABELS,
  approveBlocker,
  assignmentActions,
  countProgress,
  itemAtFocus,
  itemDecisions,
  itemLabel,
  progressText,
  STATE_LABELS,
  stepItem,
} from "./workflow";

const DECISION_LABELS: Record<ItemDecision, string> = { approve: "Approve", request_changes: "Request changes", fixed: "Fixed" };
const DECISION_KEYS: Record<ItemDecision, string> = { approve: "a", request_changes: "c", fixed: "f" };

type Pending = { kind: "item"; decision: "request_changes" } | { kind: "transition"; action: TransitionAction };

function isTextInput(el: EventTarget | null): boolean {
  return el instanceof HTMLInputElement && !["range", "checkbox", "button"].includes(el.type)
    || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement;
}

export class ReviewPanel implements Disposable {
  readonly element: HTMLElement;
  readonly assignment = new Trackable<AssignmentDetail | null>(null);
  /** Index of the current item in assignment.items. */
  readonly current = new Trackable(-1);
  /** Something changed on the server (comments may have been added). */
  readonly changed = new Signal();
  private readonly d = new DisposableSet();
  private readonly head = h("div", { class: "review-head" });
  private readonly progressBar = h("div", { class: "review-progress" });
  private readonly progressLabel = h("div", { class: "review-progress-label", id: "review-progress" });
  private readonly actions = h("div", { class: "review-actions", id: "review-actions" });
  private readonly itemLine = h("div", { class: "review-item", id: "review-item" });
  private readonly itemButtons = h("div", { class: "review-item-actions", id: "review-item-actions" });
  private readonly strip = h("div", { class: "review-strip", id: "review-strip" });
  private readonly composer = h("div", { class: "review-composer", hidden: true });
  private readonly composerText = h("textarea", { rows: 3, id: "review-comment", placeholder: "What needs changing? (Enter sends, Esc cancels)" });
  private readonly composerWhere = h("div", { class: "muted" });
  private pending: Pending | null = null;
  /** Voxel the pending comment is pinned at; null lets the server pin it at the first open item. */
  private pinAt: Zyx | null = null;
  private busy = false;
  /** Whether the page was opened at a position (#z=&y=&x=); read before the viewer rewrites the hash. */
  private readonly openedAtSpot = /(^#|&)z=/.test(window.location.hash);

  constructor(
    private readonly host: ReviewHost,
    private readonly id: number,
  ) {
    const prev = h("button", { class: "btn small", id: "review-prev", title: "Previous item (k)" }, "‹ k");
    const next = h("button", { class: "btn small", id: "review-next", title: "Next item (j)" }, "j ›");
    const skip = h("input", { type: "checkbox", id: "review-skip", checked: true });
    this.d.add(listen(prev, "click", () => this.step(-1, skip.checked)));
    this.d.add(listen(next, "click", () => this.step(1, skip.checked)));
    const send = h("button", { class: "btn small", id: "review-comment-send" }, "Send");
    const cancel = h("button", { class: "btn small", id: "review-comment-cancel" }, "Cancel");
    this.composer.append(this.composerWhere, this.composerText, h("div", { class: "btn-row" }, send, cancel));
    this.d.add(listen(send, "click", () => void this.submitComment()));
    this.d.add(listen(cancel, "click", () => this.closeComposer()));
    this.d.add(listen(this.composerText, "keydown", (ev: KeyboardEvent) => {
      if (ev.key === "Escape") this.closeComposer();
      else if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        void this.submitComment();
      }
    }));

    this.element = h(
      "section",
      { class: "panel review-panel", id: "review-panel" },
      h("h2", {}, `Review #${id} `, h("a", { class: "review-dash-link", href: `/projects/${host.ctx.info.project.id}/reviews/` }, "dashboard")),
      this.head,
      this.progressBar,
      this.progressLabel,
      this.actions,
      h("div", { class: "review-nav" }, prev, this.itemLine, next),
      h("label", { class: "muted review-skip" }, skip, " skip approved items"),
      this.itemButtons,
      this.composer,
      this.strip,
      h("p", { class: "muted review-keys" }, "j / k next / previous · a approve · c request changes (comment at the cursor) · f fixed"),
    );

    this.d.add(this.assignment.subscribe(() => this.render()));
    this.d.add(this.current.subscribe(() => this.render()));
    this.d.add(host.ctx.session.role.subscribe(() => this.render()));
    // Moving through the volume by hand keeps the current item in step with the view.
    this.d.add(host.ctx.focus.subscribe((f) => {
      const a = this.assignment.value;
      if (a === null) return;
      const i = itemAtFocus(a.items, f);
      if (i >= 0 && a.items[0]?.kind === "slice") this.current.value = i;
    }));
    // Capture phase: these keys mean review decisions here, before the viewer's tool keys see them.
    this.d.add(listen(window, "keydown", (ev: KeyboardEvent) => this.onKey(ev, skip.checked), { capture: true }));
    void this.reload(true);
  }

  get role(): Role {
    return this.host.ctx.session.role.value;
  }

  get item(): ReviewItem | null {
    return this.assignment.value?.items[this.current.value] ?? null;
  }

  async reload(first = false): Promise<void> {
    try {
      const a = await reviewApi.get(this.id);
      this.assignment.value = a;
      if (first) {
        const here = itemAtFocus(a.items, this.host.ctx.focus.value);
        const fromHash = this.openedAtSpot;
        const start = here >= 0 && fromHash ? here : Math.max(0, a.items.findIndex((i) => i.state !== "approved"));
        this.current.value = a.items.length === 0 ? -1 : start;
        // A link with a position (#z=&y=&x=) keeps it; otherwise open at the first open item.
        if (!fromHash && this.item !== null) jumpTo(this.host, this.item.center);
      }
    } catch (err) {
      this.head.replaceChildren(h("div", { class: "error" }, `Could not load review ${this.id}: ${(err as Error).message}`));
    }
  }

  step(delta: number, skipDecided: boolean): void {
    const a = this.assignment.value;
    if (a === null) return;
    const i = stepItem(a.items, this.current.value, delta, { skipDecided });
    if (i < 0) return;
    this.current.value = i;
    jumpTo(this.host, a.items[i]!.center);
  }

  private onKey(ev: KeyboardEvent, skipDecided: boolean): void {
    if (isTextInput(ev.target) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const a = this.assignment.value;
    const item = this.item;
    let handled = true;
    switch (ev.key) {
      case "j":
        this.step(1, skipDecided);
        break;
      case "k":
        this.step(-1, skipDecided);
        break;
      default: {
        const decision = (Object.keys(DECISION_KEYS) as ItemDecision[]).find((k) => DECISION_KEYS[k] === ev.key);
        handled = decision !== undefined && a !== null && item !== null && itemDecisions(item.state, a.state, this.role).includes(decision);
        if (handled) this.decide(decision!);
      }
    }
    if (handled) {
      ev.preventDefault();
      ev.stopImmediatePropagation();
    }
  }

  private decide(decision: ItemDecision): void {
    if (decision === "request_changes") {
      this.openComposer({ kind: "item", decision });
      return;
    }
    const item = this.item;
    if (item === null) return;
    void this.run(async () => {
      await reviewApi.decide(this.id, item, decision);
      notify(this.host, `${itemLabel(item)}: ${decision === "approve" ? "approved" : "marked fixed"}`);
    }).then((ok) => {
      // Approving moves on to the next open item, so a reviewer can walk a range with "a" alone.
      if (ok && decision === "approve") this.step(1, true);
    });
  }

  private transition(action: TransitionAction): void {
    if (action === "request_changes") {
      this.openComposer({ kind: "transition", action });
      return;
    }
    void this.run(async () => {
      const a = await reviewApi.transition(this.id, action);
      notify(this.host, `Review #${this.id}: ${STATE_LABELS[a.state]}`);
    });
  }

  private openComposer(p: Pending): void {
    this.pending = p;
    const flagged = (this.assignment.value?.items ?? []).filter((i) => i.state === "changes_requested");
    if (p.kind === "transition" && flagged.length > 0) {
      // Items already carry their pinned comments: the send-back needs only a summary.
      this.pinAt = null;
      this.composerText.value = `Please fix ${flagged.map(itemLabel).join(", ")} (see the pinned comments).`;
      this.composerWhere.textContent = "Send the whole assignment back to the fixer";
    } else {
      this.pinAt = cursorVoxel(this.host);
      const what = p.kind === "item" && this.item !== null ? itemLabel(this.item) : "the assignment";
      this.composerWhere.textContent = `Request changes on ${what}, pinned at z ${this.pinAt[0]} y ${this.pinAt[1]} x ${this.pinAt[2]}`;
    }
    this.composer.hidden = false;
    this.composerText.focus();
  }

  private closeComposer(): void {
    this.pending = null;
    this.composer.hidden = true;
    this.composerText.value = "";
  }

  private async submitComment(): Promise<void> {
    const p = this.pending;
    const text = this.composerText.value.trim();
    if (p === null) return;
    if (text === "") {
      notify(this.host, "Write what needs changing first.", "error");
      return;
    }
    const pin = this.pinAt === null ? { comment: text } : { comment: text, z: this.pinAt[0], y: this.pinAt[1], x: this.pinAt[2] };
    const item = this.item;
    const ok = await this.run(async () => {
      if (p.kind === "item" && item !== null) await reviewApi.decide(this.id, item, "request_changes", pin);
      else if (p.kind === "transition") await reviewApi.transition(this.id, p.action, pin);
      notify(this.host, "Changes requested");
    });
    if (ok) this.closeComposer();
  }

  /** Run one server action, then refresh; errors become a toast. Returns whether it succeeded. */
  private async run(fn: () => Promise<void>): Promise<boolean> {
    if (this.busy) return false;
    this.busy = true;
    this.element.classList.add("busy");
    try {
      await fn();
      return true;
    } catch (err) {
      notify(this.host, (err as Error).message, "error");
      return false;
    } finally {
      this.busy = false;
      this.element.classList.remove("busy");
      await this.reload();
      this.changed.dispatch();
    }
  }

  private render(): void {
    const a = this.assignment.value;
    if (a === null) return;
    const role = this.role;
    const range = a.scope === "cells" ? `${a.cells.length} cells` : `slices ${a.z0}–${a.z1 - 1}`;
    this.head.replaceChildren(
      h("div", { class: "review-title" }, h("strong", {}, a.layer), ` · ${range} `,
        h("span", { class: `review-state state-${a.state}`, id: "review-state" }, STATE_LABELS[a.state])),
      h("div", { class: "muted" }, `reviewer ${a.reviewer ?? "—"} · fixer ${a.fixer ?? "—"}${a.due ? ` · due ${a.due}` : ""}`,
        a.overdue ? h("span", { class: "review-overdue" }, " overdue") : null),
    );
    if (a.note) this.head.append(h("div", { class: "review-note" }, a.note));
    const p = a.items.length > 0 ? countProgress(a.items) : a.progress;
    this.progressLabel.textContent = progressText(p, a.scope);
    this.progressBar.replaceChildren(...(["approved", "fixed", "changes_requested"] as const).map((s) =>
      h("div", { class: `seg state-${s}`, style: `width: ${p.total > 0 ? (100 * p[s]) / p.total : 0}%` })));

    const blocker = approveBlocker(a.items);
    this.actions.replaceChildren(...assignmentActions(a.state, role).map((action) => {
      const b = h("button", { class: `btn small action-${action}`, "data-action": action }, ACTION_LABELS[action]);
      if (action === "approve" && blocker !== null) {
        b.disabled = true;
        b.title = blocker;
      }
      b.addEventListener("click", () => this.transition(action));
      return b;
    }));
    if (this.actions.childElementCount === 0) {
      this.actions.append(h("span", { class: "muted" }, role === "viewer" ? "Read only." : "Nothing for you to do in this state."));
    }

    const item = this.item;
    this.itemLine.replaceChildren(item === null ? "—" : h("span", {}, h("strong", {}, itemLabel(item)), " · ",
      h("span", { class: `item-state state-${item.state}` }, item.state.replace("_", " "))));
    this.itemButtons.replaceChildren(...(item === null ? [] : itemDecisions(item.state, a.state, role).map((decision) => {
      const b = h("button", { class: `btn small decision-${decision}`, "data-decision": decision },
        DECISION_LABELS[decision], " ", h("kbd", {}, DECISION_KEYS[decision]));
      b.addEventListener("click", () => this.decide(decision));
      return b;
    })));

    this.strip.replaceChildren(...a.items.map((it, i) => {
      const cell = h("button", {
        class: `strip-item state-${it.state}${i === this.current.value ? " current" : ""}`,
        title: `${itemLabel(it)}: ${it.state.replace("_", " ")}${it.decided_by ? ` (${it.decided_by})` : ""}`,
        "data-key": it.key,
      });
      cell.addEventListener("click", () => {
        this.current.value = i;
        jumpTo(this.host, it.center);
      });
      return cell;
    }));
  }

  dispose(): void {
    this.d.dispose();
  }
}
