/** The user's own strokes, newest first, with their state (sending, saved, undone, refused). */
import { type Disposable, DisposableSet } from "../core/disposable";
import { h } from "../core/dom";
import type { StrokeHistory } from "./history";

const STATE_TEXT = { pending: "sending", applied: "saved", undone: "undone", failed: "refused" } as const;

export class HistoryPanel implements Disposable {
  readonly element: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly disposers = new DisposableSet();

  constructor(private readonly history: StrokeHistory) {
    this.list = h("ol", { class: "history-list", id: "history-list" });
    this.element = h("section", { class: "panel", id: "history-panel" }, h("h2", {}, "History"), this.list);
    this.disposers.add(history.onChange(() => this.render()));
    this.render();
  }

  private render(): void {
    const items = [...this.history.entries].reverse().slice(0, 60).map((e) =>
      h(
        "li",
        { class: `history-item state-${e.state}`, "data-uuid": e.uuid, "data-state": e.state },
        h("span", { class: "history-label" }, e.label),
        h("span", { class: "history-state" }, STATE_TEXT[e.state]),
      ),
    );
    if (items.length === 0) items.push(h("li", { class: "history-empty" }, "No strokes yet"));
    this.list.replaceChildren(...items);
  }

  dispose(): void {
    this.disposers.dispose();
  }
}
