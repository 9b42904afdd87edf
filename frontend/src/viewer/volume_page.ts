/**
 * The volume page: reads the shell's data attributes, loads the volume metadata, opens
 * the websocket and assembles the views, toolbar, layer and history panels, status bar
 * and keyboard shortcuts. Everything it creates is released by dispose().
 */
import { api } from "../api/http";
import { VolumeSocket, websocketUrl } from "../api/socket";
import { isRole, type VolumeInfo, type Zyx } from "../api/types";
import { HistoryPanel } from "../annotation/history_panel";
import { AnnotationSession } from "../annotation/session";
import { ToolController } from "../annotation/tool_controller";
import { Toolbar } from "../annotation/toolbar";
import { stepRadius, type ToolName, ToolState } from "../annotation/tools";
import { type Disposable, DisposableSet, every, listen } from "../core/disposable";
import { h } from "../core/dom";
import { mountReview } from "../review/mount";
import { mountModelPanels } from "../training/panels";
import { type LayerDisplay, ViewerContext } from "./context";
import { sliceCount } from "./geometry";
import { BINDINGS, bindingFor, bindingKeys } from "./keymap";
import { LayersPanel } from "./layers_panel";
import { PanelFolds } from "./panel_folds";
import { Legend, Maximiser, ShortcutOverlay } from "./view_chrome";
import { View3d } from "./view3d";
import { PresenceBar } from "./presence_bar";
import { NeuroglancerButton } from "./neuroglancer";
import { SliceView } from "./slice_view";
import { TileCache } from "./tile_cache";
import { formatUrlState, parseUrlState, type UrlState } from "./url_state";

function isTextInput(el: EventTarget | null): boolean {
  return el instanceof HTMLInputElement && !["range", "checkbox", "button"].includes(el.type)
    || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement;
}

export class VolumePage implements Disposable {
  private readonly disposers = new DisposableSet();

  static async mount(root: HTMLElement): Promise<VolumePage> {
    const volumeId = Number(root.dataset.volumeId);
    if (!Number.isInteger(volumeId)) throw new TypeError(`data-volume-id is not an integer: ${root.dataset.volumeId}`);
    root.replaceChildren(h("div", { class: "loading" }, "Loading volume…"));
    let info: VolumeInfo;
    try {
      info = await api.volume(volumeId);
    } catch (err) {
      root.replaceChildren(h("div", { class: "loading error" }, `Could not load volume ${volumeId}: ${String(err)}`));
      throw err;
    }
    const role = root.dataset.role;
    if (isRole(role)) info = { ...info, role: info.role ?? role };
    const wsPath = root.dataset.wsPath ?? `/ws/volumes/${volumeId}/`;
    return new VolumePage(root, info, wsPath);
  }

  constructor(root: HTMLElement, info: VolumeInfo, wsPath: string) {
    const d = this.disposers;
    const socket = d.add(new VolumeSocket(websocketUrl(wsPath, window.location)));
    const session = d.add(new AnnotationSession(info, socket));
    d.add(socket.messages.add((m) => session.handle(m)));
    const tools = new ToolState(info.classes, info.layers);
    const cache = d.add(new TileCache());
    const ctx = new ViewerContext(info, session, tools, cache);
    const controller = new ToolController(ctx, () => ctx.redraw.dispatch());
    d.add(() => controller.flushPendingClick()); // a click made just before leaving still paints

    const views = (["z", "y", "x"] as const).map((axis) => d.add(new SliceView(axis, ctx, controller)));
    const [xy, xz, yz] = views as [SliceView, SliceView, SliceView];
    // A link is a view: crosshair and slice, XY zoom and centre, layers shown, opacities.
    const restore = (url: UrlState, { recentre }: { recentre: boolean }) => {
      if (url.focus !== undefined) ctx.focus.value = url.focus.map((v, i) => Math.min(info.shape[i]! - 1, Math.max(0, v))) as Zyx;
      for (const layer of ctx.layers) {
        if (url.hidden !== undefined) layer.visible.value = !url.hidden.includes(layer.name);
        const opacity = url.opacity?.[layer.name];
        if (opacity !== undefined) layer.opacity.value = opacity;
      }
      const { zoom, center } = url;
      if (zoom !== undefined || center !== undefined) {
        xy.openAt((v) => {
          const f = ctx.focus.value;
          const [centerRow, centerCol] = center ?? (zoom !== undefined ? [f[1] + 0.5, f[2] + 0.5] : [v.centerRow, v.centerCol]);
          return { centerRow, centerCol, pxPerNm: zoom ?? v.pxPerNm };
        });
      } else if (recentre && url.focus !== undefined) {
        for (const v of views) v.centerOnFocus();
      }
    };
    restore(parseUrlState(window.location.hash), { recentre: false });

    // ---- toolbar actions
    const undo = () => session.undo();
    const redo = () => session.redo();
    const toggleComplete = () => {
      const z = ctx.focus.value[0];
      session.setComplete("z", z, !session.isComplete("z", z));
    };
    const knownCellIds = new Set<number>();
    const newCell = () => {
      const layer = info.layers.find((l) => l.kind === "instances");
      let next = Math.max(tools.cellId.value, layer?.max_value ?? 0, ...knownCellIds) + 1;
      while (knownCellIds.has(next)) next++;
      knownCellIds.add(next);
      tools.cellId.value = next;
      tools.instanceMode.value = true;
      if (tools.tool.value !== "brush" && tools.tool.value !== "polygon" && tools.tool.value !== "fill") tools.tool.value = "brush";
    };
    d.add(tools.cellId.subscribe((id) => knownCellIds.add(id)));
    const toolbar = d.add(new Toolbar(ctx, { undo, redo, toggleComplete, newCell }));
    // Undo survives a reload: once the socket says who we are, our saved strokes join the history.
    let restored = false;
    d.add(session.user.watch((user) => {
      if (restored || user === "" || !ctx.canPaint) return;
      restored = true;
      for (const layer of info.layers.filter((l) => l.editable !== false)) {
        void api.strokes(info.id, layer.name).then((rows) => session.restoreHistory(layer.name, rows)).catch(() => undefined);
      }
    }));

    // ---- slice bar (XY slice)
    const Z = sliceCount(info.shape, "z");
    const slider = h("input", { type: "range", id: "slice-slider", min: 0, max: Z - 1, step: 1, "aria-label": "z slice" });
    const sliceLabel = h("span", { id: "slice-label", class: "slice-label" });
    const prev = h("button", { class: "btn small", id: "slice-prev", title: "Previous slice (↑ / PageUp)" }, "‹");
    const next = h("button", { class: "btn small", id: "slice-next", title: "Next slice (↓ / PageDown)" }, "›");
    d.add(listen(slider, "input", () => ctx.setSlice("z", Number(slider.value))));
    d.add(listen(prev, "click", () => ctx.stepSlice("z", -1)));
    d.add(listen(next, "click", () => ctx.stepSlice("z", 1)));
    const syncSlice = () => {
      const z = ctx.focus.value[0];
      slider.value = String(z);
      sliceLabel.textContent = `z ${z} / ${Z}`;
      sliceLabel.classList.toggle("complete", session.isComplete("z", z));
    };
    d.add(ctx.focus.watch(syncSlice));
    d.add(session.complete.subscribe(syncSlice));

    // ---- connection status
    // #status holds exactly "connected" / "connecting…" / "offline"; unsent strokes go beside it.
    const status = h("span", { id: "status", class: "status", "data-state": "connecting" });
    const pendingBadge = h("span", { id: "pending", class: "pending" });
    const syncStatus = () => {
      const st = socket.state.value;
      const pending = socket.pending.value;
      status.dataset.state = st;
      status.textContent = st === "connected" ? "connected" : st === "connecting" ? "connecting…" : "offline";
      pendingBadge.textContent = pending > 0 ? `${pending} unsent` : "";
    };
    d.add(socket.state.watch(syncStatus));
    d.add(socket.pending.subscribe(syncStatus));
    const userBadge = h("span", { class: "user", id: "user-badge" });
    const syncUser = () => (userBadge.textContent = `${session.user.value || "—"} · ${session.role.value}`);
    d.add(session.user.watch(syncUser));
    d.add(session.role.subscribe(syncUser));

    // ---- status bar
    const cursor = h("span", { id: "cursor-info", class: "cursor-info" }, "—");
    const levelInfo = h("span", { id: "level-info", class: "level-info" });
    d.add(ctx.hover.watch((hv) => {
      if (hv === null) {
        cursor.textContent = "—";
        return;
      }
      const v = hv.point.map(Math.floor);
      const inside = v.every((c, i) => c >= 0 && c < info.shape[i]!);
      const nm = v.map((c, i) => ((c + 0.5) * info.voxel_size_nm[i]!).toFixed(0));
      cursor.textContent = `z ${v[0]}  y ${v[1]}  x ${v[2]}   ·   ${nm[0]}, ${nm[1]}, ${nm[2]} nm${inside ? "" : "  (outside)"}`;
    }));
    const syncLevel = () => {
      const zoom = xy.view.value.pxPerNm * info.voxel_size_nm[2];
      levelInfo.textContent = `zoom ${zoom >= 1 ? zoom.toFixed(1) : zoom.toFixed(2)}× · level ${xy.level.value}/${info.levels.length - 1}`;
    };
    d.add(xy.view.subscribe(syncLevel));
    d.add(xy.level.watch(syncLevel));

    // ---- notices
    const toasts = h("div", { class: "toasts", id: "toasts", "aria-live": "polite" });
    d.add(session.notices.add((text, kind) => {
      const t = h("div", { class: `toast ${kind}` }, text);
      toasts.append(t);
      setTimeout(() => t.remove(), kind === "error" ? 6000 : 3500);
    }));
    d.add(every(5000, () => session.prune()));

    // ---- URL state
    let hashTimer: ReturnType<typeof setTimeout> | null = null;
    const writeHash = () => {
      if (hashTimer !== null) clearTimeout(hashTimer);
      hashTimer = setTimeout(() => {
        const v = xy.view.value;
        history.replaceState(null, "", formatUrlState({
          focus: ctx.focus.value, zoom: v.pxPerNm, center: [v.centerRow, v.centerCol],
          hidden: ctx.layers.filter((l) => !l.visible.value).map((l) => l.name),
          opacity: Object.fromEntries(ctx.layers.map((l) => [l.name, l.opacity.value])),
        }));
      }, 250);
    };
    d.add(ctx.focus.subscribe(writeHash));
    d.add(xy.view.subscribe(writeHash));
    const hashFollows = (layer: LayerDisplay) => {
      d.add(layer.visible.subscribe(writeHash));
      d.add(layer.opacity.subscribe(writeHash));
    };
    ctx.layers.forEach(hashFollows);
    d.add(ctx.layerAdded.add(hashFollows));
    d.add(() => {
      if (hashTimer !== null) clearTimeout(hashTimer);
    });
    // A link to a spot of this same volume (a comment's #z=&y=&x=) moves the views there.
    d.add(listen(window, "hashchange", () => restore(parseUrlState(window.location.hash), { recentre: true })));

    const layers = d.add(new LayersPanel(ctx));
    const view3d = d.add(new View3d(ctx));
    const viewSide = h("div", { class: "view-side" }, xz.element, yz.element, view3d.element);
    d.add(view3d.open.subscribe((on) => viewSide.classList.toggle("with-3d", on)));
    const viewGrid = h("div", { class: "view-grid" }, xy.element, viewSide);
    const button3d = h("button", { class: "btn small", id: "view3d-button", title: "3D view of a label layer beside the slices (D)" }, "3D");
    d.add(listen(button3d, "click", () => view3d.toggle()));
    d.add(view3d.open.watch((on) => button3d.setAttribute("aria-pressed", String(on))));
    const maximise = d.add(new Maximiser(viewGrid, views));
    const legend = d.add(new Legend(ctx));
    const presence = d.add(new PresenceBar(ctx, socket, views));
    const historyPanel = d.add(new HistoryPanel(session.history));
    const overlay = d.add(new ShortcutOverlay());
    const helpButton = h("button", { class: "btn small", id: "keys-button", title: "Keyboard and mouse (?)" }, "Keys ?");
    d.add(listen(helpButton, "click", () => overlay.toggle()));
    const help = h(
      "section",
      { class: "panel help" },
      h("h2", {}, "Keys"),
      h("p", {}, BINDINGS.filter((b) => !b.action.startsWith("mouse:") && b.action !== "cancel")
        .map((b) => `${bindingKeys(b)} ${b.label.split(" (")[0]!.toLowerCase()}`).join(" · "), " · ? all keys"),
    );

    const layout = h(
      "div",
      { class: "em-app" },
      h(
        "header",
        { class: "em-topbar" },
        h("span", { class: "crumbs" }, `${info.project.name} / `, h("strong", {}, info.name)),
        h("span", { class: "dims" }, `${info.shape.join(" × ")} vox · ${info.voxel_size_nm.join(" × ")} nm`),
        h("span", { class: "spacer" }),
        d.add(new NeuroglancerButton(info)).element,
        presence.element,
        userBadge,
        pendingBadge,
        button3d,
        helpButton,
        status,
      ),
      toolbar.element,
      h(
        "main",
        { class: "views" },
        viewGrid,
        legend.element,
        h("div", { class: "slice-bar" }, prev, slider, next, sliceLabel),
      ),
      h("aside", { class: "sidebar" }, layers.element, historyPanel.element, help),
      h("footer", { class: "statusbar" }, cursor, h("span", { class: "spacer" }), levelInfo),
      toasts,
      overlay.element,
    );
    root.replaceChildren(layout);
    d.add(mountModelPanels(layout.querySelector<HTMLElement>(".sidebar")!, { ctx, socket, session, views }));
    const auditUrl = root.dataset.auditUrl;
    d.add(mountReview(layout.querySelector<HTMLElement>(".sidebar")!, { ctx, views, layers }, auditUrl ? { auditUrl } : {}));
    d.add(new PanelFolds(layout.querySelector<HTMLElement>(".sidebar")!));
    root.classList.add("em-root");

    // ---- keyboard: every binding comes from keymap.ts, which the overlay lists too
    let hoveredAxis: "z" | "y" | "x" = "z";
    d.add(ctx.hover.subscribe((hv) => {
      if (hv !== null) hoveredAxis = hv.axis;
    }));
    const axisUnderMouse = () => ctx.hover.value?.axis ?? hoveredAxis;
    const actions: Record<string, (ev: KeyboardEvent) => void> = {
      undo,
      redo,
      help: () => overlay.toggle(),
      slicePrev: (ev) => ctx.stepSlice(axisUnderMouse(), ev.shiftKey ? -10 : -1),
      sliceNext: (ev) => ctx.stepSlice(axisUnderMouse(), ev.shiftKey ? 10 : 1),
      fit: () => {
        for (const v of views) v.fit();
      },
      maximise: () => maximise.toggle(axisUnderMouse()),
      legend: () => legend.toggle(),
      view3d: () => view3d.toggle(),
      brushSmaller: () => tools.radius.update((r) => stepRadius(r, -1)),
      brushBigger: () => tools.radius.update((r) => stepRadius(r, 1)),
      newCell: () => {
        if (ctx.canPaint && tools.instanceLayer !== null) newCell();
      },
      finishPolygon: () => controller.finishPolygon(),
      cancel: () => {
        if (overlay.open) overlay.toggle(false);
        else controller.cancel();
      },
      class: (ev) => {
        const entry = tools.palette[Number(ev.key) - 1];
        if (entry !== undefined && ctx.canPaint) tools.selectPaletteEntry(entry);
      },
    };
    d.add(listen(window, "keydown", (ev: KeyboardEvent) => {
      if (isTextInput(ev.target)) return;
      if (ev.key === " " && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
        ev.preventDefault();
        ctx.spaceHeld.value = true;
        return;
      }
      const binding = bindingFor(ev);
      if (binding === null) return;
      if (binding.action.startsWith("tool:")) {
        const tool = binding.action.slice(5) as ToolName;
        if (ctx.canPaint || tool === "pan" || tool === "picker") tools.tool.value = tool;
        return;
      }
      const run = actions[binding.action];
      if (run === undefined) return;
      if (binding.combos.some((c) => c.mod) || binding.action.startsWith("slice")) ev.preventDefault();
      run(ev);
    }));
    d.add(listen(window, "keyup", (ev: KeyboardEvent) => {
      if (ev.key === " ") ctx.spaceHeld.value = false;
    }));
    d.add(listen(window, "blur", () => (ctx.spaceHeld.value = false)));
    d.add(ctx.spaceHeld.subscribe((on) => layout.classList.toggle("space-pan", on)));
    d.add(tools.tool.watch((tool) => (layout.dataset.tool = tool)));

    // Test and debugging hook: lets browser tests drop the socket and inspect state.
    (window as unknown as { emViewer?: unknown }).emViewer = { ctx, socket, session, views };
  }

  dispose(): void {
    this.disposers.dispose();
  }
}
