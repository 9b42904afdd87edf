/**
 * The user's own strokes as an undo/redo history. The server does the exact undo (it
 * stores a before-patch per stroke); this only decides which UUID to undo or redo and
 * tracks each stroke's state for the history panel.
 */
import type { Disposer } from "../core/disposable";
import { Signal } from "../core/trackable";

export type EntryState = "pending" | "applied" | "undone" | "failed";

export interface HistoryEntry {
  uuid: string;
  label: string;
  state: EntryState;
  /** Layer version after the server applied it (unset until acked). */
  version?: number;
  /** Unix ms when the stroke was made. */
  time: number;
}

export class StrokeHistory {
  private readonly list: HistoryEntry[] = [];
  /** UUIDs that Ctrl+Shift+Z may re-apply, most recent last. */
  private redoStack: string[] = [];
  readonly changed = new Signal();

  constructor(private readonly limit = 200) {}

  get entries(): readonly HistoryEntry[] {
    return this.list;
  }

  onChange(fn: () => void): Disposer {
    return this.changed.add(fn);
  }

  /** A new local stroke: it can be undone, and it ends any pending redo chain. */
  add(uuid: string, label: string, time = Date.now()): void {
    this.list.push({ uuid, label, state: "pending", time });
    this.redoStack = [];
    if (this.list.length > this.limit) this.list.splice(0, this.list.length - this.limit);
    this.changed.dispatch();
  }

  /**
   * Put strokes saved before this page loaded (the server's log) under the ones made since,
   * oldest first, so Ctrl+Z goes on into them after a reload. UUIDs already held are skipped.
   */
  restore(saved: ReadonlyArray<{ uuid: string; label: string; version: number; time: number }>): number {
    const fresh = saved.filter((e) => this.get(e.uuid) === undefined)
      .sort((a, b) => a.time - b.time)
      .map((e): HistoryEntry => ({ uuid: e.uuid, label: e.label, state: "applied", version: e.version, time: e.time }));
    if (fresh.length === 0) return 0;
    this.list.unshift(...fresh);
    if (this.list.length > this.limit) this.list.splice(0, this.list.length - this.limit);
    this.changed.dispatch();
    return fresh.length;
  }

  get(uuid: string): HistoryEntry | undefined {
    return this.list.find((e) => e.uuid === uuid);
  }

  acknowledge(uuid: string, version: number): void {
    const e = this.get(uuid);
    if (e === undefined) return;
    if (e.state === "pending") e.state = "applied";
    e.version = version;
    this.changed.dispatch();
  }

  fail(uuid: string): void {
    const e = this.get(uuid);
    if (e === undefined) return;
    e.state = "failed";
    this.redoStack = this.redoStack.filter((u) => u !== uuid);
    this.changed.dispatch();
  }

  get canUndo(): boolean {
    return this.lastDone() !== undefined;
  }

  get canRedo(): boolean {
    return this.redoStack.length > 0;
  }

  /** Mark the most recent applied (or pending) stroke undone and return its UUID. */
  undo(): string | null {
    const e = this.lastDone();
    if (e === undefined) return null;
    e.state = "undone";
    this.redoStack.push(e.uuid);
    this.changed.dispatch();
    return e.uuid;
  }

  /** Re-apply the most recently undone stroke and return its UUID. */
  redo(): string | null {
    const uuid = this.redoStack.pop();
    if (uuid === undefined) return null;
    const e = this.get(uuid);
    if (e !== undefined) e.state = "applied";
    this.changed.dispatch();
    return uuid;
  }

  private lastDone(): HistoryEntry | undefined {
    for (let i = this.list.length - 1; i >= 0; i--) {
      const e = this.list[i]!;
      if (e.state === "applied" || e.state === "pending") return e;
    }
    return undefined;
  }
}
