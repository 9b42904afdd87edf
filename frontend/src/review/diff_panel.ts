/**
 * Diff of two label layers, chosen in the layer panel: the disagreement tiles drawn over the
 * slice views, agreement per class (Dice) and per cell for instance layers, and the slices
 * that disagree most (click to go there).
 */
import { type Disposable, DisposableSet, listen } from "../core/disposable";
import { h } from "../core/dom";
import type { TileOverlay } from "../viewer/slice_view";
import { type DiffResult, diffTileUrl, reviewApi } from "./api";
import { jumpTo, type ReviewHost } from "./host";
import { diceClass, formatCount, formatDice, worstSlices } from "./diff_model";

export class DiffPanel implements Disposable {
  readonly element: HTMLElement;
  private readonly d = new DisposableSet();
  private readonly result = h("div", { class: "diff-result", id: "diff-result" });
  private request = 0;

  constructor(private readonly host: ReviewHost) {
    const names = host.ctx.info.layers.map((l) => l.name);
    const select = (id: string, label: string, initial: string | undefined) =>
      h("select", { id, "aria-label": label }, ...names.map((n) => h("option", { value: n, selected: n === initial }, n)));
    const a = select("diff-a", "diff layer A", names.includes("prediction") ? "prediction" : names[0]);
    const b = select("diff-b", "diff layer B", names.includes("manual") ? "manual" : names[1] ?? names[0]);
    const show = h("input", { type: "checkbox", id: "diff-show" });
    const opacity = h("input", { type: "range", id: "diff-opacity", min: 0, max: 1, step: 0.05, value: 0.85, "aria-label": "diff opacity" });

    // Layers of different kinds (class labels vs cell ids) cannot be compared: B offers A's kind only.
    const kindOf = new Map(host.ctx.info.layers.map((l) => [l.name, l.kind]));
    const syncKinds = () => {
      for (const opt of b.options) opt.disabled = kindOf.get(opt.value) !== kindOf.get(a.value);
      if (b.selectedOptions[0]?.disabled) {
        const same = [...b.options].find((o) => !o.disabled && o.value !== a.value) ?? [...b.options].find((o) => !o.disabled);
        if (same !== undefined) b.value = same.value;
      }
    };
    syncKinds();
    this.d.add(listen(a, "change", syncKinds));

    const key = h("div", { class: "diff-key", id: "diff-key", hidden: true });
    const apply = () => {
      const on = show.checked && a.value !== b.value;
      const versions = host.ctx.session.versions.value;
      const [la, lb] = [a.value, b.value];
      const overlay: TileOverlay = {
        key: `diff:${la}@${versions[la] ?? 0}:${lb}@${versions[lb] ?? 0}`,
        url: (t) => `${diffTileUrl(host.ctx.info.id, la, lb, t)}&v=${versions[la] ?? 0}.${versions[lb] ?? 0}`,
        opacity: Number(opacity.value),
      };
      for (const v of host.views) v.overlays.value = on ? [overlay] : [];
      this.element.classList.toggle("active", on);
      key.hidden = !on;
      if (on) key.replaceChildren(...this.colourKey(la, lb, kindOf.get(la)));
      if (on) void this.load(la, lb);
      else if (show.checked) this.result.replaceChildren(h("div", { class: "muted" }, "Pick two different layers."));
      else this.result.replaceChildren();
    };
    for (const el of [a, b, show]) this.d.add(listen(el, "change", apply));
    this.d.add(listen(opacity, "input", apply));
    this.d.add(host.ctx.session.versions.subscribe((next, prev) => {
      if (show.checked && (next[a.value] !== prev[a.value] || next[b.value] !== prev[b.value])) apply();
    }));
    this.d.add(() => {
      for (const v of host.views) v.overlays.value = [];
    });

    this.element = h(
      "div",
      { class: "diff-section", id: "diff-section" },
      h("label", { class: "layer-name diff-toggle" }, show, h("span", {}, "Diff: where A and B disagree")),
      h("div", { class: "diff-pick" }, h("span", {}, "A"), a, h("span", {}, "B"), b),
      h("div", { class: "layer-opacity-row" }, opacity),
      key,
      this.result,
    );
  }

  /** What the overlay's colours mean: only disagreeing voxels are drawn, in B's colour
   *  (A's where B is empty); agreement stays clear. */
  private colourKey(a: string, b: string, kind: string | undefined): Array<HTMLElement | string> {
    const head = h("div", { class: "muted" }, `Drawn only where ${a} and ${b} disagree, in ${b}'s colour (${a}'s where ${b} is empty); where they agree it stays clear.`);
    if (kind === "instances") return [head, h("div", { class: "muted" }, "Each cell keeps its own colour.")];
    const classes = this.host.ctx.info.classes.filter((c) => c.kind === "semantic" && c.value > 0);
    return [head, h("ul", { class: "diff-swatches" }, ...classes.map((c) =>
      h("li", { "data-class": c.name }, h("span", { class: "swatch", style: `background: ${c.color}` }), c.name)))];
  }

  private async load(a: string, b: string): Promise<void> {
    const n = ++this.request;
    this.result.replaceChildren(h("div", { class: "muted" }, "Comparing…"));
    let r: DiffResult;
    try {
      r = await reviewApi.diff(this.host.ctx.info.id, a, b);
    } catch (err) {
      if (n === this.request) this.result.replaceChildren(h("div", { class: "error" }, (err as Error).message));
      return;
    }
    if (n !== this.request) return;
    const pct = r.compared_voxels > 0 ? (100 * r.disagree_voxels) / r.compared_voxels : 0;
    const classRows = Object.entries(r.classes).map(([name, c]) =>
      h("tr", { "data-class": name }, h("td", {}, name), h("td", { class: `dice ${diceClass(c.dice)}` }, formatDice(c.dice)),
        h("td", { title: String(c.a_voxels) }, formatCount(c.a_voxels)), h("td", { title: String(c.b_voxels) }, formatCount(c.b_voxels))));
    const cells = r.cells ?? [];
    const worst = worstSlices(r.slices, 5);
    this.result.replaceChildren(
      h("div", { class: "muted diff-summary", id: "diff-summary" },
        `${r.disagree_voxels.toLocaleString()} of ${r.compared_voxels.toLocaleString()} compared voxels disagree (${pct.toFixed(1)} %)`),
      h("table", { class: "compare-table dice-table", id: "dice-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "class"), h("th", {}, "Dice"), h("th", { title: "voxels of the class in A" }, "A"), h("th", { title: "voxels of the class in B" }, "B"))),
        h("tbody", {}, ...classRows)),
      cells.length === 0 ? "" : h("table", { class: "compare-table dice-table", id: "dice-cells" },
        h("thead", {}, h("tr", {}, h("th", {}, "cell A"), h("th", {}, "cell B"), h("th", {}, "Dice"))),
        h("tbody", {}, ...[...cells].sort((x, y) => x.dice - y.dice).slice(0, 12).map((c) =>
          h("tr", {}, h("td", {}, String(c.a)), h("td", {}, c.b === null ? "—" : String(c.b)),
            h("td", { class: `dice ${diceClass(c.dice)}` }, formatDice(c.dice)))))),
      worst.length === 0 ? "" : h("div", { class: "diff-slices" }, h("span", { class: "muted" }, "most disagreement: "),
        ...worst.map((s) => {
          const btn = h("button", { class: "btn small", "data-z": s.z, title: `${s.disagree} voxels` }, `z ${s.z}`);
          btn.addEventListener("click", () => {
            const f = this.host.ctx.focus.value;
            jumpTo(this.host, [s.z, f[1], f[2]]);
          });
          return btn;
        })),
    );
  }

  dispose(): void {
    this.d.dispose();
  }
}
