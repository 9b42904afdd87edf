/** Layer list (visibility, opacity) with the image contrast window. */
import { type Disposable, DisposableSet, type Disposer, listen } from "../core/disposable";
import { h } from "../core/dom";
import type { LayerDisplay, ViewerContext } from "./context";

const TITLES: Record<string, string> = {
  image: "Image",
  manual: "Manual labels",
  prediction: "Predictions",
  cells: "Cells",
  review: "Review markers",
};

export class LayersPanel implements Disposable {
  readonly element: HTMLElement;
  private readonly disposers = new DisposableSet();
  private readonly contrast: HTMLElement;

  constructor(ctx: ViewerContext) {
    const rows = ctx.layers.map((layer) => this.row(layer));

    const [lo, hi] = windowRange(ctx.info.dtype);
    const loIn = h("input", { type: "range", id: "window-lo", min: lo, max: hi, step: 1, "aria-label": "window low" });
    const hiIn = h("input", { type: "range", id: "window-hi", min: lo, max: hi, step: 1, "aria-label": "window high" });
    const text = h("span", { class: "window-value", id: "window-value" });
    const reset = h("button", { class: "btn small", id: "window-reset", title: "Reset to the suggested window" }, "Auto");
    this.disposers.add(ctx.window.watch(([a, b]) => {
      loIn.value = String(a);
      hiIn.value = String(b);
      text.textContent = `${Math.round(a)} – ${Math.round(b)}`;
    }));
    const apply = () => {
      let a = Number(loIn.value);
      let b = Number(hiIn.value);
      if (b <= a) {
        if (document.activeElement === loIn) a = b - 1;
        else b = a + 1;
      }
      ctx.window.value = [a, b];
    };
    this.disposers.add(listen(loIn, "change", apply));
    this.disposers.add(listen(hiIn, "change", apply));
    this.disposers.add(listen(loIn, "input", () => (text.textContent = `${loIn.value} – ${hiIn.value}`)));
    this.disposers.add(listen(hiIn, "input", () => (text.textContent = `${loIn.value} – ${hiIn.value}`)));
    this.disposers.add(listen(reset, "click", () => (ctx.window.value = [ctx.info.window[0], ctx.info.window[1]])));

    this.contrast = h(
      "div",
      { class: "contrast", id: "contrast" },
      h("div", { class: "contrast-head" }, h("span", {}, "Contrast window"), text, reset),
      h("label", { class: "contrast-row" }, h("span", {}, "min"), loIn),
      h("label", { class: "contrast-row" }, h("span", {}, "max"), hiIn),
    );
    this.element = h("section", { class: "panel", id: "layers-panel" }, h("h2", {}, "Layers"), ...rows, this.contrast);
  }

  /** Add a row for a layer drawn by a feature outside the tile layers (e.g. review markers). */
  addLayer(layer: LayerDisplay): Disposer {
    const row = this.row(layer);
    this.element.insertBefore(row, this.contrast);
    return () => row.remove();
  }

  /** Add a section (e.g. the diff chooser) below the layer rows. */
  addSection(section: HTMLElement): Disposer {
    this.element.insertBefore(section, this.contrast);
    return () => section.remove();
  }

  /** A row of the layer list (visibility checkbox, opacity slider) for `layer`. */
  private row(layer: LayerDisplay): HTMLElement {
    const check = h("input", { type: "checkbox", class: "layer-visible", "aria-label": `show ${layer.name}` });
    const opacity = h("input", {
      type: "range",
      class: "layer-opacity",
      min: 0,
      max: 1,
      step: 0.05,
      "aria-label": `${layer.name} opacity`,
    });
    const value = h("span", { class: "layer-opacity-value" });
    const row: HTMLElement = h(
      "div",
      { class: "layer-row", id: `layer-${layer.name}`, "data-layer": layer.name, "data-kind": layer.kind },
      h("label", { class: "layer-name" }, check, h("span", {}, TITLES[layer.name] ?? layer.name)),
      h("div", { class: "layer-opacity-row" }, opacity, value),
    );
    this.disposers.add(layer.visible.watch((v) => {
      check.checked = v;
      row.classList.toggle("hidden-layer", !v);
    }));
    this.disposers.add(layer.opacity.watch((v) => {
      opacity.value = String(v);
      value.textContent = `${Math.round(v * 100)}%`;
    }));
    this.disposers.add(listen(check, "change", () => (layer.visible.value = check.checked)));
    this.disposers.add(listen(opacity, "input", () => (layer.opacity.value = Number(opacity.value))));
    return row;
  }

  dispose(): void {
    this.disposers.dispose();
  }
}

/** Slider range of the contrast window for a dtype. */
export function windowRange(dtype: string): [number, number] {
  switch (dtype) {
    case "uint8":
      return [0, 255];
    case "uint16":
      return [0, 65535];
    case "int8":
      return [-128, 127];
    case "int16":
      return [-32768, 32767];
    default:
      return [0, 255];
  }
}
