/**
 * Solo a layer (napari's alt-click on the eye): show one label layer over the image and hide
 * the rest; soloing it again gives back what was shown before.
 */

export interface SoloState {
  /** The layer shown alone. */
  layer: string;
  /** Visibility of every layer before the solo began. */
  saved: Readonly<Record<string, boolean>>;
}

export interface SoloOutcome {
  visible: Record<string, boolean>;
  state: SoloState | null;
}

/**
 * The visibility after soloing `target`, given the current visibility and the solo under way
 * (if any). Layers named in `keep` (the image) stay as they are; a layer unknown at the solo's
 * start keeps its current visibility when the solo ends.
 */
export function soloToggle(
  current: Readonly<Record<string, boolean>>,
  target: string,
  state: SoloState | null,
  keep: readonly string[] = ["image"],
): SoloOutcome {
  if (state !== null && state.layer === target) {
    const visible: Record<string, boolean> = {};
    for (const [name, v] of Object.entries(current)) visible[name] = state.saved[name] ?? v;
    return { visible, state: null };
  }
  const saved = state?.saved ?? { ...current };
  const visible: Record<string, boolean> = {};
  for (const [name, v] of Object.entries(current)) visible[name] = keep.includes(name) ? v : name === target;
  return { visible, state: { layer: target, saved } };
}
