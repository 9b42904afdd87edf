/**
 * Every keyboard and mouse binding of the viewer, in one table: the key handler dispatches
 * through it and the `?` overlay and the Keys panel list it, so what is shown is what works.
 */

export interface KeyEventLike {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
}

interface Combo {
  key: string;
  /** Ctrl (Cmd on a Mac) held; default: not held. */
  mod?: boolean;
  /** Shift held or not; default: either (Shift often multiplies, e.g. ten slices). */
  shift?: boolean;
}

export type Group = "Navigate" | "View" | "Paint" | "Edit";

export interface Binding {
  action: string;
  group: Group;
  label: string;
  combos: readonly Combo[];
  /** How the keys are written in the overlay, where the combos alone read badly (1–9, the mouse). */
  display?: string;
}

const TOOL_BINDINGS: Binding[] = [
  ["pan", "h", "Pan / crosshair tool"], ["brush", "b", "Brush"], ["eraser", "e", "Eraser"],
  ["fill", "f", "Flood fill"], ["polygon", "p", "Polygon / lasso fill"], ["picker", "i", "Label picker"],
].map(([tool, key, label]) => ({ action: `tool:${tool}`, group: "Paint" as const, label: label!, combos: [{ key: key! }] }));

export const BINDINGS: readonly Binding[] = [
  { action: "help", group: "View", label: "Show or hide this list", combos: [{ key: "?" }] },
  { action: "slicePrev", group: "Navigate", label: "Previous slice of the view under the mouse (Shift: 10)", combos: [{ key: "ArrowUp" }, { key: "ArrowLeft" }, { key: "PageUp" }] },
  { action: "sliceNext", group: "Navigate", label: "Next slice (Shift: 10)", combos: [{ key: "ArrowDown" }, { key: "ArrowRight" }, { key: "PageDown" }] },
  { action: "fit", group: "Navigate", label: "Fit every view to the volume", combos: [{ key: "Home" }] },
  { action: "mouse:zoom", group: "Navigate", label: "Zoom", combos: [], display: "wheel" },
  { action: "mouse:slice", group: "Navigate", label: "Change slice", combos: [], display: "Ctrl / Shift + wheel" },
  { action: "mouse:pan", group: "Navigate", label: "Pan whatever the tool", combos: [], display: "Space + drag · middle-drag" },
  { action: "mouse:crosshair", group: "Navigate", label: "Set the crosshair (never paints)", combos: [], display: "double-click" },
  { action: "maximise", group: "View", label: "Maximise the view under the mouse, or back to three", combos: [{ key: "m" }] },
  { action: "view3d", group: "View", label: "Show or hide the 3D view beside the slices", combos: [{ key: "d" }] },
  { action: "legend", group: "View", label: "Show or hide the colour legend", combos: [{ key: "l" }] },
  { action: "mouse:solo", group: "View", label: "Show one layer alone over the image", combos: [], display: "Alt-click a layer's box · solo" },
  ...TOOL_BINDINGS,
  { action: "class", group: "Paint", label: "Pick class 1–9 of the palette", combos: "123456789".split("").map((key) => ({ key })), display: "1 – 9" },
  { action: "brushSmaller", group: "Paint", label: "Smaller brush", combos: [{ key: "[" }] },
  { action: "brushBigger", group: "Paint", label: "Bigger brush", combos: [{ key: "]" }] },
  { action: "newCell", group: "Paint", label: "New cell id", combos: [{ key: "n" }] },
  { action: "finishPolygon", group: "Paint", label: "Close the polygon", combos: [{ key: "Enter" }] },
  { action: "cancel", group: "Paint", label: "Cancel the gesture; close this list", combos: [{ key: "Escape" }] },
  { action: "undo", group: "Edit", label: "Undo your last stroke (also after a reload)", combos: [{ key: "z", mod: true, shift: false }] },
  { action: "redo", group: "Edit", label: "Redo", combos: [{ key: "z", mod: true, shift: true }, { key: "y", mod: true }] },
];

const KEY_NAMES: Record<string, string> = {
  ArrowUp: "↑", ArrowDown: "↓", ArrowLeft: "←", ArrowRight: "→", PageUp: "PgUp", PageDown: "PgDn", Escape: "Esc",
};

/** How a binding's keys are written: "Ctrl+Shift+Z", "↑ ← PgUp". */
export function bindingKeys(b: Binding): string {
  if (b.display !== undefined) return b.display;
  return b.combos.map((c) => `${c.mod ? "Ctrl+" : ""}${c.shift ? "Shift+" : ""}${KEY_NAMES[c.key] ?? (c.key.length === 1 ? c.key.toUpperCase() : c.key)}`).join(" · ");
}

function matches(c: Combo, ev: KeyEventLike): boolean {
  const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  if (key !== c.key && ev.key !== c.key) return false;
  if ((ev.ctrlKey || ev.metaKey) !== (c.mod ?? false)) return false;
  if (c.shift !== undefined && ev.shiftKey !== c.shift) return false;
  return !ev.altKey;
}

/** The binding a key press triggers, if any ("?" needs Shift on most layouts, so Shift is free there). */
export function bindingFor(ev: KeyEventLike, bindings: readonly Binding[] = BINDINGS): Binding | null {
  return bindings.find((b) => b.combos.some((c) => matches(c, ev))) ?? null;
}

/** The bindings by group, in the order of the table, for the overlay. */
export function bindingGroups(bindings: readonly Binding[] = BINDINGS): Array<[Group, Binding[]]> {
  const groups = new Map<Group, Binding[]>();
  for (const b of bindings) groups.set(b.group, [...(groups.get(b.group) ?? []), b]);
  return [...groups];
}
