/**
 * Who else is on this volume right now: a chip per person in the top bar with the slice they
 * are on; a click takes you there. This page's crosshair goes out on the volume socket.
 */
import type { VolumeSocket } from "../api/socket";
import { type Disposable, DisposableSet, every, listen } from "../core/disposable";
import { h } from "../core/dom";
import type { ViewerContext } from "./context";
import { PresenceRoster } from "./presence";
import type { SliceView } from "./slice_view";

const SEND_MS = 250;
const HEARTBEAT_MS = 20_000;

export class PresenceBar implements Disposable {
  readonly element: HTMLElement;
  private readonly d = new DisposableSet();
  private readonly roster = new PresenceRoster();

  constructor(private readonly ctx: ViewerContext, socket: VolumeSocket, views: readonly SliceView[]) {
    this.element = h("span", { class: "presence", id: "presence", "aria-live": "polite" });
    let timer: ReturnType<typeof setTimeout> | null = null;
    const sendNow = () => socket.sendVolatile({ type: "presence", focus: ctx.focus.value });
    const send = () => {
      if (timer === null) timer = setTimeout(() => {
        timer = null;
        sendNow();
      }, SEND_MS);
    };
    this.d.add(() => {
      if (timer !== null) clearTimeout(timer);
    });
    this.d.add(ctx.focus.subscribe(send));
    this.d.add(socket.state.subscribe((st) => {
      if (st === "connected") sendNow();
    }));
    this.d.add(every(HEARTBEAT_MS, sendNow));
    this.d.add(every(5000, () => {
      if (this.roster.prune()) this.render();
    }));
    this.d.add(socket.messages.add((m) => {
      if (m.type !== "presence") return;
      if (this.roster.apply(m)) send();
      this.render();
    }));
    this.d.add(listen(this.element, "click", (ev) => {
      const chip = (ev.target as HTMLElement).closest<HTMLElement>(".peer");
      const peer = this.roster.list().find((p) => p.id === chip?.dataset.peer);
      if (peer?.focus == null) return;
      ctx.focus.value = peer.focus;
      for (const v of views) v.centerOnFocus();
    }));
    this.render();
  }

  private render(): void {
    const peers = this.roster.list();
    this.element.replaceChildren(...peers.map((p) => h("button", {
      class: "peer", "data-peer": p.id, "data-user": p.user,
      title: p.focus === null ? `${p.user} is here` : `${p.user} at z ${p.focus[0]}, y ${p.focus[1]}, x ${p.focus[2]}: click to go there`,
    }, h("span", { class: "peer-dot" }), p.user, p.focus === null ? "" : h("span", { class: "peer-where" }, ` z ${p.focus[0]}`))));
    this.element.hidden = peers.length === 0;
    this.ctx.redraw.dispatch();
  }

  dispose(): void {
    this.d.dispose();
  }
}
