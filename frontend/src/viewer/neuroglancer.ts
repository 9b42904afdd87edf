/**
 * "Open in Neuroglancer": this volume's OME-Zarr (image and label layers) in the
 * Neuroglancer app, at the crosshair, zoom and layer visibility of the current view.
 *
 * The store is read through a signed, expiring link minted by the server on each click
 * (GET /api/volumes/<id>/store-link/): Neuroglancer runs on another origin, where it can
 * send neither our session cookie nor a token header. The state goes in the URL
 * fragment (`#!{json}`), which browsers never send to a server.
 */
import { request } from "../api/http";
import type { VolumeInfo, Zyx } from "../api/types";
import { type Disposable, type Disposer, listen } from "../core/disposable";
import { h } from "../core/dom";
import { parseUrlState, type UrlState } from "./url_state";

/** The server's answer to GET /api/volumes/<id>/store-link/. */
export interface StoreLink {
  /** Absolute URL of the store's root, ending in "/". */
  url: string;
  /** Unix seconds after which the link stops working. */
  expires: number;
  zarr_format: 2 | 3;
  ngff_version: string;
  /** Label layers in the store, under labels/<name>/. */
  layers: string[];
  /** The Neuroglancer app to open. */
  neuroglancer: string;
}

export interface NeuroglancerLayer {
  type: "image" | "segmentation";
  name: string;
  source: string;
  visible?: boolean;
  shaderControls?: { normalized: { range: [number, number] } };
  segmentColors?: Record<string, string>;
}

export interface NeuroglancerState {
  dimensions: Record<"x" | "y" | "z", [number, "m"]>;
  /** [x, y, z] in voxels of `dimensions`; Neuroglancer puts an OME-Zarr voxel's centre at its index. */
  position: [number, number, number];
  crossSectionScale?: number;
  layers: NeuroglancerLayer[];
  selectedLayer: { layer: string; visible: boolean };
  layout: string;
}

/** The data-source URL Neuroglancer needs for a folder of the store: the scheme names the zarr version. */
export function zarrSource(link: StoreLink, path = ""): string {
  const base = link.url.endsWith("/") ? link.url : `${link.url}/`;
  return `zarr${link.zarr_format}://${base}${path}`;
}

/**
 * The Neuroglancer state of a volume's store at a view of the viewer.
 *
 * OME-Zarr axes are z, y, x in nanometres; Neuroglancer's global dimensions are set to the
 * level-0 voxel size, so the position is in voxels. Class layers keep the project's class
 * colours; cell layers get Neuroglancer's own colours. Layers hidden in the viewer start hidden.
 */
export function neuroglancerState(info: VolumeInfo, link: StoreLink, view: UrlState = {}): NeuroglancerState {
  const [vz, vy, vx] = info.voxel_size_nm;
  const focus: Zyx = view.focus ?? [Math.floor(info.shape[0] / 2), Math.floor(info.shape[1] / 2), Math.floor(info.shape[2] / 2)];
  const hidden = new Set(view.hidden ?? []);
  const kinds = new Map(info.layers.map((l) => [l.name, l.kind]));
  const classColors = Object.fromEntries(
    info.classes.filter((c) => c.kind === "semantic").map((c) => [String(c.value), c.color]),
  );
  const image: NeuroglancerLayer = {
    type: "image",
    name: info.name,
    source: zarrSource(link),
    shaderControls: { normalized: { range: [info.window[0], info.window[1]] } },
  };
  const labels = link.layers.map((name): NeuroglancerLayer => {
    const layer: NeuroglancerLayer = { type: "segmentation", name, source: zarrSource(link, `labels/${name}/`) };
    if (hidden.has(name)) layer.visible = false;
    if (kinds.get(name) === "labels" && Object.keys(classColors).length > 0) layer.segmentColors = classColors;
    return layer;
  });
  const state: NeuroglancerState = {
    dimensions: { x: [vx * 1e-9, "m"], y: [vy * 1e-9, "m"], z: [vz * 1e-9, "m"] },
    // OME-Zarr voxels are centred on their index (Neuroglancer's zarr/ome.ts shifts them by half a
    // voxel), so index + 0.5 would sit on the border with the next slice and show that one.
    position: [focus[2], focus[1], focus[0]],
    layers: [image, ...labels],
    selectedLayer: { layer: info.name, visible: false },
    layout: "4panel",
  };
  // The viewer's zoom is screen px per nm; Neuroglancer's is canonical voxels (the smallest) per px.
  if (view.zoom !== undefined && view.zoom > 0) state.crossSectionScale = 1 / view.zoom / Math.min(vx, vy, vz);
  return state;
}

/** The Neuroglancer app's URL that opens `state`. */
export function neuroglancerUrl(app: string, state: NeuroglancerState): string {
  const base = app.split("#")[0]!;
  return `${base}#!${encodeURIComponent(JSON.stringify(state))}`;
}

/** The header button: mints a store link, then opens Neuroglancer on the view in this page's URL. */
export class NeuroglancerButton implements Disposable {
  readonly element: HTMLButtonElement;
  private readonly off: Disposer;

  constructor(info: VolumeInfo, fetchLink: (id: number) => Promise<StoreLink> = fetchStoreLink) {
    this.element = h("button", { class: "btn small", id: "open-neuroglancer", type: "button",
      title: "Open this volume and its label layers in Neuroglancer, at this view (a link valid for a few hours)" },
    "Open in Neuroglancer");
    this.off = listen(this.element, "click", () => {
      this.element.disabled = true;
      fetchLink(info.id)
        .then((link) => {
          const url = neuroglancerUrl(link.neuroglancer, neuroglancerState(info, link, parseUrlState(window.location.hash)));
          window.open(url, "_blank", "noopener");
        })
        .catch((err: unknown) => {
          this.element.title = `Could not open Neuroglancer: ${String(err)}`;
        })
        .finally(() => {
          this.element.disabled = false;
        });
    });
  }

  dispose(): void {
    this.off();
  }
}

function fetchStoreLink(id: number): Promise<StoreLink> {
  return request<StoreLink>("GET", `/api/volumes/${id}/store-link/`);
}
