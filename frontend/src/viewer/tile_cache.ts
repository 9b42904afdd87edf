/**
 * Tile images by slot. A slot is one tile position (layer, plane, level, ty, tx); its
 * URL changes with the contrast window or the label version. While the new URL loads,
 * the slot keeps returning the previous bitmap, so a refetch never flashes empty.
 * Loads are capped in number, most recently requested first; slots no longer asked for
 * are skipped, and the least recently used slots are evicted (their bitmaps closed).
 */
import type { Disposable } from "../core/disposable";
import { Signal } from "../core/trackable";

export type TileImage = ImageBitmap;

interface Slot {
  image: TileImage | null;
  /** URL of `image` (or of a 404: image null and missing true). */
  loadedUrl: string | null;
  missing: boolean;
  loadingUrl: string | null;
  lastUsed: number;
}

export interface TileLookup {
  image: TileImage | null;
  /** The image is for the requested URL (not a stale fallback). */
  fresh: boolean;
}

export type TileFetcher = (url: string, signal: AbortSignal) => Promise<TileImage | null>;

/** Fetch and decode a PNG tile; null for 404 (outside the volume). */
export const fetchTile: TileFetcher = async (url, signal) => {
  const res = await fetch(url, { credentials: "same-origin", signal });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return await createImageBitmap(await res.blob());
};

export class TileCache implements Disposable {
  readonly loaded = new Signal();
  private slots = new Map<string, Slot>();
  private queue: Array<{ key: string; url: string; frame: number }> = [];
  private inFlight = new Map<string, AbortController>();
  private frame = 0;

  constructor(
    private readonly fetcher: TileFetcher = fetchTile,
    private readonly capacity = 768,
    private readonly maxInFlight = 8,
  ) {}

  /** Call once per rendered frame, before requests. */
  beginFrame(): void {
    this.frame++;
  }

  /** What to draw for `key` now; starts loading `url` if it is not the loaded one. */
  request(key: string, url: string): TileLookup {
    const slot = this.touch(key);
    if (slot.loadedUrl === url) return { image: slot.image, fresh: true };
    if (slot.loadingUrl !== url) {
      this.inFlight.get(key)?.abort();
      this.inFlight.delete(key);
      slot.loadingUrl = url;
      this.queue.push({ key, url, frame: this.frame });
    } else {
      const q = this.queue.find((e) => e.key === key);
      if (q !== undefined) q.frame = this.frame;
    }
    this.pump();
    return { image: slot.missing ? null : slot.image, fresh: false };
  }

  /** Whatever image `key` holds, without loading anything (used for coarse fallbacks). */
  peek(key: string): TileImage | null {
    const slot = this.slots.get(key);
    if (slot === undefined) return null;
    slot.lastUsed = this.frame;
    return slot.image;
  }

  get pendingCount(): number {
    return this.queue.length + this.inFlight.size;
  }

  dispose(): void {
    for (const c of this.inFlight.values()) c.abort();
    this.inFlight.clear();
    for (const s of this.slots.values()) s.image?.close?.();
    this.slots.clear();
    this.queue = [];
  }

  private touch(key: string): Slot {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = { image: null, loadedUrl: null, missing: false, loadingUrl: null, lastUsed: this.frame };
      this.slots.set(key, slot);
      this.evict();
    }
    slot.lastUsed = this.frame;
    return slot;
  }

  private pump(): void {
    while (this.inFlight.size < this.maxInFlight && this.queue.length > 0) {
      // Most recent request first; drop requests nobody repeated in the last frames.
      const job = this.queue.pop()!;
      const slot = this.slots.get(job.key);
      if (slot === undefined || slot.loadingUrl !== job.url) continue;
      if (this.frame - job.frame > 2) {
        slot.loadingUrl = null;
        continue;
      }
      const ctrl = new AbortController();
      this.inFlight.set(job.key, ctrl);
      this.fetcher(job.url, ctrl.signal).then(
        (image) => this.finish(job.key, job.url, ctrl, image, false),
        () => this.finish(job.key, job.url, ctrl, null, true),
      );
    }
  }

  private finish(key: string, url: string, ctrl: AbortController, image: TileImage | null, failed: boolean): void {
    if (this.inFlight.get(key) === ctrl) this.inFlight.delete(key);
    const slot = this.slots.get(key);
    if (slot === undefined || slot.loadingUrl !== url || ctrl.signal.aborted) {
      image?.close?.();
      this.pump();
      return;
    }
    slot.loadingUrl = null;
    if (!failed) {
      if (slot.image !== image) slot.image?.close?.();
      slot.image = image;
      slot.loadedUrl = url;
      slot.missing = image === null;
      this.loaded.dispatch();
    }
    this.pump();
  }

  private evict(): void {
    if (this.slots.size <= this.capacity) return;
    const victims = [...this.slots.entries()]
      .filter(([k]) => !this.inFlight.has(k))
      .sort((a, b) => a[1].lastUsed - b[1].lastUsed)
      .slice(0, this.slots.size - this.capacity);
    for (const [k, s] of victims) {
      s.image?.close?.();
      this.slots.delete(k);
    }
  }
}
