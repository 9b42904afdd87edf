/**
 * The volume websocket: reconnects with backoff, resends unacked strokes (Outbox),
 * exposes the connection state as a Trackable and server messages as a Signal.
 */
import type { Disposable } from "../core/disposable";
import { Signal, Trackable } from "../core/trackable";
import { Outbox, reconnectDelayMs } from "./outbox";
import { type ClientMessage, parseServerMessages, type ServerMessage } from "./types";

export type ConnectionState = "connecting" | "connected" | "disconnected";

export function websocketUrl(path: string, location: Location): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export class VolumeSocket implements Disposable {
  readonly state = new Trackable<ConnectionState>("connecting");
  readonly messages = new Signal<[ServerMessage]>();
  /** Number of strokes sent but not yet acknowledged. */
  readonly pending = new Trackable(0);
  private readonly outbox = new Outbox();
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;

  constructor(private readonly url: string) {
    this.open();
  }

  send(message: ClientMessage): void {
    this.outbox.push(message);
    this.refreshPending();
    this.flush();
  }

  /** Send now if connected, else drop: for messages that only say how things are (presence). */
  sendVolatile(message: ClientMessage): void {
    const ws = this.ws;
    if (ws !== null && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  /** Drop the current connection (tests, "go offline" checks); it reconnects by itself. */
  drop(): void {
    this.ws?.close();
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.ws?.close();
    this.ws = null;
  }

  private open(): void {
    if (this.disposed) return;
    this.state.value = "connecting";
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.state.value = "connected";
      this.flush();
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data !== "string") return;
      for (const msg of parseServerMessages(ev.data)) {
        if (msg.type === "ack" || (msg.type === "error" && msg.uuid !== undefined)) {
          this.outbox.settle(msg.uuid!);
          this.refreshPending();
        }
        this.messages.dispatch(msg);
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.outbox.connectionLost();
      if (this.disposed) return;
      this.state.value = "disconnected";
      this.timer = setTimeout(() => this.open(), reconnectDelayMs(this.attempt++));
    };
    ws.onerror = () => {
      /* onclose follows and schedules the reconnect */
    };
  }

  private flush(): void {
    const ws = this.ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN) return;
    for (const m of this.outbox.takeUnsent()) ws.send(JSON.stringify(m));
  }

  private refreshPending(): void {
    this.pending.value = this.outbox.pendingStrokeIds().length;
  }
}

