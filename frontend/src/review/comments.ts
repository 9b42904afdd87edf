/**
 * Pinned comments in the viewer: a store polled from REST, markers drawn over the slice
 * views at their voxel (on the slices they lie on), and the side panel with threads,
 * replies, resolve/reopen and links that open the viewer at the spot.
 */
import { type Disposable, DisposableSet, every, listen } from "../core/disposable";
import { h } from "../core/dom";
import { Signal, Trackable } from "../core/trackable";
import { LayerDisplay } from "../viewer/context";
import { planeToScreen } from "../viewer/view_transform";
import { type Comment, reviewApi } from "./api";
import { cursorVoxel, formatTime, jumpTo, notify, type ReviewHost } from "./host";
import { markersOnSlice, threadNumbers } from "./markers";

const POLL_MS = 8000;

/** The volume's comment threads (roots with their replies), refreshed on demand and every few seconds. */
export class CommentStore implements Disposable {
  readonly threads = new Trackable<Comment[]>([]);
  /** The thread a marker click or a list click selected. */
  readonly selected = new Trackable<number | null>(null);
  readonly showResolved = new Trackable(false);
  private readonly d = new DisposableSet();
  private loading: Promise<void> | null = null;

  constructor(readonly volumeId: number) {
    this.d.add(every(POLL_MS, () => {
      if (document.visibilityState === "visible") void this.reload();
    }));
  }

  reload(): Promise<void> {
    if (this.loading !== null) return this.loading;
    this.loading = reviewApi.comments(this.volumeId)
      .then((r) => {
        this.threads.value = r.results;
      })
      .catch((err: unknown) => console.warn("comments", err))
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  find(id: number): Comment | undefined {
    return this.threads.value.find((c) => c.id === id);
  }

  dispose(): void {
    this.d.dispose();
  }
}

/** DOM pins over each slice view, repositioned after every frame of that view. */
export class CommentMarkers implements Disposable {
  readonly display = new LayerDisplay("review", "labels", 1);
  private readonly d = new DisposableSet();

  constructor(host: ReviewHost, store: CommentStore) {
    for (const view of host.views) {
      const layer = h("div", { class: "review-markers", "data-axis": view.axis });
      view.element.append(layer);
      this.d.add(() => layer.remove());
      const pins = new Map<number, HTMLElement>();
      const place = () => {
        const on = this.display.visible.value && this.display.opacity.value > 0;
        layer.hidden = !on;
        layer.style.opacity = String(this.display.opacity.value);
        const numbers = threadNumbers(store.threads.value);
        const markers = on ? markersOnSlice(store.threads.value, view.axis, view.sliceIndex, { showResolved: store.showResolved.value }) : [];
        const seen = new Set<number>();
        const vp = view.viewport;
        for (const m of markers) {
          const c = m.item;
          seen.add(c.id);
          let pin = pins.get(c.id);
          if (pin === undefined) {
            pin = h("button", { class: "review-marker", "data-comment": c.id, type: "button" });
            const id = c.id;
            this.d.add(listen(pin, "click", (ev) => {
              ev.stopPropagation();
              store.selected.value = id;
            }));
            pins.set(c.id, pin);
            layer.append(pin);
          }
          const [sx, sy] = planeToScreen(view.view.value, vp, m.row, m.col);
          const inside = sx >= -10 && sy >= -10 && sx <= vp.width + 10 && sy <= vp.height + 10;
          pin.hidden = !inside;
          pin.style.transform = `translate(${Math.round(sx)}px, ${Math.round(sy)}px)`;
          const replies = c.replies?.length ?? 0;
          pin.title = `#${numbers.get(c.id) ?? "?"} ${c.author ?? "?"}: ${c.text}${replies > 0 ? ` (${replies} ${replies === 1 ? "reply" : "replies"})` : ""}`;
          pin.textContent = String(numbers.get(c.id) ?? "?");
          pin.classList.toggle("resolved", c.resolved);
          pin.classList.toggle("selected", store.selected.value === c.id);
        }
        for (const [id, pin] of pins) {
          if (!seen.has(id)) {
            pin.remove();
            pins.delete(id);
          }
        }
      };
      this.d.add(view.rendered.add(place));
      this.d.add(store.threads.subscribe(() => view.requestRender()));
      this.d.add(store.selected.subscribe(() => view.requestRender()));
      this.d.add(store.showResolved.subscribe(() => view.requestRender()));
      this.d.add(this.display.visible.subscribe(() => view.requestRender()));
      this.d.add(this.display.opacity.subscribe(() => view.requestRender()));
    }
  }

  dispose(): void {
    this.d.dispose();
  }
}

/** The comments side panel: threads, reply, resolve/reopen, "comment here". */
export class CommentsPanel implements Disposable {
  readonly element: HTMLElement;
  /** A comment was added, resolved or reopened here (the review panel refreshes on it). */
  readonly changed = new Signal();
  private readonly d = new DisposableSet();
  private readonly list: HTMLElement;
  private readonly count: HTMLElement;

  constructor(
    private readonly host: ReviewHost,
    private readonly store: CommentStore,
    private readonly assignmentId: number | null,
  ) {
    const canWrite = host.ctx.canPaint;
    this.count = h("span", { class: "comment-count", id: "comment-count" });
    const showResolved = h("input", { type: "checkbox", id: "comments-show-resolved" });
    this.d.add(listen(showResolved, "change", () => (store.showResolved.value = showResolved.checked)));
    const add = h("button", { class: "btn small", id: "comment-add", title: "Pin a comment at the crosshair", hidden: !canWrite }, "+ Comment here");
    this.list = h("div", { class: "comment-list", id: "comment-list" });
    const composer = h("div", { class: "comment-composer", hidden: true });
    const text = h("textarea", { rows: 2, id: "comment-new-text", placeholder: "Comment (Enter sends)" });
    const where = h("div", { class: "muted comment-where" });
    composer.append(where, text);
    let pinAt: [number, number, number] = [0, 0, 0];
    this.d.add(listen(add, "click", () => {
      pinAt = cursorVoxel(host);
      where.textContent = `at z ${pinAt[0]} y ${pinAt[1]} x ${pinAt[2]}`;
      composer.hidden = false;
      text.focus();
    }));
    this.d.add(listen(text, "keydown", (ev: KeyboardEvent) => {
      if (ev.key === "Escape") {
        composer.hidden = true;
      } else if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        const body = text.value.trim();
        if (body === "") return;
        const [z, y, x] = pinAt;
        void this.post({ z, y, x, text: body, ...(assignmentId !== null ? { assignment: assignmentId } : {}) }).then((ok) => {
          if (ok) {
            text.value = "";
            composer.hidden = true;
          }
        });
      }
    }));

    this.element = h(
      "section",
      { class: "panel comments-panel", id: "comments-panel" },
      h("h2", {}, "Comments ", this.count),
      h("div", { class: "comment-tools" }, add, h("label", { class: "muted" }, showResolved, " resolved")),
      composer,
      this.list,
    );
    this.d.add(store.threads.watch(() => this.render()));
    this.d.add(store.showResolved.subscribe(() => this.render()));
    this.d.add(store.selected.subscribe((id) => {
      this.render();
      if (id === null) return;
      const c = store.find(id);
      if (c !== undefined) jumpTo(host, [c.z, c.y, c.x]);
      this.list.querySelector<HTMLElement>(`[data-thread="${id}"]`)?.scrollIntoView({ block: "nearest" });
    }));
  }

  private async post(body: Parameters<typeof reviewApi.comment>[1]): Promise<boolean> {
    try {
      await reviewApi.comment(this.store.volumeId, body);
      await this.store.reload();
      this.changed.dispatch();
      return true;
    } catch (err) {
      notify(this.host, `Comment not saved: ${(err as Error).message}`, "error");
      return false;
    }
  }

  private async setResolved(c: Comment, resolved: boolean): Promise<void> {
    try {
      await (resolved ? reviewApi.resolve(c.id) : reviewApi.reopen(c.id));
      await this.store.reload();
      this.changed.dispatch();
    } catch (err) {
      notify(this.host, `Could not ${resolved ? "resolve" : "reopen"}: ${(err as Error).message}`, "error");
    }
  }

  private render(): void {
    const all = this.store.threads.value;
    const open = all.filter((c) => !c.resolved).length;
    this.count.textContent = `${open} open`;
    const shown = this.store.showResolved.value ? all : all.filter((c) => !c.resolved);
    if (shown.length === 0) {
      this.list.replaceChildren(h("div", { class: "muted" }, all.length === 0 ? "No comments yet." : "No open comments."));
      return;
    }
    this.list.replaceChildren(...shown.map((c) => this.thread(c)));
  }

  private thread(c: Comment): HTMLElement {
    const canWrite = this.host.ctx.canPaint;
    const link = h("a", { class: "comment-link", href: c.url, title: "Open the viewer at this voxel" }, `z ${c.z} · y ${c.y} · x ${c.x}`);
    link.addEventListener("click", (ev) => {
      ev.preventDefault();
      this.store.selected.value = c.id;
      jumpTo(this.host, [c.z, c.y, c.x]);
    });
    const replies = (c.replies ?? []).map((r) =>
      h("div", { class: "comment-reply" }, h("div", { class: "comment-meta" }, h("strong", {}, r.author ?? "?"), ` · ${formatTime(r.created)}`),
        h("div", { class: "comment-text" }, r.text)));
    const actions = h("div", { class: "comment-actions" });
    if (canWrite) {
      const reply = h("button", { class: "btn small comment-reply-btn" }, "Reply");
      const toggle = h("button", { class: "btn small comment-resolve" }, c.resolved ? "Reopen" : "Resolve");
      toggle.addEventListener("click", () => void this.setResolved(c, !c.resolved));
      reply.addEventListener("click", () => {
        const box = h("textarea", { rows: 2, class: "comment-reply-text", placeholder: "Reply (Enter sends)" });
        box.addEventListener("keydown", (ev) => {
          if (ev.key === "Escape") box.remove();
          if (ev.key !== "Enter" || ev.shiftKey) return;
          ev.preventDefault();
          const text = box.value.trim();
          if (text !== "") void this.post({ z: c.z, y: c.y, x: c.x, text, parent: c.id });
        });
        actions.after(box);
        box.focus();
      });
      actions.append(reply, toggle);
    }
    const el = h(
      "div",
      { class: `comment-thread${c.resolved ? " resolved" : ""}${this.store.selected.value === c.id ? " selected" : ""}`, "data-thread": c.id },
      h("div", { class: "comment-meta" }, h("span", { class: "comment-number", title: "its pin on the slice" },
        `#${threadNumbers(this.store.threads.value).get(c.id) ?? "?"}`), " ", h("strong", {}, c.author ?? "?"), ` · ${formatTime(c.created)} · `, link,
        c.resolved ? h("span", { class: "comment-badge" }, `resolved${c.resolved_by ? ` by ${c.resolved_by}` : ""}`) : null),
      h("div", { class: "comment-text" }, c.text),
      c.assignment !== null && c.assignment !== this.assignmentId
        ? h("a", { class: "comment-review-link", href: `/volumes/${c.volume}/?review=${c.assignment}#z=${c.z}&y=${c.y}&x=${c.x}` },
          `Open review #${c.assignment} here →`)
        : null,
      ...replies,
      actions,
    );
    el.addEventListener("click", (ev) => {
      if ((ev.target as HTMLElement).closest("button, a, textarea") === null) this.store.selected.value = c.id;
    });
    return el;
  }

  dispose(): void {
    this.d.dispose();
  }
}
