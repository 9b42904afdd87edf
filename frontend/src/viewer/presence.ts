/** Who else is on this volume and where (their crosshair), from the volume socket's presence messages. */
import type { PresenceMessage, Zyx } from "../api/types";

export interface Peer {
  id: string;
  user: string;
  focus: Zyx | null;
  /** Unix ms of their last message. */
  seen: number;
}

/** A peer is dropped when nothing came from it for this long (they send every 20 s). */
export const PEER_TIMEOUT_MS = 60_000;

export class PresenceRoster {
  private readonly peers = new Map<string, Peer>();

  /**
   * Take one message; returns true when the sender is new to us, so we answer with our own
   * presence (a newcomer learns where everyone is without the server keeping a list).
   */
  apply(msg: PresenceMessage, now = Date.now()): boolean {
    if (msg.left === true) {
      this.peers.delete(msg.id);
      return false;
    }
    const known = this.peers.get(msg.id);
    this.peers.set(msg.id, { id: msg.id, user: msg.user, focus: msg.focus ?? known?.focus ?? null, seen: now });
    return known === undefined || msg.joined === true;
  }

  /** Forget peers that went quiet; returns whether any was forgotten. */
  prune(now = Date.now()): boolean {
    let changed = false;
    for (const [id, p] of this.peers) {
      if (now - p.seen > PEER_TIMEOUT_MS) {
        this.peers.delete(id);
        changed = true;
      }
    }
    return changed;
  }

  /** Peers by user name; one user with two tabs shows twice. */
  list(): Peer[] {
    return [...this.peers.values()].sort((a, b) => a.user.localeCompare(b.user) || a.id.localeCompare(b.id));
  }
}
