/**
 * What napari and webKnossos users reach for around the slice views: the `?` list of every
 * binding, one view maximised, and a legend of the label colours shown.
 */
import { toHex, instanceColor } from "../annotation/colors";
import { type Disposable, DisposableSet, listen } from "../core/disposable";
import { h } from "../core/dom";
import { Trackable } from "../core/trackable";
import type { Axis } from "../api/types";
import type { ViewerContext } from "./context";
import { bindingGroups, bindingKeys } from "./keymap";
import type { SliceView } from "./slice_view";

/** The `?` overlay: every binding of keymap.ts by group; Esc, `?` or a click outside closes it. */
export class ShortcutOverlay implements Disposable {
  readonly element: HTMLElement;
  private readonly d = new DisposableSet();

  constructor() {
    const groups = bindingGroups().map(([group, list]) => h("section", { class: "keys-group" },
      h("h3", {}, group),
      h("table", {}, ...list.map((b) => h("tr", { "data-action": b.action },
        h("td", { class: "keys-keys" }, ...bindingKeys(b).split(" · ").flatMap((k, i) => [i > 0 ? " " : "", h("kbd", {}, k)])),
        h("td", {}, b.label))))));
    const box = h("div", { class: "keys-box", role: "dialog", "aria-label": "Keyboard and mouse" },
      h("div", { class: "keys-head" }, h("h2", {}, "Keyboard and mouse"), h("span", { class: "muted" }, "? or Esc closes")),
      h("div", { class: "keys-grid" }, ...groups));
    this.element = h("div", { class: "keys-overlay", id: "keys-overlay", hidden: true }, box);
    this.d.add(listen(this.element, "click", (ev) => {
      if (ev.target === this.element) this.toggle(false);
    }));
  }

  get open(): boolean {
    return !this.element.hidden;
  }

  toggle(show = !this.open): void {
    this.element.hidden = !show;
  }

  dispose(): void {
    this.d.dispose();
  }
}

/** One slice view fills the grid (M over it, or its corner button); again brings the three back. */
export class Maximiser implements Disposable {
  readonly maximised = new Trackable<Axis | null>(null);
  private readonly d = new DisposableSet();

  constructor(grid: HTMLElement, views: readonly SliceView[]) {
    for (const view of views) {
      const button = h("button", { class: "view-max", title: "Maximise this view (M); again for all three", "aria-label": `maximise ${view.axis}` }, "⤢");
      view.element.append(button);
      this.d.add(listen(button, "pointerdown", (ev) => ev.stopPropagation()));
      this.d.add(listen(button, "click", () => this.toggle(view.axis)));
      this.d.add(() => button.remove());
    }
    this.d.add(this.maximised.watch((axis) => {
      grid.classList.toggle("has-max", axis !== null);
      for (const view of views) {
        view.element.classList.toggle("max", view.axis === axis);
        const button = view.element.querySelector(".view-max");
        if (button !== null) button.textContent = view.axis === axis ? "⤡" : "⤢";
      }
    }));
  }

  toggle(axis: Axis): void {
    this.maximised.value = this.maximised.value === axis ? null : axis;
  }

  dispose(): void {
    this.d.dispose();
  }
}

/** The colours of the label layers shown: each class of a class layer, a hue per cell for cells. */
export class Legend implements Disposable {
  readonly element: HTMLElement;
  readonly shown = new Trackable(true);
  private readonly d = new DisposableSet();

  constructor(private readonly ctx: ViewerContext) {
    this.element = h("div", { class: "legend", id: "legend", "aria-label": "colour legend" });
    const render = () => this.render();
    const follow = (l: { visible: Trackable<boolean> }) => this.d.add(l.visible.subscribe(render));
    ctx.layers.forEach(follow);
    this.d.add(ctx.layerAdded.add((l) => {
      follow(l);
      render();
    }));
    this.d.add(this.shown.watch(render));
  }

  toggle(): void {
    this.shown.value = !this.shown.value;
  }

  private render(): void {
    const shown = this.ctx.layers.filter((l) => l.kind !== "image" && l.visible.value);
    this.element.hidden = !this.shown.value || shown.length === 0;
    const classes = this.ctx.info.classes.filter((c) => c.kind === "semantic");
    const blocks = [];
    const classLayers = shown.filter((l) => l.kind === "labels").map((l) => l.name);
    if (classLayers.length > 0) {
      blocks.push(h("div", { class: "legend-title" }, classLayers.join(", ")),
        ...classes.map((c) => h("div", { class: "legend-row", "data-class": c.name },
          h("span", { class: "legend-swatch", style: `background: ${c.color}` }), c.name)));
    }
    const cellLayers = shown.filter((l) => l.kind === "instances").map((l) => l.name);
    if (cellLayers.length > 0) {
      blocks.push(h("div", { class: "legend-title" }, cellLayers.join(", ")),
        h("div", { class: "legend-row" }, ...[1, 2, 3, 4].map((id) => h("span", { class: "legend-swatch small", style: `background: ${toHex(instanceColor(id))}` })),
          " a colour per cell"));
    }
    this.element.replaceChildren(...blocks, h("div", { class: "legend-hint muted" }, "L hides"));
  }

  dispose(): void {
    this.d.dispose();
  }
}
