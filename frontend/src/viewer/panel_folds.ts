/**
 * Side panels fold: a click on a panel's title folds or unfolds it, remembered per browser.
 * On a short screen (1280 × 720) the panels one reads rather than works in start folded, so
 * the layers and the model controls (Retrain, Segment) fit without scrolling.
 */
import { type Disposable, DisposableSet, listen } from "../core/disposable";

/** Below this window height the reading panels start folded. */
export const SHORT_SCREEN_PX = 820;
/** Panels folded by default on a short screen, by their key (id, or title for panels without one). */
export const FOLD_ON_SHORT = ["suggestions-panel", "models-panel", "cells-panel", "history-panel", "keys", "comments-panel"];
const STORE = "em.panel-folds";

/** Whether panel `key` starts folded: what the user chose last, else the short-screen default. */
export function startsFolded(key: string, saved: Readonly<Record<string, boolean>>, windowHeight: number): boolean {
  return saved[key] ?? (windowHeight < SHORT_SCREEN_PX && FOLD_ON_SHORT.includes(key));
}

function panelKey(panel: HTMLElement): string {
  return panel.id || (panel.querySelector(":scope > h2")?.textContent ?? "").trim().toLowerCase();
}

function readSaved(): Record<string, boolean> {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(STORE) ?? "{}");
    return typeof v === "object" && v !== null ? (v as Record<string, boolean>) : {};
  } catch {
    return {};
  }
}

export class PanelFolds implements Disposable {
  private readonly d = new DisposableSet();
  private readonly seen = new WeakSet<HTMLElement>();

  constructor(private readonly sidebar: HTMLElement) {
    this.d.add(listen(sidebar, "click", (ev) => {
      const title = (ev.target as HTMLElement).closest("h2");
      const panel = title?.parentElement;
      if (title == null || panel == null || !panel.classList.contains("panel") || panel.parentElement !== sidebar) return;
      const folded = panel.classList.toggle("folded");
      const saved = readSaved();
      saved[panelKey(panel)] = folded;
      try {
        localStorage.setItem(STORE, JSON.stringify(saved));
      } catch {
        /* private mode: the fold still works for this page */
      }
    }));
    // Panels mounted later (review, comments) get their starting state too.
    const observer = new MutationObserver(() => this.apply());
    observer.observe(sidebar, { childList: true });
    this.d.add(() => observer.disconnect());
    this.apply();
  }

  private apply(): void {
    const saved = readSaved();
    for (const panel of this.sidebar.querySelectorAll<HTMLElement>(":scope > .panel")) {
      if (this.seen.has(panel)) continue;
      this.seen.add(panel);
      panel.classList.toggle("folded", startsFolded(panelKey(panel), saved, window.innerHeight));
    }
  }

  dispose(): void {
    this.d.dispose();
  }
}
