/** Which tool, class and brush the user has chosen, as observable values. */
import type { LabelClass, LayerInfo } from "../api/types";
import { Trackable } from "../core/trackable";

export type ToolName = "pan" | "brush" | "eraser" | "fill" | "polygon" | "picker";
export const PAINT_TOOLS: readonly ToolName[] = ["brush", "eraser", "fill", "polygon"];

export const MIN_RADIUS = 0.5;
export const MAX_RADIUS = 64;

/** Next brush radius for `[` (direction -1) and `]` (+1): ~15 % steps, at least 0.5 voxel. */
export function stepRadius(radius: number, direction: 1 | -1): number {
  const step = Math.max(0.5, Math.round(radius * 0.15 * 2) / 2);
  return Math.min(MAX_RADIUS, Math.max(MIN_RADIUS, radius + direction * step));
}

export class ToolState {
  readonly tool = new Trackable<ToolName>("brush");
  readonly radius = new Trackable(4);
  readonly classValue: Trackable<number>;
  readonly instanceMode = new Trackable(false);
  readonly cellId = new Trackable(1);

  constructor(
    readonly classes: readonly LabelClass[],
    readonly layers: readonly LayerInfo[],
  ) {
    const first = classes.find((c) => c.kind === "semantic");
    this.classValue = new Trackable(first?.value ?? 1);
  }

  /** Palette entries in key order 1..9: semantic classes, then the cell instance class. */
  get palette(): LabelClass[] {
    const semantic = this.classes.filter((c) => c.kind === "semantic");
    const instance = this.classes.filter((c) => c.kind === "instance");
    return [...semantic, ...(this.instanceLayer !== null ? instance : [])];
  }

  get semanticLayer(): string {
    return this.layers.find((l) => l.name === "manual")?.name ??
      this.layers.find((l) => l.kind === "labels")?.name ?? "manual";
  }

  get instanceLayer(): string | null {
    return this.layers.find((l) => l.kind === "instances")?.name ?? null;
  }

  /** Layer a paint tool writes to now. */
  get activeLayer(): string {
    const inst = this.instanceLayer;
    return this.instanceMode.value && inst !== null ? inst : this.semanticLayer;
  }

  /** Value a paint tool writes now (0 for the eraser). */
  get paintValue(): number {
    if (this.tool.value === "eraser") return 0;
    return this.instanceMode.value ? this.cellId.value : this.classValue.value;
  }

  selectPaletteEntry(c: LabelClass): void {
    if (c.kind === "instance") {
      this.instanceMode.value = true;
    } else {
      this.instanceMode.value = false;
      this.classValue.value = c.value;
    }
    if (this.tool.value === "pan" || this.tool.value === "picker" || this.tool.value === "eraser") {
      this.tool.value = "brush";
    }
  }
}
