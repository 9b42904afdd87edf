/**
 * Ordered queue of client messages for an unreliable websocket. Strokes stay queued
 * until the server acknowledges (or rejects) their UUID, so everything unacked is
 * resent after a reconnect; commands (undo, redo, mark_complete) are queued while
 * offline and dropped once sent. The server ignores stroke UUIDs it has seen.
 */
import type { ClientMessage } from "./types";

interface Entry {
  message: ClientMessage;
  /** Sent on the current connection. */
  sent: boolean;
}

export class Outbox {
  private entries: Entry[] = [];

  push(message: ClientMessage): void {
    this.entries.push({ message, sent: false });
  }

  /** Messages to send now, in order; marks them sent and drops fire-and-forget ones. */
  takeUnsent(): ClientMessage[] {
    const out: ClientMessage[] = [];
    for (const e of this.entries) {
      if (!e.sent) {
        out.push(e.message);
        e.sent = true;
      }
    }
    this.entries = this.entries.filter((e) => e.message.type === "stroke");
    return out;
  }

  /** The connection dropped: every stroke still queued must go again. */
  connectionLost(): void {
    for (const e of this.entries) e.sent = false;
  }

  /** The server acknowledged or rejected this stroke: stop resending it. */
  settle(uuid: string): boolean {
    const before = this.entries.length;
    this.entries = this.entries.filter(
      (e) => !(e.message.type === "stroke" && e.message.stroke.uuid === uuid),
    );
    return this.entries.length !== before;
  }

  /** UUIDs of strokes not yet acknowledged. */
  pendingStrokeIds(): string[] {
    const ids: string[] = [];
    for (const e of this.entries) if (e.message.type === "stroke") ids.push(e.message.stroke.uuid);
    return ids;
  }

  get size(): number {
    return this.entries.length;
  }
}

/** Reconnect delay in ms: exponential from 250 ms, capped at 5 s, with +-20 % jitter. */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(5000, 250 * 2 ** Math.max(0, attempt));
  return Math.round(base * (0.8 + 0.4 * random()));
}
