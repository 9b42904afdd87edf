/** Layer list (visibility, opacity, solo) with the image contrast window. */
import { type Disposable, DisposableSet, type Disposer, listen } from "../core/disposable";
import { h } from "../core/dom";
import type { LayerDisplay, ViewerContext } from "./context";
import { type SoloState, soloToggle } from "./solo";

const TITLES: Record<string, string> = {
  image: "Image",
  manual: "Manual labels",
  prediction: "Predictions",
  cells: "Cells",
  cells_auto: "Cells (automatic)",
  review: "Review markers",
};

export class LayersPanel implements Disposable {
  readonly element: HTMLElement;
  private readonly disposers = new DisposableSet();
  private readonly contrast: HTMLElement;
  private solo: SoloState | null = null;
  /** The last row of a tile layer: rows of layers added later go after it. */
  private lastTileRow: HTMLElement | null = null;

  constructor(private readonly ctx: ViewerContext) {
    const rows = ctx.layers.map((layer) => this.row(layer));
    this.lastTileRow = rows[rows.length - 1] ?? null;

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
    // A job's new layer (prediction, cells_auto) gets its row at once, no reload.
    this.disposers.add(ctx.layerAdded.add((layer) => {
      const row = this.row(layer);
      this.element.insertBefore(row, this.lastTileRow?.nextSibling ?? this.contrast);
      this.lastTileRow = row;
      row.classList.add("just-added");
    }));
  }

  /** Show `name` alone over the image, or end its solo (napari's alt-click on the eye). */
  toggleSolo(name: string): void {
    const current = Object.fromEntries(this.ctx.layers.map((l) => [l.name, l.visible.value]));
    const { visible, state } = soloToggle(current, name, this.solo);
    this.solo = state;
    for (const l of this.ctx.layers) l.visible.value = visible[l.name] ?? l.visible.value;
    for (const el of this.element.querySelectorAll<HTMLElement>(".layer-row")) {
      el.classList.toggle("solo", el.dataset.layer === state?.layer);
    }
  }

  /** Add a row for a layer drawn by a feature outside the tile layers (e.g. review markers). */
  addLayer(layer: LayerDisplay): Disposer {
    const row = this.row(layer, false);
    this.element.insertBefore(row, this.contrast);
    return () => row.remove();
  }

  /** Add a section (e.g. the diff chooser) below the layer rows. */
  addSection(section: HTMLElement): Disposer {
    this.element.insertBefore(section, this.contrast);
    return () => section.remove();
  }

  /** A row of the layer list (visibility checkbox, opacity slider) for `layer`. */
  private row(layer: LayerDisplay, canSolo = true): HTMLElement {
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
    const solo = layer.kind === "image" || !canSolo ? null : h("button", {
      class: "btn small layer-solo", "aria-label": `solo ${layer.name}`,
      title: "Show only this layer over the image; again to bring the others back (or Alt-click the box)",
    }, "solo");
    const row: HTMLElement = h(
      "div",
      { class: "layer-row", id: `layer-${layer.name}`, "data-layer": layer.name, "data-kind": layer.kind },
      h("div", { class: "layer-head" }, h("label", { class: "layer-name" }, check, h("span", { title: TITLES[layer.name] ?? layer.name }, TITLES[layer.name] ?? layer.name))),
      h("div", { class: "layer-opacity-row" }, opacity, value),
      solo,
    );
    if (solo !== null) {
      this.disposers.add(listen(solo, "click", () => this.toggleSolo(layer.name)));
      // Alt-click on the box solos instead of toggling (napari, webKnossos).
      this.disposers.add(listen(check, "click", (ev: MouseEvent) => {
        if (!ev.altKey) return;
        ev.preventDefault();
        this.toggleSolo(layer.name);
      }));
    }
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
