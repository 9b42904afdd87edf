/** Tool buttons, brush size, class palette, cell instance controls, undo/redo, slice completeness. */
import { type Disposable, DisposableSet, listen } from "../core/disposable";
import { h } from "../core/dom";
import type { ViewerContext } from "../viewer/context";
import { BINDINGS, bindingKeys } from "../viewer/keymap";
import { instanceColor, toHex } from "./colors";
import { MAX_RADIUS, MIN_RADIUS, type ToolName } from "./tools";

// The keys come from the viewer's one table of bindings (keymap.ts), as the ? overlay's do.
const TOOL_INFO: Array<{ name: ToolName; label: string; key: string; icon: string; paints: boolean }> = ([
  { name: "pan", label: "Pan / crosshair", paints: false },
  { name: "brush", label: "Brush", paints: true },
  { name: "eraser", label: "Eraser", paints: true },
  { name: "fill", label: "Flood fill", paints: true },
  { name: "polygon", label: "Polygon / lasso fill", paints: true },
  { name: "picker", label: "Label picker", paints: false },
] as const).map((t) => {
  const binding = BINDINGS.find((b) => b.action === `tool:${t.name}`);
  const key = binding === undefined ? "" : bindingKeys(binding);
  return { ...t, key, icon: key };
});

export class Toolbar implements Disposable {
  readonly element: HTMLElement;
  private readonly disposers = new DisposableSet();

  constructor(
    ctx: ViewerContext,
    actions: { undo: () => void; redo: () => void; toggleComplete: () => void; newCell: () => void },
  ) {
    const t = ctx.tools;
    const d = this.disposers;

    const toolButtons = TOOL_INFO.map((info) => {
      const b = h(
        "button",
        {
          class: "tool",
          id: `tool-${info.name}`,
          title: `${info.label} (${info.key})`,
          "data-tool": info.name,
          "data-paints": info.paints ? "1" : "0",
          "aria-pressed": "false",
        },
        h("span", { class: "tool-icon", "aria-hidden": "true" }, info.icon),
        h("span", { class: "tool-name" }, info.label.split(" ")[0]),
      );
      d.add(listen(b, "click", () => (t.tool.value = info.name)));
      return b;
    });
    d.add(t.tool.watch((tool) => {
      for (const b of toolButtons) b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
    }));

    const size = h("input", { type: "range", id: "brush-size", min: MIN_RADIUS, max: MAX_RADIUS, step: 0.5, "aria-label": "brush radius (voxels)" });
    const sizeValue = h("span", { class: "value", id: "brush-size-value" });
    d.add(t.radius.watch((r) => {
      size.value = String(r);
      sizeValue.textContent = `r ${r}`;
    }));
    d.add(listen(size, "input", () => (t.radius.value = Number(size.value))));

    const palette = t.palette.map((c, i) => {
      const b = h(
        "button",
        {
          class: "swatch",
          "data-class-value": c.value,
          "data-class-kind": c.kind,
          title: `${c.name} (${i + 1})`,
          "aria-pressed": "false",
        },
        h("span", { class: "swatch-color", style: `background:${c.kind === "instance" ? "conic-gradient(#f66,#fd6,#6f9,#6cf,#c6f,#f66)" : c.color}` }),
        h("span", { class: "swatch-name" }, c.name),
        h("kbd", {}, i < 9 ? String(i + 1) : ""),
      );
      d.add(listen(b, "click", () => t.selectPaletteEntry(c)));
      return b;
    });
    const syncPalette = () => {
      for (const b of palette) {
        const inst = b.dataset.classKind === "instance";
        const on = inst ? t.instanceMode.value : !t.instanceMode.value && Number(b.dataset.classValue) === t.classValue.value;
        b.setAttribute("aria-pressed", String(on));
      }
    };
    d.add(t.classValue.watch(syncPalette));
    d.add(t.instanceMode.subscribe(syncPalette));

    const cellId = h("input", { type: "number", id: "cell-id", min: 1, step: 1, "aria-label": "cell id" });
    const cellSwatch = h("span", { class: "cell-swatch" });
    const newCell = h("button", { class: "btn small", id: "cell-new", title: "New cell id (N)" }, "New id");
    const pickCell = h("button", { class: "btn small", id: "cell-pick", title: "Pick an existing cell id" }, "Pick");
    d.add(t.cellId.watch((id) => {
      cellId.value = String(id);
      cellSwatch.style.background = toHex(instanceColor(id));
    }));
    d.add(listen(cellId, "change", () => {
      const v = Math.floor(Number(cellId.value));
      if (v >= 1) t.cellId.value = v;
      else cellId.value = String(t.cellId.value);
    }));
    d.add(listen(newCell, "click", actions.newCell));
    d.add(listen(pickCell, "click", () => {
      t.instanceMode.value = true;
      t.tool.value = "picker";
    }));
    const instanceBox = h(
      "div",
      { class: "instance-box", id: "instance-controls" },
      h("div", { class: "instance-row" }, cellSwatch, h("span", {}, "cell"), cellId),
      h("div", { class: "instance-row" }, newCell, pickCell),
    );
    d.add(t.instanceMode.watch((on) => instanceBox.classList.toggle("active", on)));

    const undo = h("button", { class: "btn", id: "undo", title: "Undo your last stroke (Ctrl+Z)" }, "↶ Undo");
    const redo = h("button", { class: "btn", id: "redo", title: "Redo (Ctrl+Shift+Z)" }, "↷ Redo");
    d.add(listen(undo, "click", actions.undo));
    d.add(listen(redo, "click", actions.redo));
    const syncUndo = () => {
      undo.disabled = !ctx.session.history.canUndo;
      redo.disabled = !ctx.session.history.canRedo;
    };
    d.add(ctx.session.history.onChange(syncUndo));
    syncUndo();

    const complete = h("button", { class: "btn wide", id: "mark-complete", "aria-pressed": "false", title: "Unpainted voxels of this XY slice count as background for training" }, "Mark slice complete");
    d.add(listen(complete, "click", actions.toggleComplete));
    const syncComplete = () => {
      const on = ctx.session.isComplete("z", ctx.focus.value[0]);
      complete.setAttribute("aria-pressed", String(on));
      complete.textContent = on ? "✓ Slice complete" : "Mark slice complete";
    };
    d.add(ctx.focus.subscribe(syncComplete));
    d.add(ctx.session.complete.watch(syncComplete));

    const readOnly = h("p", { class: "read-only", id: "read-only" }, "View only: your role cannot paint.");
    const paintSections = [
      h("section", { class: "panel" }, h("h2", {}, "Brush"), h("div", { class: "size-row" }, size, sizeValue)),
      h("section", { class: "panel" }, h("h2", {}, "Classes"), h("div", { class: "palette", id: "palette" }, ...palette), t.instanceLayer !== null ? instanceBox : null),
      h("section", { class: "panel" }, h("div", { class: "btn-row" }, undo, redo), complete),
    ];
    this.element = h(
      "aside",
      { class: "toolbar", id: "toolbar" },
      h("section", { class: "panel" }, h("h2", {}, "Tools"), h("div", { class: "tools" }, ...toolButtons)),
      readOnly,
      ...paintSections,
    );
    d.add(ctx.session.role.watch(() => {
      const can = ctx.canPaint;
      readOnly.hidden = can;
      for (const s of paintSections) s.hidden = !can;
      for (const b of toolButtons) b.hidden = !can && b.dataset.paints === "1";
      if (!can && toolPaints(t.tool.value)) t.tool.value = "pan";
    }));
  }

  dispose(): void {
    this.disposers.dispose();
  }
}

function toolPaints(tool: ToolName): boolean {
  return TOOL_INFO.find((i) => i.name === tool)?.paints ?? false;
}
